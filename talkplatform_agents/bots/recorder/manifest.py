"""A recording's manifest, in the shape of LiveKit Egress's results, and Egress's file name
templates.

``RecordingManifest`` has ``EgressInfo``'s fields (``egress_id`` is our recording id) and
each ``FileResult`` has ``FileInfo``'s, in Egress's snake_case JSON, so tools built for
Egress results read ours. Each file adds what a consumer needs to align it: the track,
its publisher, and ``offset_ns``, where the file starts on the recording's timeline. A
recorder that was killed and came back starts a new part: new files, same manifest.
Times are Unix nanoseconds. ``write()`` is atomic: a crash leaves the old manifest or the
new one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from talkplatform_agents.errors import Invalid

__all__ = [
    "EGRESS_STATUSES",
    "FileKind",
    "FileResult",
    "RecordingManifest",
    "RecordingPart",
    "render_name",
    "safe_component",
]

# LiveKit's EgressStatus names; the recorder uses ACTIVE, ENDING, COMPLETE and FAILED.
EgressStatus = Literal[
    "EGRESS_STARTING",
    "EGRESS_ACTIVE",
    "EGRESS_ENDING",
    "EGRESS_COMPLETE",
    "EGRESS_FAILED",
    "EGRESS_ABORTED",
    "EGRESS_LIMIT_REACHED",
]
EGRESS_STATUSES: tuple[str, ...] = get_args(EgressStatus)
FileKind = Literal["audio", "video", "mixed"]
_KINDS: tuple[str, ...] = get_args(FileKind)
_INT_FIELDS = {"started_at", "ended_at", "duration", "size", "offset_ns", "part"}


@dataclass
class FileResult:
    """One file: Egress's ``FileInfo`` fields, then ours."""

    filename: str
    started_at: int  # Unix ns: the file's first sample or frame
    ended_at: int = 0  # Unix ns; 0 while it is being written
    duration: int = 0  # ns
    size: int = 0  # bytes
    location: str = ""  # where to fetch it (a storage path or URL)
    track_sid: str = ""  # empty for the mixed file
    identity: str = ""  # the publisher's
    name: str = ""  # the publisher's display name
    kind: FileKind = "audio"
    source: str = ""  # LiveKit's track source: "microphone", "camera", "screen_share", ...
    offset_ns: int = 0  # where the file starts on the recording's timeline
    part: int = 1

    def __post_init__(self) -> None:
        if not self.filename:
            raise Invalid("a file result needs a filename")
        if self.kind not in _KINDS:
            raise Invalid(f"kind must be one of {_KINDS}, got {self.kind!r}")
        for name in _INT_FIELDS:
            if getattr(self, name) < 0:
                raise Invalid(f"{name} must not be negative", field=name)


@dataclass
class RecordingPart:
    """A stretch recorded by one recorder process. A part whose ``ended_at`` stays 0 was
    cut short (its recorder was killed): its files play up to about the kill."""

    part: int
    started_at: int  # Unix ns
    ended_at: int = 0


@dataclass
class RecordingManifest:
    egress_id: str
    room_name: str
    started_at: int  # Unix ns
    ended_at: int = 0
    status: EgressStatus = "EGRESS_ACTIVE"
    error: str = ""
    file_results: list[FileResult] = field(default_factory=list)
    parts: list[RecordingPart] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.egress_id or not self.room_name:
            raise Invalid("a manifest needs an egress_id and a room_name")
        if self.status not in EGRESS_STATUSES:
            raise Invalid(f"unknown status {self.status!r}", status=self.status)

    # -- changes a recorder makes --------------------------------------------------------

    def start_part(self, now_ns: int) -> int:
        """Opens the next part (the first, or one after a restart) and returns its number."""
        number = max((p.part for p in self.parts), default=0) + 1
        self.parts.append(RecordingPart(number, now_ns))
        self.status = "EGRESS_ACTIVE"
        return number

    def end_part(self, now_ns: int) -> None:
        if self.parts and not self.parts[-1].ended_at:
            self.parts[-1].ended_at = now_ns

    def add_file(self, result: FileResult) -> None:
        if self.file(result.filename) is not None:
            raise Invalid(f"{result.filename} is already in the manifest")
        self.file_results.append(result)

    def file(self, filename: str) -> FileResult | None:
        return next((f for f in self.file_results if f.filename == filename), None)

    def finish(self, now_ns: int, error: str = "") -> None:
        """Ends the recording: ``EGRESS_COMPLETE``, or ``EGRESS_FAILED`` with ``error``."""
        self.end_part(now_ns)
        self.ended_at = now_ns
        self.status = "EGRESS_FAILED" if error else "EGRESS_COMPLETE"
        self.error = error

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> RecordingManifest:
        """Reads a manifest; protobuf-style int64 strings are taken, unknown keys ignored."""
        body = _known(cls, data)
        body["file_results"] = [_known(FileResult, f) for f in body.get("file_results", [])]
        body["parts"] = [_known(RecordingPart, p) for p in body.get("parts", [])]
        try:
            body["file_results"] = [FileResult(**f) for f in body["file_results"]]
            body["parts"] = [RecordingPart(**p) for p in body["parts"]]
            return cls(**body)
        except TypeError as exc:  # a required field is missing
            raise Invalid(f"malformed manifest: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> RecordingManifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise Invalid(f"a manifest must be JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: Path) -> RecordingManifest:
        return cls.from_json(path.read_bytes())

    def write(self, path: Path) -> None:
        """Replaces ``path`` atomically: a temporary file beside it, fsynced, then renamed
        over it, then the directory fsynced so the rename itself survives."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                out.write(self.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _known(cls: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid(f"malformed manifest: {cls.__name__} must be an object")
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _INT_FIELDS:
            value = _as_int(f.name, value)
        elif f.type == "str" and not isinstance(value, str):
            raise Invalid(f"malformed manifest: {f.name} must be a string", field=f.name)
        out[f.name] = value
    return out


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid(f"malformed manifest: {name} must be an integer", field=name)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise Invalid(f"malformed manifest: {name} must be an integer", field=name)


# -- names ---------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
_MAX_NAME = 200  # bytes: room for a part suffix under the usual 255-byte limit


def safe_component(text: str) -> str:
    """``text`` as one harmless file name component: separators and control characters
    become ``_``, and leading dots go (so no ``..``, no hidden files)."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".").strip()
    return cleaned or "_"


def render_name(
    template: str,
    *,
    room_name: str = "",
    track_id: str = "",
    publisher_identity: str = "",
    time: datetime | None = None,
    extension: str = "",
) -> str:
    """Fills Egress's ``{room_name}``, ``{track_id}``, ``{publisher_identity}`` and ``{time}``
    (UTC, ``YYYY-MM-DDTHHMMSS`` as Egress writes it) into ``template``, and appends
    ``extension`` (``".ogg"``) unless the name has it. The result is always one file name
    inside the recording's directory: a ``/`` in a value or in the template, or a ``..``,
    cannot make it a path."""
    when = time or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    values = {
        "{room_name}": room_name,
        "{track_id}": track_id,
        "{publisher_identity}": publisher_identity,
        "{time}": when.astimezone(UTC).strftime("%Y-%m-%dT%H%M%S"),
    }
    name = re.sub(
        r"\{(room_name|track_id|publisher_identity|time)\}",
        lambda m: _UNSAFE.sub("_", values[m.group(0)]),
        template,
    )
    stem = safe_component(name)
    ext = safe_component(extension) if extension else ""
    if ext and not ext.startswith("."):
        ext = "." + ext
    if ext and stem.endswith(ext):
        stem = stem[: -len(ext)] or "_"
    limit = _MAX_NAME - len(ext.encode())
    while len(stem.encode()) > limit:
        stem = stem[:-1]
    return stem + ext
