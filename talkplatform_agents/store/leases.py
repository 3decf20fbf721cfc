"""Bot leases: which bot serves a room, and whether it is still alive.

A bot that serves a room holds the lease of (room, agent name) and its process renews all
its leases at once, every beat. A bot that leaves its room releases its lease. So a lease
that expires is a bot that died without leaving: its process was killed, or its machine
went away. livekit-server keeps such a bot in the room as a live participant for about
20 s (its connection timeout); the lease says so in a few seconds.

The same row is how the service dispatches a missing bot exactly once: a dispatch first
claims the lease (a holder of its own, no identity yet), which succeeds only where nobody
else's lease is live. Two service processes that see one death race on that claim, and one
wins. The bot that arrives takes the lease over from the claim.

Times are the processes' own clocks (UTC): the processes that share a store are expected
to keep them in step (NTP), well within a lease's length.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import BotLease
from talkplatform_agents.store.timeutil import aware

__all__ = ["BotLeaseRepository", "LeaseView"]


@dataclass(frozen=True)
class LeaseView:
    room: str
    agent_name: str
    holder: str
    identity: str  # "" while a dispatch holds it
    expires_at: dt.datetime
    dispatches: int

    @classmethod
    def of(cls, row: BotLease) -> LeaseView:
        return cls(
            row.room,
            row.agent_name,
            row.holder,
            row.identity,
            aware(row.expires_at),
            row.dispatches,
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _until(ttl_s: float) -> dt.datetime:
    return _now() + dt.timedelta(seconds=ttl_s)


def _claimed_by(claimant: str, ttl_s: float) -> dict[str, Any]:
    """A lease as a dispatch's claim leaves it: the claimant's, no bot yet, one more try."""
    return {
        "holder": claimant,
        "identity": "",
        "expires_at": _until(ttl_s),
        "dispatches": BotLease.dispatches + 1,
    }


class BotLeaseRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- a bot's side -------------------------------------------------------------------

    async def hold(
        self, room: str, agent_name: str, holder: str, identity: str, ttl_s: float
    ) -> bool:
        """The bot ``identity`` (of process ``holder``) serves ``room`` now: it takes the
        lease from a dispatch's claim, from a dead bot (expired), or from nobody. Not from
        a live bot: a twin that joins beside it must not take its lease (the twin yields
        soon, and its leave would end the lease of the bot that stays). False then."""
        now = _now()
        async with self._db.session() as session:
            result = await session.execute(
                update(BotLease)
                .where(
                    BotLease.room == room,
                    BotLease.agent_name == agent_name,
                    or_(
                        BotLease.identity == "",
                        BotLease.identity == identity,
                        BotLease.expires_at < now,
                    ),
                )
                .values(holder=holder, identity=identity, expires_at=_until(ttl_s), dispatches=0)
            )
            if getattr(result, "rowcount", 0):
                return True
        try:
            async with self._db.session() as session:
                session.add(BotLease(room=room, agent_name=agent_name, holder=holder,
                                     identity=identity, expires_at=_until(ttl_s),
                                     dispatches=0))  # fmt: skip
        except IntegrityError:
            return False  # a live bot holds it
        return True

    async def renew(self, holder: str, ttl_s: float) -> int:
        """Every lease ``holder`` holds lasts ``ttl_s`` more; how many it holds."""
        async with self._db.session() as session:
            result = await session.execute(
                update(BotLease).where(BotLease.holder == holder).values(expires_at=_until(ttl_s))
            )
            return int(getattr(result, "rowcount", 0))

    async def release(self, room: str, agent_name: str, holder: str, identity: str) -> bool:
        """The bot left ``room``: its lease goes, unless someone else's replaced it (a
        twin's, a dispatch's)."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(BotLease).where(
                    BotLease.room == room,
                    BotLease.agent_name == agent_name,
                    BotLease.holder == holder,
                    BotLease.identity == identity,
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def expire(self, holder_prefix: str) -> int:
        """Every lease whose holder starts with ``holder_prefix`` ends now: their process
        is known dead (its parent saw it die), so the service need not wait out the lease."""
        async with self._db.session() as session:
            result = await session.execute(
                update(BotLease)
                .where(BotLease.holder.startswith(holder_prefix, autoescape=True))
                .values(expires_at=_now() - dt.timedelta(seconds=1))
            )
            return int(getattr(result, "rowcount", 0))

    # -- the service's side -------------------------------------------------------------

    async def claim(self, room: str, agent_name: str, claimant: str, ttl_s: float) -> bool:
        """Claim the right to dispatch ``agent_name`` into ``room`` for ``ttl_s``: granted
        when nobody holds the lease or it has expired (a dead bot's, or a dispatch whose
        bot never came: the claimant's own included). Of several claimants, one wins."""
        now = _now()
        async with self._db.session() as session:
            result = await session.execute(
                update(BotLease)
                .where(
                    BotLease.room == room,
                    BotLease.agent_name == agent_name,
                    BotLease.expires_at < now,
                )
                .values(_claimed_by(claimant, ttl_s))
            )
            if getattr(result, "rowcount", 0):
                return True
        try:
            async with self._db.session() as session:
                session.add(BotLease(room=room, agent_name=agent_name, holder=claimant,
                                     identity="", expires_at=_until(ttl_s),
                                     dispatches=1))  # fmt: skip
        except IntegrityError:
            return False  # someone's lease is live (or another claimant won)
        return True

    async def take_expired(self, lease: LeaseView, claimant: str, ttl_s: float) -> bool:
        """Claim ``lease``, seen expired: only if it still is, and nobody took it since.
        Of several claimants at once, one wins."""
        async with self._db.session() as session:
            result = await session.execute(
                update(BotLease)
                .where(
                    BotLease.room == lease.room,
                    BotLease.agent_name == lease.agent_name,
                    BotLease.holder == lease.holder,
                    BotLease.expires_at < _now(),
                )
                .values(_claimed_by(claimant, ttl_s))
            )
            return bool(getattr(result, "rowcount", 0))

    async def expired(self, limit: int = 100) -> list[LeaseView]:
        """Leases past their time: bots that died in their rooms, or dispatches whose bot
        never came. Oldest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(BotLease)
                .where(BotLease.expires_at < _now())
                .order_by(BotLease.expires_at)
                .limit(limit)
            )
            return [LeaseView.of(row) for row in rows]

    async def drop(self, lease: LeaseView) -> bool:
        """Forget ``lease`` (its room has nobody left to serve), unless it was renewed or
        taken since it was seen."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(BotLease).where(
                    and_(
                        BotLease.room == lease.room,
                        BotLease.agent_name == lease.agent_name,
                        BotLease.holder == lease.holder,
                        BotLease.expires_at < _now(),
                    )
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def of_room(self, room: str) -> list[LeaseView]:
        async with self._db.session() as session:
            rows = await session.scalars(select(BotLease).where(BotLease.room == room))
            return [LeaseView.of(row) for row in rows]
