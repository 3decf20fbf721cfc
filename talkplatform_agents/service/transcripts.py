"""A meeting's stored caption segments as a transcript document: JSON, WebVTT, SRT or text.

Pure functions over anything shaped like the store's ``SegmentView`` (``TranscriptSegment``
below), so the formats are tested without a database. Times in the documents are relative
to the transcript's origin (the start of the meeting's first transcription, which the caller
passes as Unix ms), as a video player that starts with the meeting expects them.

Text inside a cue is collapsed to single spaces: a newline in a caption would end a WebVTT or
SRT cue early, and a blank line would start a new one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from talkplatform_agents.errors import Invalid

__all__ = [
    "FORMATS",
    "TranscriptFormat",
    "TranscriptFormatError",
    "TranscriptSegment",
    "TranscriptWord",
    "display_name",
    "iso_utc",
    "render_transcript",
]


class TranscriptWord(Protocol):
    """One recognised word (``store.transcriptions.Word``); times in Unix ms."""

    @property
    def word(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...


class TranscriptSegment(Protocol):
    """One final caption as the store returns it (``store.transcriptions.SegmentView``)."""

    @property
    def id(self) -> str: ...
    @property
    def speaker_identity(self) -> str: ...
    @property
    def speaker_name(self) -> str: ...
    @property
    def track_sid(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def words(self) -> Sequence[TranscriptWord]: ...
    @property
    def confidence(self) -> float: ...


class TranscriptFormatError(Invalid, ValueError):
    """An unknown transcript format. An ``Invalid`` (the API answers 400 with the known
    formats) and a ``ValueError`` for callers outside the service."""


@dataclass(frozen=True)
class TranscriptFormat:
    name: str
    media_type: str
    extension: str  # for a download's file name and the CLI's --out default


FORMATS: dict[str, TranscriptFormat] = {
    f.name: f
    for f in (
        TranscriptFormat("json", "application/json", "json"),
        TranscriptFormat("vtt", "text/vtt; charset=utf-8", "vtt"),
        TranscriptFormat("srt", "application/x-subrip; charset=utf-8", "srt"),
        TranscriptFormat("text", "text/plain; charset=utf-8", "txt"),
    )
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(unix_ms: int) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, e.g. ``2023-11-14T22:13:20.000Z``."""
    # timedelta keeps whole milliseconds exact, which a float timestamp would not.
    when = _EPOCH + timedelta(milliseconds=int(unix_ms))
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def display_name(segment: TranscriptSegment) -> str:
    """The speaker's name as shown: the display name, else the identity, on one line."""
    return _one_line(segment.speaker_name) or _one_line(segment.speaker_identity) or "unknown"


def render_transcript(
    segments: Iterable[TranscriptSegment], fmt: str, origin_ms: int
) -> tuple[str, str]:
    """The transcript in ``fmt`` (one of ``FORMATS``) and its media type.

    Segments are ordered by start (WebVTT requires cues in start order). No segments gives a
    valid empty document of that format.
    """
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        known = ", ".join(FORMATS)
        raise TranscriptFormatError(
            f"unknown transcript format {fmt!r}: use one of {known}", known=list(FORMATS)
        )
    ordered = sorted(segments, key=lambda s: (s.start_ms, s.end_ms, s.id))
    return renderer(ordered, int(origin_ms)), FORMATS[fmt].media_type


def _json(segments: Sequence[TranscriptSegment], origin_ms: int) -> str:
    body: dict[str, Any] = {
        "origin": iso_utc(origin_ms),
        "segments": [
            {
                "id": s.id,
                "speakerIdentity": s.speaker_identity,
                "speakerName": s.speaker_name,
                "trackSid": s.track_sid,
                "startMs": s.start_ms - origin_ms,
                "endMs": s.end_ms - origin_ms,
                "start": iso_utc(s.start_ms),
                "end": iso_utc(s.end_ms),
                "text": s.text,
                "words": [
                    {
                        "word": w.word,
                        "startMs": w.start_ms - origin_ms,
                        "endMs": w.end_ms - origin_ms,
                    }
                    for w in s.words
                ],
                "confidence": s.confidence,
            }
            for s in segments
        ],
    }
    return json.dumps(body, ensure_ascii=False)


def _cue_span(segment: TranscriptSegment, origin_ms: int) -> tuple[int, int]:
    """Cue times relative to the origin: never negative, and the end after the start, as
    players and the WebVTT parser require."""
    start = max(0, segment.start_ms - origin_ms)
    end = max(start + 1, segment.end_ms - origin_ms)
    return start, end


def _clock(ms: int, fraction_sep: str | None) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return clock if fraction_sep is None else f"{clock}{fraction_sep}{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_cue_id(segment_id: str) -> str:
    # An identifier may not contain "-->" (the line would read as timings) nor a newline.
    return _one_line(segment_id).replace("-->", "->")


def _vtt(segments: Sequence[TranscriptSegment], origin_ms: int) -> str:
    blocks = ["WEBVTT"]
    for s in segments:
        start, end = _cue_span(s, origin_ms)
        lines = [
            f"{_clock(start, '.')} --> {_clock(end, '.')}",
            f"<v {_vtt_escape(display_name(s))}>{_vtt_escape(_one_line(s.text))}</v>",
        ]
        if cue_id := _vtt_cue_id(s.id):
            lines.insert(0, cue_id)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _srt(segments: Sequence[TranscriptSegment], origin_ms: int) -> str:
    blocks = []
    for number, s in enumerate(segments, start=1):
        start, end = _cue_span(s, origin_ms)
        blocks.append(
            f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n"
            f"{display_name(s)}: {_one_line(s.text)}"
        )
    return "".join(f"{block}\n\n" for block in blocks)


def _text(segments: Sequence[TranscriptSegment], origin_ms: int) -> str:
    return "".join(
        f"[{_clock(_cue_span(s, origin_ms)[0], None)}] {display_name(s)}: {_one_line(s.text)}\n"
        for s in segments
    )


_RENDERERS: dict[str, Callable[[Sequence[TranscriptSegment], int], str]] = {
    "json": _json,
    "vtt": _vtt,
    "srt": _srt,
    "text": _text,
}
