"""A bot process's leases on its rooms (``store/leases.py``): its heartbeat.

Each bot that serves a room holds the lease of (room, agent name); the process renews all
of them in one statement every beat. A process that dies stops renewing, and within a
lease's length the service sees which rooms lost their bot, and which participant in each
is the dead bot (livekit-server keeps it in the room for about 20 s more). A bot that
leaves its room releases its lease, so only a death is seen as one.

The store being unreachable costs no bot its room: the keeper logs, keeps its rooms, and
writes them all again once the store answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from talkplatform_agents.store import Database
from talkplatform_agents.store.leases import BotLeaseRepository
from talkplatform_agents.tasks import TaskSet

__all__ = ["LeaseKeeper", "LeaseOptions", "expire_leases_of", "holder_prefix", "process_holder"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseOptions:
    database_url: str = ""  # none: this process holds no leases (a bot without a store)
    # A lease lasts this long unless renewed: the longest a bot's process may stall (a
    # busy machine, a long garbage collection) before it is taken for dead.
    ttl_s: float = 3.0
    beat_s: float = 0.5  # renewal period; several per ttl_s, so one late beat is harmless

    def __post_init__(self) -> None:
        if not 0 < self.beat_s < self.ttl_s:
            raise ValueError(f"need 0 < beat_s < ttl_s, not {self.beat_s} and {self.ttl_s}")

    @property
    def enabled(self) -> bool:
        return bool(self.database_url)


def process_holder(pid: int | None = None) -> str:
    """A holder name unique to this process (and this start of it): host/pid/nonce."""
    return f"{holder_prefix(pid or os.getpid())}{uuid.uuid4().hex[:8]}"


def holder_prefix(pid: int) -> str:
    """What every holder name of process ``pid`` on this machine starts with."""
    return f"{socket.gethostname()}/{pid}/"


def expire_leases_of(options: LeaseOptions, pid: int, timeout_s: float = 5.0) -> int:
    """End now the leases of process ``pid``, which died (its parent saw it): the service
    replaces its bots at its next sweep, rather than a lease's length later. Blocking; for
    the worker's supervisor, which has no event loop. 0 when it cannot (it is logged)."""
    if not options.enabled:
        return 0

    async def expire() -> int:
        db = Database(options.database_url)
        try:
            return await BotLeaseRepository(db).expire(holder_prefix(pid))
        finally:
            await db.aclose()

    try:
        return asyncio.run(asyncio.wait_for(expire(), timeout_s))
    except Exception as exc:
        logger.warning("could not end the leases of dead process %d: %r", pid, exc)
        return 0


class LeaseKeeper:
    """The leases of the bots in this process. ``start`` begins the beat; ``hold`` and
    ``release`` follow the bots; ``aclose`` stops the beat (the leases then expire, as for
    a death, unless released first)."""

    def __init__(self, options: LeaseOptions, holder: str | None = None) -> None:
        self._options = options
        self.holder = holder or process_holder()
        self._db = Database(options.database_url) if options.enabled else None
        self._leases = BotLeaseRepository(self._db) if self._db is not None else None
        # (room, agent name, identity): the bots this process runs (twins in one room
        # included, until one yields)
        self._held: set[tuple[str, str, str]] = set()
        # Those whose lease is not theirs yet: the store was unreachable, or a live bot
        # (a twin, or the one this bot will yield to) holds it. Tried again every beat.
        self._unwritten: set[tuple[str, str, str]] = set()
        self._tasks = TaskSet(f"leases:{self.holder}")
        self._healthy = True
        self._missing = 0

    def start(self) -> None:
        if self._leases is not None:
            self._tasks.spawn(self._beat(), "lease renewal")

    async def hold(self, room: str, agent_name: str, identity: str) -> None:
        key = (room, agent_name, identity)
        self._held.add(key)
        if self._leases is None:
            return
        try:
            if await self._leases.hold(room, agent_name, self.holder, identity,
                                       self._options.ttl_s):  # fmt: skip
                self._unwritten.discard(key)
                return
            logger.info("[%s] %s: a live bot holds the lease; %s waits for it", room,
                        agent_name, identity)  # fmt: skip
        except Exception as exc:
            logger.warning("[%s] %s: lease not written yet: %r", room, agent_name, exc)
        self._unwritten.add(key)

    async def release(self, room: str, agent_name: str, identity: str) -> None:
        key = (room, agent_name, identity)
        self._held.discard(key)
        self._unwritten.discard(key)
        if self._leases is None:
            return
        try:
            await self._leases.release(room, agent_name, self.holder, identity)
        except Exception as exc:
            # The lease expires instead, and the service finds the room with its users
            # but without this bot: it dispatches one, as for a bot that left.
            logger.warning("[%s] %s: lease not released: %r", room, agent_name, exc)

    async def _beat(self) -> None:
        assert self._leases is not None
        options = self._options
        while True:
            await asyncio.sleep(options.beat_s)
            try:
                for key in list(self._unwritten):
                    room, agent_name, identity = key
                    if key in self._held and not await self._leases.hold(
                        room, agent_name, self.holder, identity, options.ttl_s
                    ):
                        continue  # still someone else's, live
                    self._unwritten.discard(key)
                renewed = await self._leases.renew(self.holder, options.ttl_s)
            except Exception as exc:
                # Only renewals follow an outage: a lease the service took meanwhile is
                # its replacement's, and must not be taken back.
                if self._healthy:
                    logger.warning("leases of %d bots not renewed: %r", len(self._held), exc)
                self._healthy = False
                continue
            if not self._healthy:
                logger.info("leases renewed again (%d bots)", renewed)
                self._healthy = True
            missing = len(self._held) - len(self._unwritten) - renewed
            if missing > 0 and missing != self._missing:
                # Leases taken from under bots still here (this process stalled past
                # ttl_s): the service is replacing them, and will remove these bots.
                logger.warning("%d of %d leases were taken over", missing, len(self._held))
            self._missing = missing

    async def aclose(self) -> None:
        """Stop the beat and close the store. Idempotent."""
        await self._tasks.aclose()
        if self._db is not None:
            await self._db.aclose()
