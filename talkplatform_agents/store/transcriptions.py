"""Transcriptions of meeting rooms and their transcripts.

A transcription is a bot run (``store/runs.py``: statuses, one running per meeting, stop
requests, check-ins): the service ``start``s it and dispatches the transcriber, which
``mark_active``s, ``check_in``s, stores each final caption (``add_segment``) and
``finish``es. A replacement transcriber carries the same transcription on.

A segment is one final caption: who spoke (identity, name then, track), when (Unix ms, from
the first word's start to the last word's end), the text, its words with their times, and
the recogniser's confidence. Its id is the transcriber's segment id (``lk.segment_id``),
unique within the transcription, so storing a segment again (a retry after a store hiccup)
changes nothing. A meeting's transcript is its segments, across its transcriptions, in the
order they were spoken.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import NotFound
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Transcription, TranscriptSegment
from talkplatform_agents.store.runs import RunKind, RunRepository, RunView

__all__ = [
    "MAX_SEGMENT_TEXT",
    "MAX_SEGMENT_WORDS",
    "SegmentView",
    "TranscriptionRepository",
    "TranscriptionView",
    "Word",
]

MAX_SEGMENT_TEXT = 4000  # characters of a segment's text kept (a longer one is clipped)
MAX_SEGMENT_WORDS = 500  # words in one segment (more is a ValueError)
MAX_WORD = 200  # characters of one word kept
_MAX_ID = 128  # a segment id, a speaker identity
_MAX_NAME = 200
_MAX_TRACK = 64

_KIND = RunKind(noun="transcription", bot="the transcriber", id_key="transcriptionId")


@dataclass(frozen=True)
class Word:
    word: str
    start_ms: int  # Unix time, ms
    end_ms: int


@dataclass(frozen=True)
class SegmentView:
    id: str  # the transcriber's segment id (its lk.segment_id), unique per transcription
    meeting_id: str
    transcription_id: str
    speaker_identity: str
    speaker_name: str  # display name at the time ('' if none)
    track_sid: str
    start_ms: int  # Unix time in ms: speech start (first word)
    end_ms: int  # Unix time in ms: speech end (last word)
    text: str
    words: tuple[Word, ...]
    confidence: float  # 0..1

    @classmethod
    def of(cls, row: TranscriptSegment) -> SegmentView:
        return cls(
            id=row.id,
            meeting_id=row.meeting_id,
            transcription_id=row.transcription_id,
            speaker_identity=row.speaker_identity,
            speaker_name=row.speaker_name,
            track_sid=row.track_sid,
            start_ms=row.start_ms,
            end_ms=row.end_ms,
            text=row.text,
            words=_words_of(row.words),
            confidence=row.confidence,
        )


@dataclass(frozen=True)
class TranscriptionView(RunView):
    """A transcription as read from the store (``parts``: transcriber sessions so far)."""


class TranscriptionRepository(RunRepository[Transcription, TranscriptionView]):
    def __init__(self, db: Database) -> None:
        super().__init__(db, Transcription, TranscriptionView, _KIND)

    async def add_segment(self, segment: SegmentView) -> bool:
        """Store a final segment; False if it was stored already (nothing changes then).
        A segment that cannot be right (times backwards, too many words, an id too long)
        is a ValueError, as is one whose meeting is not its transcription's; an unknown
        transcription is ``NotFound``. A text longer than ``MAX_SEGMENT_TEXT`` is clipped."""
        row = _row(segment)
        key = (row.transcription_id, row.id)
        try:
            async with self._db.session() as session:
                run = await session.get(Transcription, row.transcription_id)
                if run is None:
                    raise NotFound("no such transcription", transcriptionId=row.transcription_id)
                if run.meeting_id != row.meeting_id:
                    raise ValueError(
                        f"segment {row.id!r} names meeting {row.meeting_id!r}, but its "
                        f"transcription is of meeting {run.meeting_id!r}"
                    )
                if await session.get(TranscriptSegment, key) is not None:
                    return False
                session.add(row)
        except IntegrityError:
            # The same segment stored at the same moment by another writer (a retry that
            # overtook the first attempt): it is there, which is all that was asked.
            async with self._db.session() as session:
                if await session.get(TranscriptSegment, key) is not None:
                    return False
            raise
        return True

    async def segments(self, meeting_id: str) -> list[SegmentView]:
        """The meeting's transcript: every segment of its transcriptions, in the order
        spoken (by start, then speaker)."""
        query = (
            select(TranscriptSegment)
            .where(TranscriptSegment.meeting_id == meeting_id)
            .order_by(
                TranscriptSegment.start_ms,
                TranscriptSegment.speaker_identity,
                TranscriptSegment.id,
            )
        )
        async with self._db.session() as session:
            return [SegmentView.of(row) for row in (await session.scalars(query)).all()]


def _row(segment: SegmentView) -> TranscriptSegment:
    """The row to insert for ``segment``, checked (ValueError) and clipped."""
    sid = segment.id
    for what, value, limit in [
        ("id", sid, _MAX_ID),
        ("transcription_id", segment.transcription_id, 64),
        ("meeting_id", segment.meeting_id, 64),
        ("speaker_identity", segment.speaker_identity, _MAX_ID),
        ("track_sid", segment.track_sid, _MAX_TRACK),
    ]:
        if len(value) > limit or (not value and what != "track_sid"):
            raise ValueError(f"segment {sid!r}: {what} must be 1 to {limit} characters")
    _check_span(f"segment {sid!r}", segment.start_ms, segment.end_ms)
    if len(segment.words) > MAX_SEGMENT_WORDS:
        raise ValueError(
            f"segment {sid!r}: {len(segment.words)} words, at most {MAX_SEGMENT_WORDS} allowed"
        )
    for n, word in enumerate(segment.words):
        _check_span(f"segment {sid!r}, word {n}", word.start_ms, word.end_ms)
    if not math.isfinite(segment.confidence):
        raise ValueError(f"segment {sid!r}: confidence must be a number, not {segment.confidence}")
    words = [
        {"word": w.word[:MAX_WORD], "start_ms": w.start_ms, "end_ms": w.end_ms}
        for w in segment.words
    ]
    return TranscriptSegment(
        transcription_id=segment.transcription_id,
        id=sid,
        meeting_id=segment.meeting_id,
        speaker_identity=segment.speaker_identity,
        speaker_name=segment.speaker_name[:_MAX_NAME],
        track_sid=segment.track_sid,
        start_ms=segment.start_ms,
        end_ms=segment.end_ms,
        text=segment.text[:MAX_SEGMENT_TEXT],
        words=json.dumps(words, ensure_ascii=False, separators=(",", ":")),
        # Recognisers differ in scale at the edges (a few give 1.0000001); 0..1 it is.
        confidence=min(1.0, max(0.0, float(segment.confidence))),
    )


def _check_span(what: str, start_ms: int, end_ms: int) -> None:
    if start_ms < 0:
        raise ValueError(f"{what}: start_ms must be a Unix time in ms, not {start_ms}")
    if end_ms < start_ms:
        raise ValueError(f"{what}: end_ms ({end_ms}) is before start_ms ({start_ms})")


def _words_of(stored: str) -> tuple[Word, ...]:
    items: Any = json.loads(stored) if stored else []
    return tuple(
        Word(word=str(w["word"]), start_ms=int(w["start_ms"]), end_ms=int(w["end_ms"]))
        for w in items
    )
