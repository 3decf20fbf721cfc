"""The scheduler's actions on SQLite and MariaDB: of schedulers racing for one action
exactly one wins, a lease that passed is taken over, a failure is retried a bounded number
of times, and what is done is never done again."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    ScheduleActionRepository,
    ScheduleRecord,
    ScheduleRepository,
)

T0 = dt.datetime(2026, 3, 23, 8, 55, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 23, 9, 0, tzinfo=dt.UTC)


def _s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


async def _meeting(db: Database) -> str:
    meeting = await MeetingRepository(db).create(
        title="Weekly", settings={}, host_user_id="alice", host_name="Alice"
    )
    return meeting.id


async def test_of_two_schedulers_racing_exactly_one_wins(db: Database) -> None:
    other = Database(db.url)  # a second scheduler process: its own engine and pool
    try:
        mid = await _meeting(db)
        a, b = ScheduleActionRepository(db), ScheduleActionRepository(other)
        for action in ("open", "end"):
            wins = await asyncio.gather(
                *(
                    repo.claim(mid, START, action, f"sched-{i}", 60, T0)
                    for i, repo in enumerate([a, b, a, b])
                )
            )
            assert sorted(wins, key=lambda w: w or 0) == [None, None, None, 1]
        # A live lease is nobody else's, whoever asks.
        assert await b.claim(mid, START, "open", "sched-9", 60, T0 + _s(59)) is None
    finally:
        await other.aclose()


async def test_an_expired_lease_is_taken_over(db: Database) -> None:
    mid = await _meeting(db)
    repo = ScheduleActionRepository(db)
    assert await repo.claim(mid, START, "open", "dead", 30, T0) == 1
    later = T0 + _s(31)
    wins = await asyncio.gather(*(repo.claim(mid, START, "open", f"s-{i}", 30, later)
                                  for i in range(3)))  # fmt: skip
    assert sorted(w or 0 for w in wins) == [0, 0, 2]
    winner = await repo.get(mid, START, "open")
    assert winner is not None and winner.holder != "dead" and winner.attempts == 2
    # The dead holder, back, no longer holds it: its "done" changes nothing.
    assert await repo.done(mid, START, "open", "dead", later) is False
    assert await repo.done(mid, START, "open", winner.holder, later) is True


async def test_done_is_never_done_again(db: Database) -> None:
    mid = await _meeting(db)
    repo = ScheduleActionRepository(db)
    assert await repo.claim(mid, START, "record", "s-1", 30, T0) == 1
    assert await repo.done(mid, START, "record", "s-1", T0) is True
    for later in (T0, T0 + _s(31), T0 + dt.timedelta(days=30)):
        assert await repo.claim(mid, START, "record", "s-1", 30, later) is None
        assert await repo.claim(mid, START, "record", "s-2", 30, later) is None
    done = await repo.get(mid, START, "record")
    assert done is not None and done.status == "done" and done.done_at == T0
    # Another occurrence, or another action, is a claim of its own.
    assert await repo.claim(mid, START + dt.timedelta(days=7), "record", "s-2", 30, T0) == 1
    assert await repo.claim(mid, START, "end", "s-2", 30, T0) == 1
    # What a pass need not claim: the done one only (the others are pending).
    assert await repo.settled(T0, T0 + dt.timedelta(days=8)) == {(mid, START, "record")}
    assert await repo.settled(START + _s(1), T0 + dt.timedelta(days=8)) == set()


async def test_a_failure_is_retried_after_a_while_and_given_up_at_last(db: Database) -> None:
    mid = await _meeting(db)
    repo = ScheduleActionRepository(db)
    now = T0
    for attempt in (1, 2, 3):
        assert await repo.claim(mid, START, "open", "s-1", 30, now) == attempt
        assert await repo.failed(mid, START, "open", "s-1", f"boom {attempt}", now,
                                 retry_s=10, max_attempts=3)  # fmt: skip
        assert await repo.claim(mid, START, "open", "s-2", 30, now + _s(5)) is None  # waits
        now += _s(11)
    given_up = await repo.get(mid, START, "open")
    assert given_up is not None and given_up.status == "failed"
    assert given_up.last_error == "boom 3" and given_up.attempts == 3
    assert await repo.claim(mid, START, "open", "s-1", 30, now + dt.timedelta(days=1)) is None


async def test_due_schedules_lists_everyones_meetings_but_ended_and_cancelled(
    db: Database,
) -> None:
    schedules, meetings = ScheduleRepository(db), MeetingRepository(db)

    def record(start: dt.datetime) -> ScheduleRecord:
        return ScheduleRecord(
            timezone="UTC",
            start_local=start.replace(tzinfo=None).isoformat(),
            end_local=(start + _s(1800)).replace(tzinfo=None).isoformat(),
            starts_at=start,
            ends_at=start + _s(1800),
        )

    made = []
    for host in ("alice", "bob", "carol", "dave"):
        meeting, _ = await schedules.create(
            title=host, settings={}, host_user_id=host, host_name=None, record=record(START)
        )
        made.append(meeting.id)
    await schedules.create(title="later", settings={}, host_user_id="erin", host_name=None,
                           record=record(START + dt.timedelta(days=2)))  # fmt: skip
    await meetings.end(made[2])
    await schedules.cancel(made[3])
    due = await ScheduleActionRepository(db).due_schedules(T0, T0 + _s(3600))
    assert sorted(m.id for m, _ in due) == sorted(made[:2])  # by start, then id
    assert due[0][1].record.start_local == "2026-03-23T09:00:00"


async def test_due_schedules_pages_past_the_cap_and_says_so(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    schedules = ScheduleRepository(db)
    made = []
    # Five meetings, three at the same start: the keyset goes by start, then id.
    for i, start in enumerate([START, START, START, START + _s(60), START + _s(120)]):
        meeting, _ = await schedules.create(
            title=f"m{i}", settings={}, host_user_id="alice", host_name=None,
            record=ScheduleRecord(
                timezone="UTC", start_local=start.replace(tzinfo=None).isoformat(),
                end_local=(start + _s(1800)).replace(tzinfo=None).isoformat(),
                starts_at=start, ends_at=None,
            ),
        )  # fmt: skip
        made.append((start, meeting.id))
    window = (T0, T0 + _s(3600))
    with caplog.at_level(logging.WARNING):
        due = await ScheduleActionRepository(db, due_page=2).due_schedules(*window)
    assert [m.id for m, _ in due] == [mid for _, mid in sorted(made)]  # none dropped
    assert "5 scheduled meetings are due in one pass, more than 2" in caplog.text
    caplog.clear()
    assert len(await ScheduleActionRepository(db, due_page=5).due_schedules(*window)) == 5
    assert "scheduled meetings are due" not in caplog.text
