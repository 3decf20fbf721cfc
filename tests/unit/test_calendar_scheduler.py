"""The calendar's scheduler, one pass at a time on a fake clock: a real store (SQLite) for
its claims and fakes for the service's operations. The room opens ``lead`` before the
start, runs start at the start when settings say so, the meeting ends ``grace`` after the
end once only bots are left; each action runs once, across restarts and two schedulers,
and a failure is retried a bounded number of times."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from talkplatform_agents.calendar import Schedule
from talkplatform_agents.calendar.scheduler import (
    RunKind,
    Scheduled,
    Scheduler,
    SchedulerOptions,
)
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    ScheduleActionRepository,
    upgrade,
)

ZONE = "Europe/Berlin"
# 09:00 Berlin is 08:00 UTC in winter.
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(hours=1)
OPTIONS = SchedulerOptions(lead_s=300, grace_s=300, retry_s=30, max_attempts=3)


def _m(minutes: float) -> dt.timedelta:
    return dt.timedelta(minutes=minutes)


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += dt.timedelta(seconds=seconds)
        await asyncio.sleep(0)


class FakeOps:
    """The service's operations, recorded; ``humans`` per meeting; ``failing`` actions raise."""

    def __init__(self, meetings: list[Scheduled]) -> None:
        self.meetings = meetings
        self.calls: list[tuple[str, str]] = []
        self.humans: dict[str, int] = {}
        self.failing: set[str] = set()
        self.goes_on: list[bool] = []
        self.asked = 0  # humans_in calls

    async def due(self, window_start: dt.datetime, window_end: dt.datetime) -> list[Scheduled]:
        return list(self.meetings)

    def _call(self, action: str, meeting_id: str) -> None:
        self.calls.append((action, meeting_id))
        if action in self.failing:
            raise ConnectionError(f"{action} refused")

    async def open_room(self, meeting_id: str, empty_timeout_s: int) -> None:
        assert empty_timeout_s > OPTIONS.lead_s
        self._call("open", meeting_id)

    async def start_run(self, meeting_id: str, kind: RunKind, since: dt.datetime) -> None:
        self._call(kind, meeting_id)

    async def humans_in(self, meeting_id: str) -> int:
        self.asked += 1
        return self.humans.get(meeting_id, 0)

    async def end(self, meeting_id: str, *, series_goes_on: bool) -> None:
        self.goes_on.append(series_goes_on)
        self._call("end", meeting_id)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.aclose()


async def _meeting(db: Database, recurrence: str | None = None, **auto: bool) -> Scheduled:
    meeting = await MeetingRepository(db).create(
        title="Standup", settings={}, host_user_id="alice", host_name="Alice"
    )
    local = START.astimezone(dt.timezone(dt.timedelta(hours=1))).replace(tzinfo=None)
    schedule = Schedule.parse(local, local + dt.timedelta(hours=1), ZONE, recurrence)
    return Scheduled(meeting.id, schedule, **auto)


def _scheduler(db: Database, ops: FakeOps, clock: FakeClock, holder: str = "s-1") -> Scheduler:
    actions = ScheduleActionRepository(db)
    return Scheduler(ops, actions, holder=holder, clock=clock, options=OPTIONS)


async def test_the_room_opens_lead_before_the_start_and_only_once(db: Database) -> None:
    meeting = await _meeting(db)
    ops, clock = FakeOps([meeting]), FakeClock(START - _m(6))
    scheduler = _scheduler(db, ops, clock)
    assert await scheduler.tick() == 0 and ops.calls == []
    clock.at = START - _m(5)
    assert await scheduler.tick() == 1
    assert ops.calls == [("open", meeting.meeting_id)]
    for later in (START - _m(4), START, START + _m(30)):
        clock.at = later
        await scheduler.tick()
    assert ops.calls == [("open", meeting.meeting_id)]  # no settings: no runs


async def test_runs_start_at_the_start_when_the_settings_say_so(db: Database) -> None:
    both = await _meeting(db, record=True, transcribe=True)
    plain = await _meeting(db)
    ops, clock = FakeOps([both, plain]), FakeClock(START - _m(5))
    scheduler = _scheduler(db, ops, clock)
    await scheduler.tick()
    assert sorted(ops.calls) == sorted([("open", both.meeting_id), ("open", plain.meeting_id)])
    ops.calls.clear()
    clock.at = START
    await scheduler.tick()
    clock.at = START + _m(1)
    await scheduler.tick()
    assert ops.calls == [("record", both.meeting_id), ("transcribe", both.meeting_id)]


async def test_the_meeting_ends_after_the_grace_once_only_bots_are_left(db: Database) -> None:
    meeting = await _meeting(db)
    ops, clock = FakeOps([meeting]), FakeClock(END + _m(4))
    scheduler = _scheduler(db, ops, clock)
    await scheduler.tick()
    assert ("end", meeting.meeting_id) not in ops.calls  # within the grace
    ops.humans[meeting.meeting_id] = 2
    clock.at = END + _m(5)
    await scheduler.tick()
    assert ("end", meeting.meeting_id) not in ops.calls  # people are still talking
    ops.humans[meeting.meeting_id] = 0
    clock.at = END + _m(20)
    await scheduler.tick()
    clock.at = END + _m(21)
    await scheduler.tick()
    assert ops.calls.count(("end", meeting.meeting_id)) == 1
    assert ops.goes_on == [False]
    asked = ops.asked
    clock.at = END + _m(22)
    assert await scheduler.tick() == 0
    assert ops.asked == asked  # an ended occurrence costs livekit-server no more calls


async def test_an_occurrence_of_a_series_that_goes_on_closes_its_rooms_only(
    db: Database,
) -> None:
    meeting = await _meeting(db, "FREQ=WEEKLY;COUNT=2")
    ops = FakeOps([meeting])
    first, last = FakeClock(END + _m(5)), FakeClock(END + dt.timedelta(days=7) + _m(5))
    await _scheduler(db, ops, first).tick()
    await _scheduler(db, ops, last).tick()
    assert ops.goes_on == [True, False]


async def test_a_restarted_scheduler_runs_what_it_missed_once_and_nothing_done(
    db: Database,
) -> None:
    meeting = await _meeting(db, record=True)
    ops, clock = FakeOps([meeting]), FakeClock(START - _m(5))
    await _scheduler(db, ops, clock).tick()
    assert ops.calls == [("open", meeting.meeting_id)]
    # Down over the start; a new process (another holder) comes up 10 minutes late.
    clock.at = START + _m(10)
    again = _scheduler(db, ops, clock, holder="s-1-restarted")
    await again.tick()
    await again.tick()
    assert ops.calls == [("open", meeting.meeting_id), ("record", meeting.meeting_id)]


async def test_two_schedulers_never_both_act(db: Database) -> None:
    meetings = [await _meeting(db, record=True) for _ in range(3)]
    ops, clock = FakeOps(meetings), FakeClock(START)
    other_db = Database(db.url)
    try:
        a = _scheduler(db, ops, clock, "a")
        b = Scheduler(ops, ScheduleActionRepository(other_db), holder="b", clock=clock,
                      options=OPTIONS)  # fmt: skip
        ran = await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
    finally:
        await other_db.aclose()
    assert sum(ran) == 6
    assert sorted(ops.calls) == sorted(
        [(action, m.meeting_id) for m in meetings for action in ("open", "record")]
    )


async def test_a_failure_is_retried_on_a_later_tick_and_given_up_at_last(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    meeting = await _meeting(db)
    ops, clock = FakeOps([meeting]), FakeClock(START - _m(5))
    ops.failing.add("open")
    scheduler = _scheduler(db, ops, clock)
    await scheduler.tick()
    assert f"[meeting-{meeting.meeting_id}] scheduled open" in caplog.text
    assert "ConnectionError: open refused" in caplog.text
    await scheduler.tick()  # too soon for a retry
    assert len(ops.calls) == 1
    for _ in range(5):
        clock.at += dt.timedelta(seconds=OPTIONS.retry_s + 1)
        await scheduler.tick()
    assert len(ops.calls) == OPTIONS.max_attempts  # bounded
    assert "given up" in caplog.text
    view = await ScheduleActionRepository(db).get(meeting.meeting_id, START, "open")
    assert view is not None and view.status == "failed"


async def test_a_recovered_failure_is_done(db: Database) -> None:
    meeting = await _meeting(db)
    ops, clock = FakeOps([meeting]), FakeClock(START - _m(5))
    ops.failing.add("open")
    scheduler = _scheduler(db, ops, clock)
    await scheduler.tick()
    ops.failing.clear()
    clock.at += dt.timedelta(seconds=OPTIONS.retry_s + 1)
    await scheduler.tick()
    clock.at += dt.timedelta(seconds=OPTIONS.retry_s + 1)
    await scheduler.tick()
    assert len(ops.calls) == 2
    view = await ScheduleActionRepository(db).get(meeting.meeting_id, START, "open")
    assert view is not None and view.status == "done" and view.attempts == 2


async def test_run_passes_on_its_clock_until_stopped(db: Database) -> None:
    meeting = await _meeting(db)
    ops, clock = FakeOps([meeting]), FakeClock(START - _m(6))
    scheduler = _scheduler(db, ops, clock)
    scheduler.start()
    try:
        async with asyncio.timeout(10):
            while not ops.calls:  # noqa: ASYNC110 (the fakes offer nothing to await)
                await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    assert ops.calls == [("open", meeting.meeting_id)]
    assert clock.slept and set(clock.slept) == {OPTIONS.tick_s}
    await scheduler.stop()  # idempotent
