"""The service's sweeps, on a real store (SQLite) and a fake livekit-server: a dead bot is
removed and replaced once, however many services sweep; an empty room's lease is dropped;
after the store was unreadable no lease is judged for a lease's length."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit import api

from talkplatform_agents.errors import Unavailable
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME
from talkplatform_agents.service.sweeper import BotSweeper, SweeperOptions
from talkplatform_agents.store import Database, upgrade
from talkplatform_agents.store.leases import BotLeaseRepository, LeaseView

ROOM = "meeting-0123456789abcdef"


class FakeServer:
    def __init__(self, people: dict[str, list[str]]) -> None:
        self.people = people  # room -> user identities
        self.removed: list[tuple[str, str]] = []
        self.dispatched: list[tuple[str, str]] = []

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        return [api.ParticipantInfo(identity=who) for who in self.people.get(room, [])]

    async def remove(self, room: str, identity: str) -> bool:
        self.removed.append((room, identity))
        return True

    async def dispatch(self, room: str, agent_name: str) -> str:
        self.dispatched.append((room, agent_name))
        return "AD_x"

    async def rooms(self) -> list[api.Room]:
        return [api.Room(name=room, num_participants=len(who)) for room, who in self.people.items()]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sweep.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    await database.aclose()


async def _dead_bot(leases: BotLeaseRepository, room: str = ROOM) -> None:
    await leases.hold(room, CHAT_AGENT_NAME, "box/7/aa", "agent-dead", ttl_s=30)
    assert await leases.expire("box/7/") == 1


async def test_a_dead_bot_is_removed_and_replaced_once_among_services(db: Database) -> None:
    leases = BotLeaseRepository(db)
    await _dead_bot(leases)
    server = FakeServer({ROOM: ["alice"]})
    sweepers = [BotSweeper(server, leases, f"service-{i}", lambda _room: None) for i in range(3)]
    await asyncio.gather(*(s.sweep_leases() for s in sweepers))
    assert set(server.removed) == {(ROOM, "agent-dead")}  # by any of them: harmless
    assert server.dispatched == [(ROOM, CHAT_AGENT_NAME)]
    assert sum(s.stats.replaced for s in sweepers) == 1
    [claim] = await leases.of_room(ROOM)
    assert claim.identity == "" and claim.holder.startswith("service-")
    for sweeper in sweepers:  # the claim is live: nothing more
        await sweeper.sweep_leases()
    assert len(server.dispatched) == 1


async def test_an_empty_room_s_lease_is_dropped_not_replaced(db: Database) -> None:
    leases = BotLeaseRepository(db)
    await _dead_bot(leases)
    server = FakeServer({ROOM: []})
    sweeper = BotSweeper(server, leases, "service-a", lambda _room: None)
    await sweeper.sweep_leases()
    assert server.dispatched == [] and await leases.of_room(ROOM) == []
    assert sweeper.stats.dropped == 1


async def test_a_claim_whose_bot_never_came_is_dispatched_again(db: Database) -> None:
    leases = BotLeaseRepository(db)
    assert await leases.claim(ROOM, CHAT_AGENT_NAME, "service-a", ttl_s=0.05)
    server = FakeServer({ROOM: ["alice"]})
    sweeper = BotSweeper(server, leases, "service-b", lambda _room: None)
    async with asyncio.timeout(10):
        while not server.dispatched:  # the claim's 50 ms, on the store's clock
            await sweeper.sweep_leases()
            await asyncio.sleep(0.02)
    assert server.removed == []  # no dead participant to remove
    assert sweeper.stats.redispatched == 1


class FlakyLeases(BotLeaseRepository):
    """The store, unreadable while ``down``."""

    down = True

    async def expired(self, limit: int = 100) -> list[LeaseView]:
        if self.down:
            raise Unavailable("the database is unavailable")
        return await super().expired(limit)


async def test_after_an_unreadable_store_no_lease_is_judged_for_a_lease_s_length(
    db: Database,
) -> None:
    leases = FlakyLeases(db)
    server = FakeServer({ROOM: ["alice"]})
    options = SweeperOptions(lease_ttl_s=30)
    sweeper = BotSweeper(server, leases, "svc", lambda _r: None, options)
    await sweeper.sweep_leases()  # cannot read: distrust
    assert sweeper.stats.failures == 1
    await _dead_bot(leases)
    leases.down = False  # the store is back
    await sweeper.sweep_leases()
    assert server.dispatched == []  # the bots get their beat to renew first


async def test_the_room_sweep_checks_live_rooms_that_should_have_bots() -> None:
    server = FakeServer({ROOM: ["alice"], "meeting-empty": [], "some-other-room": ["bob"]})
    checked: list[str] = []
    sweeper = BotSweeper(server, None, "svc", checked.append)  # type: ignore[arg-type]
    await sweeper.sweep_rooms()
    assert checked == [ROOM]
