"""Transcriptions and their segments on SQLite and MariaDB: the run lifecycle they share with
recordings (one running per meeting, of each kind), segments stored once however often the
transcriber retries, checked on the way in, and read back in the order spoken."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from sqlalchemy import delete, func, select

from talkplatform_agents.errors import Conflict, NotFound
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    RecordingRepository,
    RunStatus,
    SegmentView,
    TranscriptionRepository,
    Word,
)
from talkplatform_agents.store.models import Meeting, TranscriptSegment
from talkplatform_agents.store.transcriptions import MAX_SEGMENT_TEXT, MAX_SEGMENT_WORDS

T0 = 1_750_000_000_000  # a Unix time in ms


async def _meeting(db: Database) -> str:
    meeting = await MeetingRepository(db).create(
        title="t", settings={}, host_user_id="alice", host_name="Alice"
    )
    return meeting.id


def _segment(
    mid: str, tid: str, sid: str, speaker: str, start: int, end: int, text: str = "hello there"
) -> SegmentView:
    words = text.split()
    step = (end - start) // max(1, len(words))
    return SegmentView(
        id=sid,
        meeting_id=mid,
        transcription_id=tid,
        speaker_identity=speaker,
        speaker_name=speaker.title(),
        track_sid=f"TR_{speaker}",
        start_ms=start,
        end_ms=end,
        text=text,
        words=tuple(
            Word(word=w, start_ms=start + i * step, end_ms=start + (i + 1) * step)
            for i, w in enumerate(words)
        ),
        confidence=0.8,
    )


async def test_a_transcription_runs_its_course_beside_a_recording(db: Database) -> None:
    transcriptions = TranscriptionRepository(db)
    mid = await _meeting(db)
    recording = await RecordingRepository(db).start(mid, "alice")  # its own kind: no conflict
    first = await transcriptions.start(mid, "alice")
    assert first.status is RunStatus.STARTING and first.id != recording.id
    with pytest.raises(Conflict) as refused:
        await transcriptions.start(mid, "bob")
    assert refused.value.context["transcriptionId"] == first.id
    assert "transcription" in refused.value.message
    assert await transcriptions.running(mid) == first
    active = await transcriptions.mark_active(first.id)
    assert active is not None and active.status is RunStatus.ACTIVE and active.parts == 1
    await transcriptions.request_stop(first.id)
    seen = await transcriptions.check_in(first.id)
    assert seen is not None and seen.status is RunStatus.STOPPING
    done = await transcriptions.finish(first.id, RunStatus.COMPLETE)
    assert done is not None and done.status is RunStatus.COMPLETE and done.ended_at
    assert await transcriptions.running(mid) is None
    assert await RecordingRepository(db).running(mid) is not None
    second = await transcriptions.start(mid, "alice")
    assert [t.id for t in await transcriptions.of_meeting(mid)] == [first.id, second.id]
    assert [r.id for r in await RecordingRepository(db).of_meeting(mid)] == [recording.id]
    assert await RecordingRepository(db).get(first.id) is None  # ids are per kind


async def test_a_silent_stopping_transcriber_is_taken_for_dead(db: Database) -> None:
    transcriptions = TranscriptionRepository(db)
    tid = (await transcriptions.start(await _meeting(db), "alice")).id
    await transcriptions.mark_active(tid)
    await transcriptions.request_stop(tid)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    dead = await transcriptions.request_stop(tid, silent_since=future)
    assert dead is not None and dead.status is RunStatus.FAILED
    assert dead.error == "the transcriber stopped checking in"
    with pytest.raises(ValueError, match="transcription finishes complete or failed"):
        await transcriptions.finish(tid, RunStatus.ABORTED)


async def test_segments_read_back_in_the_order_spoken(db: Database) -> None:
    transcriptions = TranscriptionRepository(db)
    mid = await _meeting(db)
    other = await _meeting(db)
    first = (await transcriptions.start(mid, "alice")).id
    elsewhere = (await transcriptions.start(other, "alice")).id
    stored = [
        _segment(mid, first, "SG_3", "bob", T0 + 5000, T0 + 7000, "and then ünïcode 🎙"),
        _segment(mid, first, "SG_1", "carol", T0 + 1000, T0 + 2000),
        _segment(mid, first, "SG_2", "alice", T0 + 1000, T0 + 1500, "at once"),
    ]
    for segment in stored:
        assert await transcriptions.add_segment(segment) is True
    await transcriptions.finish(first, RunStatus.COMPLETE)
    second = (await transcriptions.start(mid, "alice")).id
    later = _segment(mid, second, "SG_1", "bob", T0 + 60_000, T0 + 61_000)  # same id, new run
    assert await transcriptions.add_segment(later) is True
    await transcriptions.add_segment(_segment(other, elsewhere, "SG_9", "x", T0, T0 + 10))
    read = await transcriptions.segments(mid)
    # By start, then speaker (alice and carol began together).
    assert [(s.transcription_id, s.id) for s in read] == [
        (first, "SG_2"),
        (first, "SG_1"),
        (first, "SG_3"),
        (second, "SG_1"),
    ]
    assert read[2] == stored[0]  # every field, words and all, as stored
    assert [w.word for w in read[2].words] == ["and", "then", "ünïcode", "🎙"]
    assert await transcriptions.segments("nope") == []


async def test_a_segment_stored_twice_is_stored_once(db: Database) -> None:
    transcriptions = TranscriptionRepository(db)
    mid = await _meeting(db)
    tid = (await transcriptions.start(mid, "alice")).id
    segment = _segment(mid, tid, "SG_1", "bob", T0, T0 + 900)
    assert await transcriptions.add_segment(segment) is True
    retry = dataclasses.replace(segment, text="something else")
    assert await transcriptions.add_segment(retry) is False
    assert await transcriptions.segments(mid) == [segment]


async def test_concurrent_retries_from_two_processes_store_one_segment(
    database_url: str, db: Database
) -> None:
    transcriptions = TranscriptionRepository(db)
    mid = await _meeting(db)
    tid = (await transcriptions.start(mid, "alice")).id
    other = Database(database_url)  # a second transcriber process's pool
    try:
        results = await asyncio.gather(
            *(
                TranscriptionRepository(d).add_segment(
                    _segment(mid, tid, f"SG_{n}", "bob", T0 + n, T0 + n + 500)
                )
                for n in range(4)
                for d in (db, other, db)
            )
        )
    finally:
        await other.aclose()
    assert sorted(results) == [False] * 8 + [True] * 4
    assert [s.id for s in await transcriptions.segments(mid)] == ["SG_0", "SG_1", "SG_2", "SG_3"]


async def test_segments_are_checked_on_the_way_in(db: Database) -> None:
    transcriptions = TranscriptionRepository(db)
    mid = await _meeting(db)
    other = await _meeting(db)
    tid = (await transcriptions.start(mid, "alice")).id
    good = _segment(mid, tid, "SG_1", "bob", T0, T0 + 1000)
    many = tuple(Word("w", T0, T0 + 1) for _ in range(MAX_SEGMENT_WORDS + 1))
    bad = {
        "before start": dataclasses.replace(good, end_ms=T0 - 1),
        "words": dataclasses.replace(good, words=many),
        "word end": dataclasses.replace(good, words=(Word("x", T0 + 5, T0 + 4),)),
        "negative": dataclasses.replace(good, start_ms=-5),
        "id": dataclasses.replace(good, id="x" * 129),
        "no speaker": dataclasses.replace(good, speaker_identity=""),
        "nan": dataclasses.replace(good, confidence=float("nan")),
        "meeting": dataclasses.replace(good, meeting_id=other),
    }
    for what, segment in bad.items():
        with pytest.raises(ValueError):
            await transcriptions.add_segment(segment)
        assert await transcriptions.segments(mid) == [], what
    with pytest.raises(NotFound):
        await transcriptions.add_segment(dataclasses.replace(good, transcription_id="nope"))
    # At the limits: kept, the text clipped, the confidence brought into 0..1.
    most = tuple(Word("w", T0, T0 + 1) for _ in range(MAX_SEGMENT_WORDS))
    long = dataclasses.replace(
        good, text="y" * (MAX_SEGMENT_TEXT + 50), words=most, confidence=1.0000001, track_sid=""
    )
    assert await transcriptions.add_segment(long) is True
    [kept] = await transcriptions.segments(mid)
    assert kept.text == "y" * MAX_SEGMENT_TEXT and len(kept.words) == MAX_SEGMENT_WORDS
    assert kept.confidence == 1.0 and kept.track_sid == ""


async def test_a_meetings_segments_go_with_it(db: Database) -> None:
    transcriptions = TranscriptionRepository(db)
    mid = await _meeting(db)
    tid = (await transcriptions.start(mid, "alice")).id
    await transcriptions.add_segment(_segment(mid, tid, "SG_1", "bob", T0, T0 + 1000))
    async with db.session() as session:
        await session.execute(delete(Meeting).where(Meeting.id == mid))
    async with db.session() as session:
        left = await session.scalar(select(func.count()).select_from(TranscriptSegment))
    assert left == 0
    assert await transcriptions.get(tid) is None
