"""Recordings on SQLite and MariaDB: one running recording per meeting however many
processes start one at once, a recorder's parts, stop requests and first outcomes."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from talkplatform_agents.errors import Conflict, NotFound
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    RecordingRepository,
    RunStatus,
)


async def _meeting(db: Database) -> str:
    meeting = await MeetingRepository(db).create(
        title="t", settings={}, host_user_id="alice", host_name="Alice"
    )
    return meeting.id


async def test_a_recording_starts_and_a_second_start_conflicts(db: Database) -> None:
    recordings = RecordingRepository(db)
    mid = await _meeting(db)
    first = await recordings.start(mid, "alice")
    assert first.status is RunStatus.STARTING and first.parts == 0
    with pytest.raises(Conflict) as refused:
        await recordings.start(mid, "bob")
    assert refused.value.context["recordingId"] == first.id
    assert (await recordings.running(mid)) == first
    assert await recordings.of_meeting(mid) == [first]


async def test_an_unknown_meeting_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await RecordingRepository(db).start("nope", "alice")


async def test_once_ended_a_new_recording_may_start(db: Database) -> None:
    recordings = RecordingRepository(db)
    mid = await _meeting(db)
    first = await recordings.start(mid, "alice")
    await recordings.mark_active(first.id)
    done = await recordings.finish(first.id, RunStatus.COMPLETE)
    assert done is not None and done.status is RunStatus.COMPLETE and done.ended_at
    assert await recordings.running(mid) is None
    second = await recordings.start(mid, "alice")
    assert [r.id for r in await recordings.of_meeting(mid)] == [first.id, second.id]


async def test_concurrent_starts_from_two_processes_make_one_recording(
    database_url: str, db: Database
) -> None:
    mid = await _meeting(db)
    other = Database(database_url)  # a second service process's pool
    try:
        results = await asyncio.gather(
            *(
                RecordingRepository(d).start(mid, f"host-{i}")
                for i, d in enumerate([db, other] * 3)
            ),
            return_exceptions=True,
        )
    finally:
        await other.aclose()
    started = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(started) == 1
    assert all(isinstance(r, Conflict) for r in refused) and len(refused) == 5
    assert len(await RecordingRepository(db).of_meeting(mid)) == 1


async def test_each_recorder_session_gets_its_own_part(db: Database) -> None:
    recordings = RecordingRepository(db)
    rid = (await recordings.start(await _meeting(db), "alice")).id
    first = await recordings.mark_active(rid)
    assert first is not None and first.status is RunStatus.ACTIVE and first.parts == 1
    assert first.started_at is not None and first.seen_at is not None
    # A replacement recorder (the first died) and a twin at once: distinct parts.
    parts = await asyncio.gather(recordings.mark_active(rid), recordings.mark_active(rid))
    assert sorted(p.parts for p in parts if p) == [2, 3]
    stored = await recordings.get(rid)
    assert stored is not None and stored.parts == 3 and stored.started_at == first.started_at


async def test_a_stop_reaches_the_recorder_through_its_check_in(db: Database) -> None:
    recordings = RecordingRepository(db)
    rid = (await recordings.start(await _meeting(db), "alice")).id
    await recordings.mark_active(rid)
    seen = await recordings.check_in(rid)
    assert seen is not None and seen.status is RunStatus.ACTIVE
    stopping = await recordings.request_stop(rid)
    assert stopping is not None and stopping.status is RunStatus.STOPPING
    again = await recordings.request_stop(rid)  # a repeat changes nothing
    assert again is not None and again.status is RunStatus.STOPPING
    seen = await recordings.check_in(rid)
    assert seen is not None and seen.status is RunStatus.STOPPING
    # A recorder that comes back while stopping gets no new part: it finalises.
    back = await recordings.mark_active(rid)
    assert back is not None and back.status is RunStatus.STOPPING and back.parts == 1
    done = await recordings.finish(rid, RunStatus.COMPLETE)
    assert done is not None and done.status is RunStatus.COMPLETE


async def test_a_stop_before_any_recorder_began_aborts(db: Database) -> None:
    recordings = RecordingRepository(db)
    mid = await _meeting(db)
    rid = (await recordings.start(mid, "alice")).id
    aborted = await recordings.request_stop(rid)
    assert aborted is not None and aborted.status is RunStatus.ABORTED
    assert await recordings.running(mid) is None
    late = await recordings.mark_active(rid)  # the recorder arrives after all: it leaves
    assert late is not None and late.status is RunStatus.ABORTED and late.parts == 0


async def test_a_silent_stopping_recorder_is_taken_for_dead(db: Database) -> None:
    recordings = RecordingRepository(db)
    mid = await _meeting(db)
    rid = (await recordings.start(mid, "alice")).id
    await recordings.mark_active(rid)
    await recordings.request_stop(rid)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    alive = await recordings.request_stop(rid, silent_since=past)
    assert alive is not None and alive.status is RunStatus.STOPPING
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    dead = await recordings.request_stop(rid, silent_since=future)
    assert dead is not None and dead.status is RunStatus.FAILED
    assert dead.error and "checking in" in dead.error
    assert await recordings.running(mid) is None


async def test_the_first_outcome_stands(db: Database) -> None:
    recordings = RecordingRepository(db)
    rid = (await recordings.start(await _meeting(db), "alice")).id
    await recordings.mark_active(rid)
    failed = await recordings.finish(rid, RunStatus.FAILED, "disk full " + "x" * 2000)
    assert failed is not None and failed.status is RunStatus.FAILED
    assert failed.error is not None and failed.error.startswith("disk full")
    assert len(failed.error) <= 1000
    later = await recordings.finish(rid, RunStatus.COMPLETE)
    assert later is not None and later.status is RunStatus.FAILED
    stored = await recordings.get(rid)
    assert stored is not None and stored.error == failed.error
    with pytest.raises(ValueError, match="complete or failed"):
        await recordings.finish(rid, RunStatus.STOPPING)


async def test_unknown_recordings_are_none(db: Database) -> None:
    recordings = RecordingRepository(db)
    assert await recordings.get("nope") is None
    assert await recordings.mark_active("nope") is None
    assert await recordings.check_in("nope") is None
    assert await recordings.request_stop("nope") is None
    assert await recordings.finish("nope", RunStatus.COMPLETE) is None
