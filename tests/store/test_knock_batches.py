"""Knocks made at once are committed together (group commit): each is answered only once
its transaction committed, none is lost, and a writer whose request is cancelled leaves the
others' knocks to the next writer. On SQLite and MariaDB."""

from __future__ import annotations

import asyncio

from talkplatform_agents.store import Database, MeetingRepository, WaitingRepository, WaitingStatus


async def _meeting(db: Database) -> str:
    meeting = await MeetingRepository(db).create(
        title="t", settings={}, host_user_id="host", host_name="Host"
    )
    return meeting.id


async def test_a_crowd_at_the_door_is_all_recorded(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    users = [f"g{i:03d}" for i in range(300)]
    knocks = await asyncio.gather(*(queue.knock(mid, user, user.upper()) for user in users))
    assert [k.user_id for k in knocks] == users
    assert all(k.status is WaitingStatus.WAITING for k in knocks)
    waiting = await WaitingRepository(db).waiting(mid)  # a fresh repository: what is stored
    assert sorted(e.user_id for e in waiting) == users
    assert {e.display_name for e in waiting} == {user.upper() for user in users}


async def test_a_batch_keeps_each_users_standing(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    for user in ("admitted", "denied", "left", "removed"):
        await queue.knock(mid, user, user)
    await queue.admit(mid, "admitted", by="host")
    await queue.deny(mid, "denied", by="host")
    await queue.left(mid, "left")
    await queue.put_back(mid, "removed", "removed", "host", WaitingStatus.REMOVED)
    users = ["admitted", "denied", "left", "removed", "new", "new"]
    knocks = await asyncio.gather(*(queue.knock(mid, user, user) for user in users))
    assert [k.status for k in knocks] == [
        WaitingStatus.ADMITTED,
        WaitingStatus.DENIED,
        WaitingStatus.WAITING,  # left, and came back
        WaitingStatus.REMOVED,
        WaitingStatus.WAITING,
        WaitingStatus.WAITING,
    ]
    assert knocks[4].knocked_at == knocks[5].knocked_at  # knocking twice keeps one place
    assert sorted(e.user_id for e in await queue.waiting(mid)) == ["left", "new"]


async def test_a_cancelled_knock_never_strands_the_others(db: Database) -> None:
    mid, queue = await _meeting(db), WaitingRepository(db)
    # The first knock is written alone; the second's request then writes all the others.
    # Cancel that writer at different moments of its write, or one still in line.
    for round_, (victim, delay) in enumerate([(1, 0), (1, 1), (1, 2), (1, 5), (2, 0)]):
        users = [f"r{round_}-{i}" for i in range(30)]
        tasks = [asyncio.create_task(queue.knock(mid, user, user)) for user in users]
        await tasks[0]
        for _ in range(delay):
            await asyncio.sleep(0)
        tasks[victim].cancel()
        others = [task for i, task in enumerate(tasks) if i != victim]
        knocks = await asyncio.wait_for(asyncio.gather(*others), timeout=60)
        assert all(k.status is WaitingStatus.WAITING for k in knocks)
        stored = {e.user_id for e in await WaitingRepository(db).waiting(mid)}
        assert {k.user_id for k in knocks} <= stored
        await asyncio.gather(tasks[victim], return_exceptions=True)
