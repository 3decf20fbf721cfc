"""Makes sure every room that has a user also has its bots (``lk.naming.agents_for_room``).

The token's room configuration dispatches bots only when the room is created, and
livekit-server v1.13 sometimes answers that dispatch with "no worker is available" while
its worker cache refreshes (livekit/livekit#4060); it never retries. A user who rejoins
within the room's departure timeout finds the room still there and gets no dispatch at
all. And when every worker reports itself full, no dispatch is taken at all. So on each
participant_joined webhook, after a grace period, the service checks the room for each bot
it should have (by the ``lk.agent.name`` attribute livekit-agents sets) and dispatches the
ones that are neither there nor on their way (a dispatch whose job a worker has taken).

It keeps looking, further apart each time (up to ``max_interval_s``), for as long as the
room has a user. While a bot is missing past ``warn_after_s``, each look also tells the
hosts (``lk.bot_status``), and the service's metrics show it (``missing()``). Should two
dispatches land anyway, the bots keep one (``bots/election.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from livekit import api

from talkplatform_agents.lk.bot_status import TOPIC_BOTS_MISSING, BotsMissing
from talkplatform_agents.lk.naming import (
    AGENT_NAME_ATTRIBUTE,
    ROLE_ATTRIBUTE,
    RoomKind,
    agents_for_room,
    meeting_room_name,
    parse_room,
)
from talkplatform_agents.lk.server_api import AgentDispatchApi
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.tasks import TaskSet

__all__ = ["BotReconciler", "DispatchGate", "ReconcilerOptions", "ReconcilerStats"]

logger = logging.getLogger(__name__)

_MODERATORS = frozenset(role.value for role in MODERATOR_ROLES)


@dataclass(frozen=True)
class ReconcilerOptions:
    # Before the first look at the room: a bot dispatched with the room takes a few seconds
    # to join on a busy machine.
    grace_s: float = 4.0
    # Before the first look after a bot left: nothing is on its way then, so look soon.
    left_grace_s: float = 1.0
    # After each look that dispatched (a dispatch can itself be lost, or no worker may take
    # it), the next comes twice as late, up to this.
    max_interval_s: float = 30.0
    # A job still pending counts as on its way for this long (the worker's process start
    # bound, 45 s, and the join after it): until then, a look that finds every missing bot
    # on its way waits the grace period again, rather than backing off.
    starting_s: float = 60.0
    # A bot missing for this long is reported to the hosts, at each look until it arrives.
    warn_after_s: float = 10.0
    # Looks that fail in a row (the server unreachable) before the check gives up; the next
    # arrival starts a new one.
    failures: int = 5

    def __post_init__(self) -> None:
        for name in ("grace_s", "left_grace_s", "max_interval_s", "starting_s", "warn_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.failures < 1:
            raise ValueError(f"failures must be >= 1, not {self.failures}")

    def interval(self, rounds: int) -> float:
        """The wait before the next look, after ``rounds`` looks that dispatched."""
        return min(self.grace_s * 2.0**rounds, self.max_interval_s)


@dataclass
class ReconcilerStats:
    dispatches: int = 0
    warnings: int = 0
    # (room, agent name) -> when it was first found missing (Unix seconds)
    missing: dict[tuple[str, str], float] = field(default_factory=dict)


@dataclass
class _Look:
    users: bool
    missing: list[str]
    dispatched: int


class DispatchGate(Protocol):
    """Who may dispatch a bot into a room: one service of several (``store/leases.py``)."""

    async def claim(self, room: str, agent_name: str) -> bool: ...


class BotReconciler:
    def __init__(
        self,
        server: AgentDispatchApi,
        options: ReconcilerOptions | None = None,
        gate: DispatchGate | None = None,
        wanted: Callable[[str], Awaitable[tuple[str, ...]]] | None = None,
    ) -> None:
        self._server = server
        self._options = options or ReconcilerOptions()
        # None: this service alone dispatches (the bots' election settles any twin).
        self._gate = gate
        # The bots a room should have beyond its kind's, as the store says now (a meeting
        # being recorded has a recorder): looked for and dispatched the same way.
        self._wanted = wanted
        self._tasks = TaskSet("reconciler")
        self._checks: dict[str, asyncio.Task[None]] = {}  # one pending check per room
        self.stats = ReconcilerStats()

    def participant_joined(self, room: str, is_agent: bool) -> asyncio.Task[None] | None:
        """A user arrived: check ``room`` for its bots (a bot's own arrival starts nothing)."""
        return None if is_agent else self.check(room)

    def bot_left(self, room: str) -> asyncio.Task[None] | None:
        """A bot left ``room`` (it died, was removed, or yielded to a twin): check soon that
        the room still has its bots, if it still has users."""
        return self.check(room, self._options.left_grace_s)

    def check(self, room: str, first_look_s: float | None = None) -> asyncio.Task[None] | None:
        """Start checking ``room`` for its bots (the first look after ``first_look_s``, by
        default the grace period), unless a check is already under way there; the check
        started, if any (None also once closed)."""
        running = self._checks.get(room)
        if not agents_for_room(room) or (running is not None and not running.done()):
            return None
        first = self._options.grace_s if first_look_s is None else first_look_s
        task = self._tasks.spawn(self._ensure_bots(room, first), room)
        if task is not None:
            self._checks[room] = task
            task.add_done_callback(lambda done: self._forget(room, done))
        return task

    def _forget(self, room: str, task: asyncio.Task[None]) -> None:
        if self._checks.get(room) is task:  # not a later check that took its place
            del self._checks[room]

    async def _ensure_bots(self, room: str, first_look_s: float) -> None:
        options = self._options
        loop = asyncio.get_running_loop()
        patient_until = loop.time() + options.starting_s
        delay, rounds, failures, looks = first_look_s, 0, 0, 0
        warned = False
        try:
            while True:
                await asyncio.sleep(delay)
                look = await self._look(room)
                if look is None:
                    failures += 1
                    if failures >= options.failures:
                        logger.error("[%s] gave up checking the bots: %d failed looks",
                                     room, failures)  # fmt: skip
                        return
                    delay = options.interval(failures)
                    continue
                failures = 0
                self._note_missing(room, look.missing)
                if not look.users or not look.missing:
                    if warned:
                        await self._warn(room, (), 0, looks)  # the all-clear
                    return
                looks += 1
                if self._overdue(room, look.missing):
                    warned = True
                    await self._warn(room, look.missing, self._since_ms(room), looks)
                if look.dispatched or loop.time() >= patient_until:
                    rounds += 1
                    delay = options.interval(rounds)
                else:
                    delay = options.grace_s  # all on their way: wait for them
                if not warned:  # the first warning comes when it is due, not a look later
                    delay = min(delay, max(self._until_overdue(room, look.missing), 0.5))
        finally:
            self._note_missing(room, [])

    async def _look(self, room: str) -> _Look | None:
        """Dispatch the bots ``room`` lacks that are not on their way; None when the look
        itself failed."""
        try:
            present = await self._server.participants(room)
            agents = [p for p in present if p.kind == api.ParticipantInfo.Kind.AGENT]
            if len(agents) == len(present):
                return _Look(users=False, missing=[], dispatched=0)
            running = {p.attributes.get(AGENT_NAME_ATTRIBUTE, "") for p in agents}
            wanted = agents_for_room(room)
            if self._wanted is not None:
                wanted = (*wanted, *await self._wanted(room))
            expected = [a for a in wanted if a not in running]
            # A bot whose job a worker has taken is on its way (its process may still be
            # starting on a busy machine): a second dispatch would only make a twin.
            starting = await self._server.agents_in_flight(room) if expected else set()
            dispatching = [a for a in expected if a not in starting]
            if self._gate is not None:
                # A bot whose lease is live is on its way (another service's dispatch, or
                # this one's, not yet arrived), or serving the room under another name.
                dispatching = [a for a in dispatching if await self._gate.claim(room, a)]
            for missing in dispatching:
                logger.warning("[%s] no %s; dispatching it", room, missing)
                await self._server.dispatch(room, missing)
                self.stats.dispatches += 1
        except Exception as exc:  # the webhook already answered: log, never raise
            logger.error("[%s] could not reconcile the bots: %r", room, exc)
            return None
        return _Look(users=True, missing=expected, dispatched=len(dispatching))

    def _note_missing(self, room: str, missing: list[str]) -> None:
        now = time.time()
        for agent_name in agents_for_room(room):
            key = (room, agent_name)
            if agent_name in missing:
                self.stats.missing.setdefault(key, now)
            else:
                self.stats.missing.pop(key, None)

    def _overdue(self, room: str, missing: list[str]) -> bool:
        now = time.time()
        return any(
            now - self.stats.missing.get((room, bot), now) >= self._options.warn_after_s
            for bot in missing
        )

    def _until_overdue(self, room: str, missing: list[str]) -> float:
        now = time.time()
        first = min((self.stats.missing.get((room, bot), now) for bot in missing), default=now)
        return first + self._options.warn_after_s - now

    def _since_ms(self, room: str) -> int:
        since = [at for (r, _), at in self.stats.missing.items() if r == room]
        return int(min(since, default=time.time()) * 1000)

    async def _warn(self, room: str, missing: tuple[str, ...] | list[str], since_ms: int,
                    looks: int) -> None:  # fmt: skip
        """Tell the hosts (in the meeting room, for a lobby) which bots are missing."""
        ref = parse_room(room)
        where = meeting_room_name(ref.key) if ref.kind is RoomKind.LOBBY else room
        warning = BotsMissing(room, tuple(missing), since_ms, looks)
        try:
            present = await self._server.participants(where)
            hosts = [p.identity for p in present
                     if p.attributes.get(ROLE_ATTRIBUTE) in _MODERATORS]  # fmt: skip
            if hosts:
                await self._server.send_data(where, TOPIC_BOTS_MISSING, warning.to_json(), hosts)
        except Exception as exc:
            logger.error("[%s] could not warn the hosts of missing bots: %r", room, exc)
            return
        if missing:
            self.stats.warnings += 1
            gone_s = time.time() - since_ms / 1000
            logger.warning("[%s] bots missing for %.0fs: %s (%d hosts told)",
                           room, gone_s, ", ".join(missing), len(hosts))  # fmt: skip
        else:
            logger.info("[%s] bots all arrived (%d hosts told)", room, len(hosts))

    def missing(self) -> dict[tuple[str, str], float]:
        """(room, agent name) -> seconds it has been missing, for every bot under watch."""
        now = time.time()
        return {key: now - since for key, since in self.stats.missing.items()}

    async def aclose(self) -> None:
        """Cancel every pending check and wait for them; later arrivals start none.
        Idempotent."""
        await self._tasks.aclose()
        self._checks.clear()
