"""Bot leases on SQLite and MariaDB: a bot holds and renews, a death shows as expiry, and
of several claimants for one room and bot exactly one wins."""

from __future__ import annotations

import asyncio

from talkplatform_agents.store import Database
from talkplatform_agents.store.leases import BotLeaseRepository, LeaseView

ROOM, BOT = "meeting-abc", "chat-relay"


async def _until_expired(leases: BotLeaseRepository, count: int) -> list[LeaseView]:
    async with asyncio.timeout(10):
        while True:  # a condition on the store's clock: polled
            if len(expired := await leases.expired()) >= count:
                return expired
            await asyncio.sleep(0.05)


async def test_a_held_lease_is_live_until_its_holder_stops_renewing(db: Database) -> None:
    leases = BotLeaseRepository(db)
    assert await leases.hold(ROOM, BOT, "proc-1", "agent-1", ttl_s=30)
    assert await leases.claim(ROOM, BOT, "service-a", ttl_s=5) is False  # the bot is live
    assert await leases.renew("proc-1", ttl_s=30) == 1
    assert await leases.expired() == []
    await leases.renew("proc-1", ttl_s=0.1)
    [dead] = await _until_expired(leases, 1)
    assert dead.identity == "agent-1"


async def test_one_claimant_of_an_expired_lease_wins(db: Database) -> None:
    leases = BotLeaseRepository(db)
    await leases.hold(ROOM, BOT, "proc-1", "agent-1", ttl_s=0.05)
    [dead] = await _until_expired(leases, 1)
    wins = await asyncio.gather(
        *(leases.take_expired(dead, f"service-{i}", ttl_s=10) for i in range(4))
    )
    assert sorted(wins) == [False, False, False, True]
    [lease] = await leases.of_room(ROOM)
    assert lease.identity == "" and lease.dispatches == 1
    # Nobody dispatches again while the claim lasts, the claimant included.
    assert await leases.claim(ROOM, BOT, lease.holder, ttl_s=10) is False
    assert await leases.claim(ROOM, BOT, "someone-else", ttl_s=10) is False


async def test_claims_on_a_room_without_a_lease_let_one_dispatch(db: Database) -> None:
    leases = BotLeaseRepository(db)
    wins = await asyncio.gather(*(leases.claim(ROOM, BOT, f"svc-{i}", 10) for i in range(3)))
    assert sorted(wins) == [False, False, True]


async def test_the_arriving_bot_takes_over_the_claim_and_release_forgets_it(
    db: Database,
) -> None:
    leases = BotLeaseRepository(db)
    assert await leases.claim(ROOM, BOT, "service-a", ttl_s=10)
    await leases.hold(ROOM, BOT, "proc-2", "agent-2", ttl_s=10)
    [lease] = await leases.of_room(ROOM)
    # The dispatch arrived: its count starts again.
    assert (lease.holder, lease.identity, lease.dispatches) == ("proc-2", "agent-2", 0)
    assert await leases.release(ROOM, BOT, "proc-1", "agent-1") is False  # not the holder
    assert await leases.release(ROOM, BOT, "proc-2", "agent-1") is False  # a twin's leave
    assert await leases.release(ROOM, BOT, "proc-2", "agent-2") is True
    assert await leases.of_room(ROOM) == []


async def test_a_renewed_lease_is_neither_taken_nor_dropped(db: Database) -> None:
    leases = BotLeaseRepository(db)
    await leases.hold(ROOM, BOT, "proc-1", "agent-1", ttl_s=0.05)
    [seen] = await _until_expired(leases, 1)
    await leases.renew("proc-1", ttl_s=30)  # it was only slow
    assert await leases.take_expired(seen, "service-a", ttl_s=10) is False
    assert await leases.drop(seen) is False
    assert len(await leases.of_room(ROOM)) == 1


async def test_a_dead_process_s_leases_end_at_once(db: Database) -> None:
    leases = BotLeaseRepository(db)
    await leases.hold(ROOM, BOT, "box/41/aa", "agent-1", ttl_s=30)
    await leases.hold(ROOM, "waiting-room", "box/4/bb", "agent-2", ttl_s=30)
    assert await leases.expire("box/41/") == 1  # not box/4's
    [dead] = await leases.expired()
    assert dead.identity == "agent-1"


async def test_a_twin_neither_takes_nor_ends_the_live_bot_s_lease(db: Database) -> None:
    leases = BotLeaseRepository(db)
    assert await leases.hold(ROOM, BOT, "proc-1", "agent-1", ttl_s=30)
    assert await leases.hold(ROOM, BOT, "proc-2", "agent-2", ttl_s=30) is False
    assert await leases.release(ROOM, BOT, "proc-2", "agent-2") is False  # it yields
    assert await leases.renew("proc-1", ttl_s=30) == 1
    # The one that stays may be the newcomer: once the other has left, it takes the lease.
    assert await leases.release(ROOM, BOT, "proc-1", "agent-1") is True
    assert await leases.hold(ROOM, BOT, "proc-2", "agent-2", ttl_s=30) is True
