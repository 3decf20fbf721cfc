"""Where recordings live: one small interface, and the local directory behind it.

A recording is a directory of files named by ``recording_id``; every name is one plain
file name component, checked here, so no caller (a REST path parameter, a publisher's
identity in a template) can reach outside it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO, Protocol

from talkplatform_agents.errors import Invalid, NotFound

__all__ = ["DEFAULT_ROOT", "LocalStorage", "RecordingStorage", "check_name"]

DEFAULT_ROOT = Path("var/recordings")
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")
_MAX_NAME = 255  # bytes: the usual file system limit


def check_name(name: str, what: str = "file name") -> str:
    """``name`` if it is one plain file name (no separator, not hidden, no ``..``);
    ``Invalid`` otherwise."""
    if (
        not name
        or name.startswith(".")
        or _FORBIDDEN.search(name)
        or len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME
    ):
        raise Invalid(f"not a valid {what}: {name!r}", name=name)
    return name


class RecordingStorage(Protocol):
    def path_for(self, recording_id: str, name: str) -> Path:
        """A local path to write ``name`` to (its directory exists)."""
        ...

    def open(self, recording_id: str, name: str) -> BinaryIO:
        """``name`` for reading; ``NotFound`` if it is not there."""
        ...

    def list(self, recording_id: str) -> list[str]:
        """The recording's file names, sorted; empty for an unknown recording."""
        ...

    def exists(self, recording_id: str, name: str) -> bool: ...


class LocalStorage:
    """Files under ``root/<recording_id>/<name>``."""

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def directory(self, recording_id: str) -> Path:
        return self.root / check_name(recording_id, "recording id")

    def path_for(self, recording_id: str, name: str) -> Path:
        directory = self.directory(recording_id)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / check_name(name)

    def open(self, recording_id: str, name: str) -> BinaryIO:
        path = self.directory(recording_id) / check_name(name)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"no file {name!r} in recording {recording_id!r}") from exc

    def list(self, recording_id: str) -> list[str]:
        directory = self.directory(recording_id)
        if not directory.is_dir():
            return []
        # Dot files are the manifest's temporary copies, mid-write.
        return sorted(
            p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")
        )

    def exists(self, recording_id: str, name: str) -> bool:
        return (self.directory(recording_id) / check_name(name)).is_file()
