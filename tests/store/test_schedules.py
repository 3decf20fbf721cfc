"""Scheduled meetings on SQLite and MariaDB: a meeting and its schedule in one transaction,
edits under the sequence they read, cancellation, and the window a listing reads."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import Conflict, Gone, NotFound
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    MeetingView,
    ScheduleRecord,
    ScheduleRepository,
    ScheduleView,
)
from talkplatform_agents.store.models import Meeting, MeetingSchedule

UTC = dt.UTC


def _record(**changes: object) -> ScheduleRecord:
    base: dict[str, object] = {
        "timezone": "Europe/Berlin",
        "start_local": "2026-03-23T09:00:00",
        "end_local": "2026-03-23T09:30:00",
        "starts_at": dt.datetime(2026, 3, 23, 8, 0, tzinfo=UTC),
        "ends_at": None,
        "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
        "attendees": ("bob@example.org", "carol"),
        "organizer_email": "alice@example.org",
    }
    base.update(changes)
    return ScheduleRecord(**base)  # type: ignore[arg-type]


async def _create(repo: ScheduleRepository, record: ScheduleRecord | None = None) -> str:
    meeting, schedule = await repo.create(
        title="Weekly",
        settings={},
        host_user_id="alice",
        host_name="Alice",
        record=record or _record(),
    )
    assert schedule.meeting_id == meeting.id and schedule.sequence == 0
    return meeting.id


async def test_a_meeting_and_its_schedule_are_created_and_read_back(db: Database) -> None:
    repo = ScheduleRepository(db)
    record = _record(overrides=({"recurrenceId": "2026-03-30T09:00:00", "start": "x"},))
    mid = await _create(repo, record)
    stored = await repo.get(mid)
    assert stored is not None
    assert stored.record == record
    assert stored.cancelled_at is None and stored.sequence == 0
    assert stored.created_at.tzinfo is not None
    meeting = await MeetingRepository(db).get(mid)
    assert meeting is not None and meeting.title == "Weekly"
    assert await MeetingRepository(db).role(mid, "alice") == "host"
    assert await repo.get("nope") is None


async def test_a_failed_schedule_leaves_no_meeting(db: Database) -> None:
    """Never a half-created series: a schedule the database refuses takes its meeting back."""
    repo = ScheduleRepository(db)
    with pytest.raises(IntegrityError):  # a NULL where none may be, after the meeting
        await repo.create(
            title="t",
            settings={},
            host_user_id="alice",
            host_name=None,
            record=_record(start_local=None),
        )
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Meeting)) == 0
        assert await session.scalar(select(func.count()).select_from(MeetingSchedule)) == 0


async def test_updates_raise_the_sequence_under_the_one_read(db: Database) -> None:
    repo = ScheduleRepository(db)
    mid = await _create(repo)
    moved = _record(exdates=("2026-03-30T09:00:00",))
    first = await repo.update(mid, moved, if_sequence=0)
    assert first.sequence == 1 and first.record.exdates == ("2026-03-30T09:00:00",)
    assert first.updated_at >= first.created_at
    with pytest.raises(Conflict) as stale:
        await repo.update(mid, _record(), if_sequence=0)
    assert stale.value.context["sequence"] == 1
    with pytest.raises(NotFound):
        await repo.update("nope", _record(), if_sequence=0)


async def test_two_edits_at_once_one_wins(db: Database) -> None:
    repo = ScheduleRepository(db)
    mid = await _create(repo)
    results = await asyncio.gather(
        *(repo.update(mid, _record(rrule=f"FREQ=DAILY;COUNT={n}"), if_sequence=0) for n in (2, 3)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "ScheduleView"]
    stored = await repo.get(mid)
    assert stored is not None and stored.sequence == 1


async def test_cancelling_a_series_once(db: Database) -> None:
    repo = ScheduleRepository(db)
    mid = await _create(repo)
    cancelled = await repo.cancel(mid)
    assert cancelled.cancelled_at is not None and cancelled.sequence == 1
    again = await repo.cancel(mid)
    assert again.cancelled_at == cancelled.cancelled_at and again.sequence == 1
    with pytest.raises(Gone):
        await repo.update(mid, _record(), if_sequence=1)
    with pytest.raises(NotFound):
        await repo.cancel("nope")


async def test_a_listing_reads_the_window_and_the_persons_meetings(db: Database) -> None:
    repo = ScheduleRepository(db)
    march = dt.datetime(2026, 3, 1, tzinfo=UTC)
    open_series = await _create(repo)
    single = await _create(
        repo,
        _record(
            rrule=None,
            starts_at=dt.datetime(2026, 3, 10, 8, tzinfo=UTC),
            ends_at=dt.datetime(2026, 3, 10, 9, tzinfo=UTC),
            attendees=("dave%",),
        ),
    )
    gone = await _create(repo)
    await repo.cancel(gone)

    def ids(found: list[tuple[MeetingView, ScheduleView]]) -> list[str]:
        return [m.id for m, _ in found]

    whole = await repo.overlapping(march, march + dt.timedelta(days=60), people=["alice"])
    assert ids(whole) == [single, open_series]
    later = await repo.overlapping(
        dt.datetime(2026, 3, 11, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC), people=["alice"]
    )
    assert ids(later) == [open_series]
    early = await repo.overlapping(march, march + dt.timedelta(days=5), people=["alice"])
    assert early == []
    window = (march, march + dt.timedelta(days=60))
    assert ids(await repo.overlapping(*window, people=["carol"])) == [open_series]
    assert ids(await repo.overlapping(*window, people=["bob@example.org"])) == [open_series]
    assert ids(await repo.overlapping(*window, people=["dave%"])) == [single]
    # Only whole entries count: "car" is in "carol", "dave" a prefix of "dave%".
    assert await repo.overlapping(*window, people=["car", "dave", "bob"]) == []
    assert await repo.overlapping(*window, people=[]) == []
