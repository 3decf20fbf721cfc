"""Who spoke when: meeting analytics and a speaker timeline chart from caption segments.

Pure functions over anything shaped like the store's ``SegmentView`` (``SpokenSegment``
below). The span ``[start_ms, end_ms]`` (Unix ms) is the caller's: the meeting's first
transcription's start to its last one's end. Segments are clipped to it.

Definitions (all durations in ms, over the clipped segments):

- **talk time** of a participant: the length of the union of their segments (Jitsi's speaker
  stats), so their own overlapping segments count once.
- **turn**: a participant's segments taken in start order merge into one turn while the next
  one starts less than ``TURN_GAP_MS`` after the turn's end so far (or before it), and no
  other participant's segment starts in ``[turn end, next start]``. Another participant's
  short remark *during* a turn does not end it; one in the pause does.
- **longest monologue**: the longest turn, from its first segment's start to its end.
- **interruption**: a turn that starts while another participant's segment has started
  strictly before and ends strictly after that moment. It counts once for the interrupter
  (``interruptions``) and once for each participant so interrupted (``interrupted``).
  Two people starting at the same instant interrupt no one.
- **silence**: for a participant, the span minus their talk time; for the meeting, the span
  minus the union of everyone's speech. ``silenceShare`` is that over the duration (0 for an
  empty span). **overlap**: the time two or more participants speak at once.

A segment that lies wholly outside the span is dropped, but its speaker is still listed
(with zeros): nothing the store holds vanishes from the result.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from talkplatform_agents.errors import Invalid
from talkplatform_agents.service.transcripts import iso_utc

__all__ = [
    "TURN_GAP_MS",
    "AnalyticsSpanError",
    "SpokenSegment",
    "meeting_analytics",
    "timeline_png",
]

TURN_GAP_MS = 1000


class SpokenSegment(Protocol):
    """What analytics reads of a stored segment (``store.transcriptions.SegmentView``)."""

    @property
    def speaker_identity(self) -> str: ...
    @property
    def speaker_name(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...


class AnalyticsSpanError(Invalid, ValueError):
    """A span that ends before it starts."""


@dataclass(frozen=True)
class _Piece:
    identity: str
    start: int
    end: int


@dataclass
class _Speaker:
    identity: str
    name: str = ""
    first_ms: int | None = None
    intervals: list[tuple[int, int]] = field(default_factory=list)
    turns: list[tuple[int, int]] = field(default_factory=list)
    interruptions: int = 0
    interrupted: int = 0

    @property
    def label(self) -> str:
        return " ".join(self.name.split()) or self.identity or "unknown"


def _check_span(start_ms: int, end_ms: int) -> None:
    if end_ms < start_ms:
        raise AnalyticsSpanError(
            f"the analytics span ends before it starts ({end_ms} < {start_ms})",
            startMs=start_ms,
            endMs=end_ms,
        )


def _clip(segment: SpokenSegment, start_ms: int, end_ms: int) -> _Piece | None:
    """The part of the segment inside the span; None if it is outside. A segment whose end
    is before its start (bad data) is taken as an instant."""
    begin = int(segment.start_ms)
    end = max(begin, int(segment.end_ms))
    inside = start_ms <= begin <= end_ms if begin == end else begin < end_ms and end > start_ms
    if not inside:
        return None
    return _Piece(segment.speaker_identity, max(begin, start_ms), min(end, end_ms))


def _union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def _length(intervals: Iterable[tuple[int, int]]) -> int:
    return sum(end - begin for begin, end in intervals)


def _overlap(per_speaker: Iterable[list[tuple[int, int]]]) -> int:
    """Time covered by two or more of the (each already merged) interval lists."""
    events: list[tuple[int, int]] = []
    for intervals in per_speaker:
        for begin, end in intervals:
            events += [(begin, 1), (end, -1)]
    # Ends sort before starts at the same instant: touching intervals do not overlap.
    events.sort()
    total, active, since = 0, 0, 0
    for at, delta in events:
        if active >= 2:
            total += at - since
        active += delta
        since = at
    return total


def _collect(
    segments: Iterable[SpokenSegment], start_ms: int, end_ms: int
) -> tuple[dict[str, _Speaker], list[_Piece]]:
    speakers: dict[str, _Speaker] = {}
    pieces: list[_Piece] = []
    # The latest non-empty name wins: a participant may rename during the meeting.
    for segment in sorted(segments, key=lambda s: (s.start_ms, s.end_ms)):
        speaker = speakers.setdefault(segment.speaker_identity, _Speaker(segment.speaker_identity))
        if segment.speaker_name.strip():
            speaker.name = segment.speaker_name
        piece = _clip(segment, start_ms, end_ms)
        if piece is None:
            continue
        pieces.append(piece)
        speaker.intervals.append((piece.start, piece.end))
        if speaker.first_ms is None:
            speaker.first_ms = piece.start
    pieces.sort(key=lambda p: (p.start, p.end, p.identity))
    return speakers, pieces


def _find_turns(speakers: dict[str, _Speaker], pieces: Sequence[_Piece]) -> None:
    """Fill each speaker's turns and interruption counts, in one pass in start order."""
    starts = [p.start for p in pieces]
    open_turn: dict[str, tuple[int, int]] = {}
    # reach[identity]: the latest end among that speaker's pieces started before `at`.
    reach: dict[str, int] = {}
    behind = 0
    for piece in pieces:
        at = piece.start
        while pieces[behind].start < at:
            done = pieces[behind]
            reach[done.identity] = max(reach.get(done.identity, done.end), done.end)
            behind += 1
        turn = open_turn.get(piece.identity)
        if turn is not None and at - turn[1] < TURN_GAP_MS:
            first = bisect.bisect_left(starts, turn[1])
            last = bisect.bisect_right(starts, at)
            if all(p.identity == piece.identity for p in pieces[first:last]):
                open_turn[piece.identity] = (turn[0], max(turn[1], piece.end))
                continue
        if turn is not None:
            speakers[piece.identity].turns.append(turn)
        open_turn[piece.identity] = (at, piece.end)
        cut_in = [other for other, until in reach.items() if other != piece.identity and until > at]
        if cut_in:
            # One interruption for the interrupter, however many speakers it cut into.
            speakers[piece.identity].interruptions += 1
            for other in cut_in:
                speakers[other].interrupted += 1
    for identity, turn in open_turn.items():
        speakers[identity].turns.append(turn)


def meeting_analytics(
    segments: Iterable[SpokenSegment], start_ms: int, end_ms: int
) -> dict[str, Any]:
    """Per-participant and meeting figures over the span (see the module's definitions).

    ``{"meeting": {"start", "end", "durationMs", "speechMs", "silenceMs", "silenceShare",
    "overlapMs", "turns", "interruptions"}, "participants": [{"identity", "name",
    "talkTimeMs", "turns", "longestMonologueMs", "interruptions", "interrupted",
    "silenceMs"}]}``, participants in the order they first spoke (those with nothing inside
    the span last). Raises ``AnalyticsSpanError`` (a ``ValueError``) if ``end_ms < start_ms``.
    """
    start_ms, end_ms = int(start_ms), int(end_ms)
    _check_span(start_ms, end_ms)
    speakers, pieces = _collect(segments, start_ms, end_ms)
    _find_turns(speakers, pieces)
    duration = end_ms - start_ms
    unions = {identity: _union(s.intervals) for identity, s in speakers.items()}
    speech = _length(_union(span for union in unions.values() for span in union))
    silence = duration - speech
    ordered = _ordered(speakers)
    participants = []
    for speaker in ordered:
        talk = _length(unions[speaker.identity])
        participants.append(
            {
                "identity": speaker.identity,
                "name": speaker.name,
                "talkTimeMs": talk,
                "turns": len(speaker.turns),
                "longestMonologueMs": max((e - b for b, e in speaker.turns), default=0),
                "interruptions": speaker.interruptions,
                "interrupted": speaker.interrupted,
                "silenceMs": duration - talk,
            }
        )
    return {
        "meeting": {
            "start": iso_utc(start_ms),
            "end": iso_utc(end_ms),
            "durationMs": duration,
            "speechMs": speech,
            "silenceMs": silence,
            "silenceShare": silence / duration if duration > 0 else 0.0,
            "overlapMs": _overlap(unions.values()),
            "turns": sum(len(s.turns) for s in speakers.values()),
            "interruptions": sum(s.interruptions for s in speakers.values()),
        },
        "participants": participants,
    }


def _ordered(speakers: dict[str, _Speaker]) -> list[_Speaker]:
    never = 2**63
    return sorted(
        speakers.values(),
        key=lambda s: (s.first_ms if s.first_ms is not None else never, s.identity),
    )


def _lane_labels(speakers: Sequence[_Speaker]) -> list[str]:
    """Names for the lanes; a name two participants share gets their identities added."""
    labels = [s.label for s in speakers]
    shared = {label for label in labels if labels.count(label) > 1}
    labels = [
        f"{label} ({s.identity})" if label in shared and label != s.identity else label
        for label, s in zip(labels, speakers, strict=True)
    ]
    return [label if len(label) <= 28 else label[:27] + "…" for label in labels]


def timeline_png(segments: Iterable[SpokenSegment], start_ms: int, end_ms: int) -> bytes:
    """A speaker timeline as PNG: one lane per participant (in the order they first spoke),
    time across in seconds (minutes for spans over two minutes), each segment a bar.
    About 1000 x (120 + 40·lanes) px. No speech in the span gives a chart saying so.

    CPU-bound (tens of ms): an async caller runs it in a thread. It draws on its own
    ``Figure`` with the Agg canvas, never through pyplot, so no global figure state is
    touched and concurrent calls do not interfere.
    """
    start_ms, end_ms = int(start_ms), int(end_ms)
    _check_span(start_ms, end_ms)
    speakers, _pieces = _collect(segments, start_ms, end_ms)
    lanes = [s for s in _ordered(speakers) if s.intervals]

    # Lazily: matplotlib is heavy to import, and only this chart needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    height = 120 + 40 * max(1, len(lanes))
    figure = Figure(figsize=(1000 / dpi, height / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    duration = end_ms - start_ms
    minutes = duration > 120_000
    scale = 60_000.0 if minutes else 1000.0
    axes.set_xlim(0, max(duration, 1) / scale)
    axes.set_xlabel("time (min)" if minutes else "time (s)")
    if not lanes:
        axes.set_ylim(0, 1)
        axes.set_yticks([])
        axes.text(
            0.5, 0.5, "no speech", ha="center", va="center", transform=axes.transAxes,
            fontsize=14, color="0.4",
        )  # fmt: skip
    else:
        colours = [f"C{i % 10}" for i in range(len(lanes))]
        for lane, (speaker, colour) in enumerate(zip(lanes, colours, strict=True)):
            bars = [((b - start_ms) / scale, (e - b) / scale) for b, e in _union(speaker.intervals)]
            axes.broken_barh(bars, (lane - 0.35, 0.7), facecolors=colour)
        axes.set_ylim(len(lanes) - 0.5, -0.5)  # the first speaker on top
        # parse_math off: a name with "$" in it is a name, not a formula to fail on.
        axes.set_yticks(range(len(lanes)), _lane_labels(lanes), parse_math=False)
        axes.grid(axis="x", alpha=0.3)
    axes.set_title("Speaker timeline", loc="left", fontsize=11)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
