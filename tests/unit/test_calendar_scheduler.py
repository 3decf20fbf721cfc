"""The calendar's scheduler, one pass at a time on a fake clock: a real store (SQLite) for
its claims and fakes for the service's operations. The room opens ``lead`` before the
start, runs start at the start when settings say so, the meeting ends ``grace`` after the
end once only bots are left; each action runs once, across restarts and two schedulers,
and a failure is retried a bounded number of times."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from talkplatform_agents.calendar import Override, Schedule
from talkplatform_agents.calendar.scheduler import (
    RunKind,
    Scheduled,
    Scheduler,
    SchedulerOptions,
)
from talkplatform_agents.calendar.stored import record_of
from talkplatform_agents.lk.naming import lobby_room_name, meeting_room_name
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.moderation import HostControls
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.waiting_room import WaitingRoom
from talkplatform_agents.service.schedule_ops import MAX_HOLDER, scheduler_holder
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    ScheduleActionRepository,
    ScheduleRepository,
    WaitingRepository,
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


@pytest.mark.parametrize(
    "recurrence",
    [
        "FREQ=YEARLY;INTERVAL=2",  # the next is two years on
        "FREQ=MONTHLY;INTERVAL=14",  # more than 399 days on
        "FREQ=WEEKLY;INTERVAL=60",
    ],
)
async def test_a_series_whose_next_occurrence_is_years_ahead_goes_on(
    db: Database, recurrence: str
) -> None:
    meeting = await _meeting(db, recurrence)
    ops = FakeOps([meeting])
    await _scheduler(db, ops, FakeClock(END + _m(5))).tick()
    assert ops.goes_on == [True]  # its rooms close; the meeting is not ended


async def test_an_end_closes_nothing_once_the_next_occurrences_window_opened(
    db: Database,
) -> None:
    # A daily series whose second occurrence was moved to 5 minutes after the first: it
    # opens (start - 5 min) right at the end of the first, before the first's end is due
    # (end + 5 min grace).
    daily = await _meeting(db, "FREQ=DAILY;COUNT=3")
    first = daily.schedule
    moved = Override(
        first.start + dt.timedelta(days=1), first.end + _m(5), first.end + _m(65), None
    )
    meeting = Scheduled(daily.meeting_id, replace(first, overrides=(moved,)))
    ops, clock = FakeOps([meeting]), FakeClock(END + _m(5))
    scheduler = _scheduler(db, ops, clock)
    await scheduler.tick()
    assert ("end", meeting.meeting_id) not in ops.calls  # the next one's rooms are kept
    assert ops.calls == [("open", meeting.meeting_id)]  # the next one's
    view = await ScheduleActionRepository(db).get(meeting.meeting_id, START, "end")
    assert view is not None and view.status == "done"
    assert view.last_error is not None and "next occurrence is open" in view.last_error
    # A delayed end: the next one's open already ran, its end must not close its rooms.
    ops.calls.clear()
    clock.at = END + _m(30)
    await scheduler.tick()
    assert ops.calls == []


class FakeServer:
    """livekit-server's API as ``HostControls.end`` calls it: every call recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        async def call(*args: object, **kwargs: object) -> None:
            self.calls.append((name, args))

        return call


@pytest.mark.parametrize(("recurrence", "goes_on"), [("FREQ=WEEKLY", True), (None, False)])
async def test_a_hosts_end_of_a_series_that_goes_on_closes_its_rooms_only(
    db: Database, recurrence: str | None, goes_on: bool
) -> None:
    # Started yesterday: a weekly series goes on, a single meeting is over.
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    local = start.replace(tzinfo=None)
    schedule = Schedule.parse(local, local + dt.timedelta(hours=1), "UTC", recurrence)
    meeting, _ = await ScheduleRepository(db).create(
        title="Weekly", settings={}, host_user_id="alice", host_name="Alice",
        record=record_of(schedule, [], None),
    )  # fmt: skip
    server = FakeServer()
    deps = ModerationDeps(
        MeetingRepository(db), WaitingRepository(db), cast("ServerApi", server),
        Credentials("key", "secret" * 8), "ws://livekit", dt.timedelta(hours=1),
        ScheduleRepository(db),
    )  # fmt: skip
    controls = HostControls(deps, WaitingRoom(deps))
    result = await controls.end(meeting.id, "alice")
    deleted = [args[0] for name, args in server.calls if name == "delete_room"]
    assert deleted == [meeting_room_name(meeting.id), lobby_room_name(meeting.id)]
    stored = await MeetingRepository(db).get(meeting.id)
    assert stored is not None
    if goes_on:
        assert result == {"endedAt": None, "seriesGoesOn": True}
        assert stored.ended_at is None  # joins still work, for the next occurrence
    else:
        assert result["endedAt"] is not None and stored.ended_at is not None


def test_a_count_series_is_stored_with_its_last_end_and_a_days_slack() -> None:
    local = dt.datetime(2026, 3, 2, 9, 0)
    hour = dt.timedelta(hours=1)
    weekly = Schedule.parse(local, local + hour, ZONE, "FREQ=WEEKLY;COUNT=10")
    # The tenth: 4 May 2026, 09:00-10:00 Berlin (summer time), 08:00 UTC.
    last_end = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
    assert record_of(weekly, [], None).ends_at == last_end + dt.timedelta(days=1)
    until = Schedule.parse(local, local + hour, ZONE, "FREQ=WEEKLY;UNTIL=20260504T070000Z")
    assert record_of(until, [], None).ends_at == last_end + dt.timedelta(days=1)
    assert (
        record_of(Schedule.parse(local, local + hour, ZONE, "FREQ=DAILY"), [], None).ends_at is None
    )


def test_the_holder_fits_its_column_whatever_the_hostname() -> None:
    short = scheduler_holder("host-1")
    assert short.startswith("scheduler/host-1/")
    long_a, long_b = ("a" * 250 + ".example.com"), ("a" * 250 + ".example.org")
    held = [scheduler_holder(name) for name in (long_a, long_b, "b" * 120)]
    assert all(len(h) <= MAX_HOLDER for h in held)
    assert held[0].split("/")[1] != held[1].split("/")[1]  # the hash keeps hosts apart
