"""Brings back the bots that died in their rooms, and checks the rooms nobody told us of.

Two sweeps, each a loop on its own period:

- **Leases** (every ``sweep_s``): a bot that serves a room holds a lease that its process
  renews (``bots/lease.py``). An expired lease is a bot that died without leaving: its
  process was killed, or its machine went away. livekit-server keeps such a bot in its
  room as a live participant for about 20 s, and a room whose dead bot is still "there"
  gets no dispatch from the webhook path; and the bot that comes would yield to it
  (``bots/election.py``). So the sweep claims the lease (one service of several wins),
  removes the dead bot's participant, and dispatches a new bot. A claim whose bot never
  came expires in turn, and is swept the same way: a lost dispatch is tried again.
- **Rooms** (every ``rooms_sweep_s``): every live room that should have bots is checked
  (``BotReconciler.check``), for the rooms whose webhooks were lost, or whose bot never
  held a lease.

After the store could not be read, no lease is judged until a lease's length after it can
be again: the bots could not renew either, and they need a beat to do it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from livekit import api

from talkplatform_agents.lk.naming import agents_for_room
from talkplatform_agents.store.leases import BotLeaseRepository, LeaseView
from talkplatform_agents.tasks import TaskSet

__all__ = ["BotSweeper", "LeaseGate", "SweeperOptions", "SweeperStats"]

logger = logging.getLogger(__name__)


class SweptServer(Protocol):
    async def participants(self, room: str) -> list[api.ParticipantInfo]: ...

    async def remove(self, room: str, identity: str) -> bool: ...

    async def dispatch(self, room: str, agent_name: str) -> str: ...

    async def rooms(self) -> list[api.Room]: ...


@dataclass(frozen=True)
class SweeperOptions:
    sweep_s: float = 0.5
    rooms_sweep_s: float = 15.0  # 0: never
    lease_ttl_s: float = 3.0  # the bots' lease length (BOT_LEASE_TTL_S)
    # A dispatch's claim lasts this long: the bot must arrive and hold the lease by then, or
    # the dispatch is taken for lost and made again (by whichever service sweeps first).
    claim_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("sweep_s", "lease_ttl_s", "claim_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, not {getattr(self, name)}")
        if self.rooms_sweep_s < 0:
            raise ValueError(f"rooms_sweep_s must be >= 0, not {self.rooms_sweep_s}")


@dataclass
class SweeperStats:
    sweeps: int = 0
    replaced: int = 0  # dead bots removed and dispatched again
    redispatched: int = 0  # dispatches whose bot never came, made again
    dropped: int = 0  # leases of rooms with nobody left to serve
    failures: int = 0
    room_checks: int = 0


class BotSweeper:
    def __init__(
        self,
        server: SweptServer,
        leases: BotLeaseRepository,
        claimant: str,
        check_room: Callable[[str], object],
        options: SweeperOptions | None = None,
    ) -> None:
        self._server = server
        self._leases = leases
        self._claimant = claimant
        self._check_room = check_room
        self._options = options or SweeperOptions()
        self._tasks = TaskSet("sweeper")
        self._trust_at = 0.0  # monotonic time from which expired leases are judged
        self._failing = False  # the last read of the store failed
        self.stats = SweeperStats()

    def start(self) -> None:
        """Start both sweeps (on the running loop)."""
        self._tasks.spawn(self._every(self._options.sweep_s, self.sweep_leases), "lease sweep")
        if self._options.rooms_sweep_s:
            every = self._every(self._options.rooms_sweep_s, self.sweep_rooms)
            self._tasks.spawn(every, "room sweep")

    async def _every(self, period_s: float, sweep: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period_s)
            await sweep()

    async def sweep_leases(self) -> None:
        """One look at the expired leases, and a replacement for each dead bot."""
        self.stats.sweeps += 1
        try:
            expired = await self._leases.expired()
        except Exception as exc:
            self._distrust(exc)
            return
        if self._failing:
            # The store answers again, and so it does for the bots only now: give them a
            # lease's length, from now, to renew theirs.
            self._failing = False
            self._trust_at = time.monotonic() + self._options.lease_ttl_s
            logger.info("bot leases readable again; judging them in %.1fs",
                        self._options.lease_ttl_s)  # fmt: skip
        if time.monotonic() < self._trust_at:
            return
        for lease in expired:
            try:
                await self._settle(lease)
            except Exception as exc:
                self.stats.failures += 1
                logger.error("[%s] could not replace %s: %r", lease.room, lease.agent_name, exc)

    async def _settle(self, lease: LeaseView) -> None:
        room, bot = lease.room, lease.agent_name
        users = await self._users(room)
        # Any bot that held a lease belongs there (the recorder, dispatched on request,
        # included): one that finds nothing to do on arrival leaves, releasing it.
        if not users:
            if await self._leases.drop(lease):
                self.stats.dropped += 1
                logger.info("[%s] %s lease dropped: nobody left to serve", room, bot)
            return
        if lease.identity:
            # The dead bot first (the new one would yield to it: it is "active"), and
            # before the claim, which forgets who it was: a removal that fails is tried
            # again at the next sweep. Several services may remove it; that is harmless.
            await self._server.remove(room, lease.identity)
        # A dispatch that keeps not arriving (no worker, or a bot that will not stay) is
        # made again further apart each time.
        claim_s = self._options.claim_s * 2 ** min(lease.dispatches, 4)
        if not await self._leases.take_expired(lease, self._claimant, claim_s):
            return  # another service took it, or the bot renewed after all
        if lease.identity:
            self.stats.replaced += 1
            logger.warning("[%s] %s %s died; replacing it", room, bot, lease.identity)
        else:
            self.stats.redispatched += 1
            logger.warning("[%s] %s never came (%d dispatches); dispatching again", room, bot,
                           lease.dispatches)  # fmt: skip
        await self._server.dispatch(room, bot)

    async def _users(self, room: str) -> list[str]:
        present = await self._server.participants(room)  # [] once the room is gone
        return [p.identity for p in present if p.kind != api.ParticipantInfo.Kind.AGENT]

    def _distrust(self, exc: Exception) -> None:
        if not self._failing:
            logger.warning("bot leases unreadable: %r; judging none until %.1fs after they "
                           "are readable again", exc, self._options.lease_ttl_s)  # fmt: skip
        self.stats.failures += 1
        self._failing = True

    async def sweep_rooms(self) -> None:
        """Check every live room that should have bots."""
        try:
            rooms = await self._server.rooms()
        except Exception as exc:
            logger.warning("could not list the rooms: %r", exc)
            return
        for room in rooms:
            if room.num_participants and agents_for_room(room.name):
                self.stats.room_checks += 1
                self._check_room(room.name)

    async def aclose(self) -> None:
        """Stop both sweeps and wait for them. Idempotent."""
        await self._tasks.aclose()


class LeaseGate:
    """The reconciler's ``DispatchGate``: a dispatch claims the bot's lease first."""

    def __init__(self, leases: BotLeaseRepository, claimant: str, claim_s: float) -> None:
        self._leases = leases
        self._claimant = claimant
        self._claim_s = claim_s

    async def claim(self, room: str, agent_name: str) -> bool:
        return await self._leases.claim(room, agent_name, self._claimant, self._claim_s)
