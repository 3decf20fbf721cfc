"""Output containers that survive a SIGKILL of the process writing them.

A muxer keeps the newest page (Ogg) or cluster (WebM) in memory and libavformat's I/O layer
buffers what it writes; a killed process loses both. So every container is opened with
``flush_packets`` (each muxed packet reaches the OS at once: the kernel keeps it even if the
process dies) and a short page or cluster duration, which bounds what a kill can lose.
The file is never fsynced: a process kill does not lose the page cache, and a machine
crash is outside what the recorder promises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import av

from talkplatform_agents.errors import TalkPlatformError

__all__ = ["WriteFailed", "close_quietly", "guarded", "open_output"]

T = TypeVar("T")


class WriteFailed(TalkPlatformError):
    """A media file could not be written (disk full, permission denied, a missing
    directory...). ``path`` names the file; ``reason`` is the operating system's words.
    The writer that raised it is failed: later writes raise again, ``close()`` only
    releases what it holds."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


def open_output(path: Path, container_format: str, options: dict[str, str]) -> Any:
    """An output container at ``path``, flushing every packet to the OS."""
    return guarded(
        path,
        lambda: av.open(
            str(path), "w", format=container_format, options={"flush_packets": "1", **options}
        ),
    )


def guarded(path: Path, action: Callable[[], T]) -> T:
    """Runs ``action``, turning an I/O failure into ``WriteFailed`` for ``path``."""
    try:
        return action()
    except OSError as exc:  # PyAV's I/O errors (av.error.OSError and friends) derive from it
        reason = exc.strerror or str(exc)
        raise WriteFailed(path, reason) from exc


def close_quietly(container: Any) -> None:
    """Releases a container whose file already failed: the first error is the one that
    counts, so a second one from closing is not raised."""
    with contextlib.suppress(OSError, av.error.FFmpegError):
        container.close()
