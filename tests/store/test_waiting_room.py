"""The waiting room's queue, roles and attendance, on SQLite and MariaDB."""

from __future__ import annotations

import asyncio
import datetime as dt

from talkplatform_agents.roles import Role
from talkplatform_agents.store import (
    AttendanceRepository,
    AttendanceView,
    Database,
    MeetingRepository,
    WaitingRepository,
    WaitingStatus,
)


async def _meeting(db: Database) -> str:
    meeting = await MeetingRepository(db).create(
        title="t", settings={}, host_user_id="host", host_name="Host"
    )
    return meeting.id


async def test_knock_admit_is_idempotent_and_keeps_the_decision(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    first = await queue.knock(mid, "g1", "Guest One")
    again = await queue.knock(mid, "g1", "Guest One")
    assert first.status is WaitingStatus.WAITING
    assert again.knocked_at == first.knocked_at  # knocking again keeps one's place

    admitted = await queue.admit(mid, "g1", by="host")
    assert admitted.changed and admitted.entry is not None
    assert admitted.entry.status is WaitingStatus.ADMITTED
    assert admitted.entry.decided_by == "host"
    repeat = await queue.admit(mid, "g1", by="host")
    assert not repeat.changed and repeat.entry is not None
    assert repeat.entry.status is WaitingStatus.ADMITTED
    assert (await queue.knock(mid, "g1", "Guest One")).status is WaitingStatus.ADMITTED


async def test_admitting_someone_who_never_knocked_changes_nothing(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    outcome = await queue.admit(mid, "nobody", by="host")
    assert outcome == outcome.__class__(None, False)


async def test_deny_with_reason_and_denied_cannot_requeue(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    await queue.knock(mid, "g1", "G")
    denied = await queue.deny(mid, "g1", by="host", reason="not invited")
    assert denied.changed and denied.entry is not None
    assert denied.entry.reason == "not invited"
    assert (await queue.knock(mid, "g1", "G")).status is WaitingStatus.DENIED
    assert not (await queue.admit(mid, "g1", by="host")).changed


async def test_left_then_knock_again_queues_anew(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    await queue.knock(mid, "g1", "G")
    assert (await queue.left(mid, "g1")).changed
    assert await queue.waiting(mid) == []
    assert (await queue.knock(mid, "g1", "G2")).status is WaitingStatus.WAITING
    assert [e.display_name for e in await queue.waiting(mid)] == ["G2"]


async def test_put_back_returns_an_admitted_user_to_the_queue(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    await queue.knock(mid, "g1", "G")
    await queue.admit(mid, "g1", by="host")
    back = await queue.put_back(mid, "g1", "G", by="host", status=WaitingStatus.WAITING)
    assert back.status is WaitingStatus.WAITING
    assert [e.user_id for e in await queue.waiting(mid)] == ["g1"]
    fresh = await queue.put_back(mid, "x", "X", by="host", status=WaitingStatus.REMOVED)
    assert fresh.status is WaitingStatus.REMOVED


async def test_admit_all_racing_knocks_loses_nobody_and_admits_nobody_twice(
    db: Database,
) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    for i in range(10):
        await queue.knock(mid, f"early{i}", "E")

    async def knock_late() -> None:
        for i in range(10):
            await queue.knock(mid, f"late{i}", "L")

    results = await asyncio.gather(
        queue.admit_all(mid, by="host"), queue.admit_all(mid, by="cohost"), knock_late()
    )
    admitted = [e.user_id for e in results[0] + results[1]]
    assert len(admitted) == len(set(admitted))  # nobody admitted twice
    assert {f"early{i}" for i in range(10)} <= set(admitted)
    still = {e.user_id for e in await queue.waiting(mid)}
    assert set(admitted) | still == {f"early{i}" for i in range(10)} | {
        f"late{i}" for i in range(10)
    }
    assert not set(admitted) & still


async def test_stats(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    t0 = dt.datetime.now(dt.UTC)
    await queue.knock(mid, "a", "A", now=t0 - dt.timedelta(seconds=30))
    await queue.knock(mid, "b", "B", now=t0 - dt.timedelta(seconds=10))
    await queue.knock(mid, "c", "C", now=t0 - dt.timedelta(seconds=5))
    await queue.deny(mid, "c", by="host")
    stats = await queue.stats(mid, now=t0)
    assert stats.counts["waiting"] == 2 and stats.counts["denied"] == 1
    assert stats.longest_wait_s is not None and abs(stats.longest_wait_s - 30) < 0.01
    assert stats.average_wait_s is not None and abs(stats.average_wait_s - 20) < 0.01
    assert stats.average_admitted_wait_s is None


async def test_roles_settings_and_end(db: Database) -> None:
    meetings = MeetingRepository(db)
    mid = await _meeting(db)
    await meetings.set_role(mid, "c1", Role.COHOST, "Co")
    assert await meetings.moderators(mid) == {"host": Role.HOST, "c1": Role.COHOST}
    assert await meetings.role(mid, "c1") is Role.COHOST
    assert await meetings.role(mid, "nobody") is None
    await meetings.pass_host(mid, "host", "g9")
    assert await meetings.moderators(mid) == {
        "host": Role.COHOST,
        "c1": Role.COHOST,
        "g9": Role.HOST,
    }
    await meetings.update_settings(mid, {"locked": True})
    updated = await meetings.update_settings(mid, {"waiting_room": True})
    assert updated is not None and updated.settings == {"locked": True, "waiting_room": True}
    assert await meetings.update_settings("missing", {"locked": True}) is None
    first = await meetings.end(mid)
    second = await meetings.end(mid)
    assert first is not None and second is not None
    assert first.ended_at is not None and first.ended_at == second.ended_at


async def test_attendance_is_idempotent_and_tolerates_order(db: Database) -> None:
    mid, attendance = await _meeting(db), AttendanceRepository(db)
    t0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    joined = AttendanceView("PA_1", mid, "meeting", "u1", "U", t0, None)
    await attendance.joined(joined)
    await attendance.joined(joined)
    left_late = AttendanceView("PA_1", mid, "meeting", "u1", "U", t0, t0 + dt.timedelta(minutes=5))
    await attendance.left(left_late)
    # A participant_left whose participant_joined never came records the whole session.
    await attendance.left(AttendanceView("PA_2", mid, "lobby", "u2", None, t0, t0))
    # A finished room closes what is open.
    await attendance.joined(AttendanceView("PA_3", mid, "meeting", "u3", None, t0, None))
    assert await attendance.room_finished(mid, "meeting", t0 + dt.timedelta(hours=1)) == 1
    rows = {r.participant_sid: r for r in await attendance.of_meeting(mid)}
    assert rows["PA_1"].left_at == t0 + dt.timedelta(minutes=5)
    assert rows["PA_2"].room == "lobby"
    assert rows["PA_3"].left_at == t0 + dt.timedelta(hours=1)
    assert await MeetingRepository(db).room_event(mid, started=True, at=t0)
    assert not await MeetingRepository(db).room_event("missing", started=True, at=t0)
