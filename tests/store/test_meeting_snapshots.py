"""The door's read (``MeetingRepository.door``): one statement while a meeting is unchanged,
and every change, made by this repository or by another process's, seen by the next read.
On SQLite and MariaDB."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from talkplatform_agents.errors import Unavailable
from talkplatform_agents.roles import Role
from talkplatform_agents.store import (
    Database,
    DoorView,
    MeetingRepository,
    WaitingRepository,
    WaitingStatus,
)


@pytest.fixture
async def elsewhere(db: Database) -> AsyncIterator[Database]:
    """A second engine on the same database: another process (the moderator bot, or a
    second service process), with its own pool and its own cache."""
    other = Database(db.url)
    try:
        yield other
    finally:
        await other.aclose()


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _meeting(repo: MeetingRepository, **settings: Any) -> str:
    meeting = await repo.create(title="t", settings=settings, host_user_id="host", host_name="H")
    return meeting.id


async def _door(repo: MeetingRepository, meeting_id: str, user_id: str) -> DoorView:
    door = await repo.door(meeting_id, user_id)
    assert door is not None
    return door


async def test_an_unchanged_meeting_costs_one_statement(db: Database) -> None:
    repo = MeetingRepository(db)
    mid = await _meeting(repo, waiting_room=True)
    first = await repo.door(mid, "host")
    assert first is not None and first.role is Role.HOST and first.standing is None
    assert first.snapshot.meeting.settings == {"waiting_room": True}
    with statements(db) as seen:
        again = await repo.door(mid, "guest")
    assert len(seen) == 1
    assert again is not None and again.snapshot is first.snapshot  # the cached copy
    assert again.role is None
    assert await repo.door("missing", "host") is None


async def test_every_change_moves_the_version(db: Database) -> None:
    repo = MeetingRepository(db)
    mid = await _meeting(repo)
    versions = [(await _door(repo, mid, "x")).snapshot.version]

    async def version_after(change: Any) -> None:
        await change
        versions.append((await _door(repo, mid, "x")).snapshot.version)
        assert versions[-1] > versions[-2]

    await version_after(repo.update_settings(mid, {"locked": True}))
    await version_after(repo.set_role(mid, "c1", Role.COHOST, "Co"))
    await version_after(repo.pass_host(mid, "host", "c1"))
    await version_after(repo.room_event(mid, started=True, at=dt.datetime.now(dt.UTC)))
    await version_after(repo.end(mid))
    await repo.end(mid)  # ending again changes nothing
    assert (await _door(repo, mid, "x")).snapshot.version == versions[-1]


async def test_changes_from_another_process_are_seen_by_the_next_read(
    db: Database, elsewhere: Database
) -> None:
    here, there = MeetingRepository(db), MeetingRepository(elsewhere)
    mid = await _meeting(here)
    assert (await _door(here, mid, "bob")).role is None

    await there.update_settings(mid, {"locked": True})
    assert (await _door(here, mid, "bob")).snapshot.meeting.settings == {"locked": True}

    await there.set_role(mid, "bob", Role.COHOST, "Bob")
    assert (await _door(here, mid, "bob")).role is Role.COHOST

    await there.pass_host(mid, "host", "bob")
    door = await _door(here, mid, "bob")
    assert door.role is Role.HOST
    assert door.snapshot.moderators() == {"bob": Role.HOST, "host": Role.COHOST}

    await there.end(mid)
    assert (await _door(here, mid, "bob")).snapshot.meeting.ended_at is not None


async def test_the_standing_is_read_fresh_every_time(db: Database, elsewhere: Database) -> None:
    repo = MeetingRepository(db)
    mid = await _meeting(repo)
    assert (await _door(repo, mid, "g1")).standing is None
    queue = WaitingRepository(elsewhere)
    await queue.knock(mid, "g1", "G")
    assert (await _door(repo, mid, "g1")).standing is WaitingStatus.WAITING
    await queue.put_back(mid, "g1", "G", "host", WaitingStatus.REMOVED)
    assert (await _door(repo, mid, "g1")).standing is WaitingStatus.REMOVED


async def test_a_burst_after_a_change_reloads_the_meeting_once(
    db: Database, elsewhere: Database
) -> None:
    repo = MeetingRepository(db)
    mid = await _meeting(repo)
    await repo.door(mid, "host")
    await MeetingRepository(elsewhere).update_settings(mid, {"waiting_room": True})
    with statements(db) as seen:
        doors = await asyncio.gather(*(_door(repo, mid, f"u{i}") for i in range(20)))
    assert len(seen) == 20 + 1  # each user's standing, and one reload of the meeting
    assert all(door.snapshot is doors[0].snapshot for door in doors)
    assert doors[0].snapshot.meeting.settings == {"waiting_room": True}


async def test_a_full_cache_forgets_the_least_recent_and_stays_right(db: Database) -> None:
    repo = MeetingRepository(db, snapshot_capacity=2)
    mids = [await _meeting(repo, n=i) for i in range(3)]
    for _ in range(2):
        for i, mid in enumerate(mids):
            assert (await _door(repo, mid, "host")).snapshot.meeting.settings == {"n": i}


async def test_the_door_of_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    try:
        with pytest.raises(Unavailable, match="database is unavailable"):
            await MeetingRepository(database).door("m1", "u1")
    finally:
        await database.aclose()
