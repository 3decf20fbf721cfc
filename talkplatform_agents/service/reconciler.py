"""Makes sure every room that has a user also has its bots (``lk.naming.agents_for_room``).

The token's room configuration dispatches bots only when the room is created, and
livekit-server v1.13 sometimes answers that dispatch with "no worker is available" while
its worker cache refreshes (livekit/livekit#4060); it never retries. A user who rejoins
within the room's departure timeout finds the room still there and gets no dispatch at
all. So on each participant_joined webhook, after a grace period, the service checks the
room for each bot it should have (by the ``lk.agent.name`` attribute livekit-agents sets)
and dispatches the ones that are neither there nor on their way (a dispatch whose job a
worker has taken). Should two dispatches land anyway, the bots keep one
(``bots/election.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from livekit import api

from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE, agents_for_room
from talkplatform_agents.lk.server_api import AgentDispatchApi
from talkplatform_agents.tasks import TaskSet

__all__ = ["BotReconciler", "ReconcilerOptions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcilerOptions:
    # Before each look at the room: a bot dispatched with the room takes a few seconds to
    # join on a busy machine, and a fresh dispatch as long again.
    grace_s: float = 4.0
    # A dispatch can itself be lost, so a room is looked at again after each one; but not
    # forever, should no worker ever take the job.
    attempts: int = 8
    # A job still pending counts as on its way for this long (the worker's process start
    # bound, 45 s, and the join after it): until then, a look that finds every missing bot
    # on its way uses up no attempt, so that a slow start is waited for, not given up on.
    starting_s: float = 60.0

    def __post_init__(self) -> None:
        if self.grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, not {self.grace_s}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {self.attempts}")


class BotReconciler:
    def __init__(self, server: AgentDispatchApi, options: ReconcilerOptions | None = None) -> None:
        self._server = server
        self._options = options or ReconcilerOptions()
        self._tasks = TaskSet("reconciler")
        self._checks: dict[str, asyncio.Task[None]] = {}  # one pending check per room

    def participant_joined(self, room: str, is_agent: bool) -> asyncio.Task[None] | None:
        """Start checking ``room`` for its bots, unless a check is already under way there;
        the check started, if any (None also once closed)."""
        if is_agent or not agents_for_room(room) or room in self._checks:
            return None
        task = self._tasks.spawn(self._ensure_bots(room), room)
        if task is not None:
            self._checks[room] = task
            task.add_done_callback(lambda _: self._checks.pop(room, None))
        return task

    async def _ensure_bots(self, room: str) -> None:
        # A dispatch can itself be lost the same way, and a job on its way can fail: keep
        # looking until every bot is there (or the users have gone), a bounded number of times.
        loop = asyncio.get_running_loop()
        patient_until = loop.time() + self._options.starting_s
        attempts = 0
        while attempts < self._options.attempts:
            await asyncio.sleep(self._options.grace_s)
            missing, dispatched = await self._dispatch_missing(room)
            if missing == 0:
                return
            if dispatched or loop.time() >= patient_until:
                attempts += 1
        logger.error("[%s] bots still missing after %d checks", room, self._options.attempts)

    async def _dispatch_missing(self, room: str) -> tuple[int, int]:
        """Dispatch the bots ``room`` lacks that are not on their way; how many bots are not
        there yet (0 when no user is left, or when the check itself failed), and how many of
        them were dispatched now."""
        try:
            present = await self._server.participants(room)
            agents = [p for p in present if p.kind == api.ParticipantInfo.Kind.AGENT]
            if len(agents) == len(present):
                return 0, 0  # the users have already gone
            running = {p.attributes.get(AGENT_NAME_ATTRIBUTE, "") for p in agents}
            expected = [a for a in agents_for_room(room) if a not in running]
            # A bot whose job a worker has taken is on its way (its process may still be
            # starting on a busy machine): a second dispatch would only make a twin.
            starting = await self._server.agents_in_flight(room) if expected else set()
            dispatching = [a for a in expected if a not in starting]
            for missing in dispatching:
                logger.warning("[%s] no %s after %.0fs; dispatching it", room, missing,
                               self._options.grace_s)  # fmt: skip
                await self._server.dispatch(room, missing)
        except Exception as exc:  # the webhook already answered: log, never raise
            logger.error("[%s] could not reconcile the bots: %r", room, exc)
            return 0, 0
        return len(expected), len(dispatching)

    async def aclose(self) -> None:
        """Cancel every pending check and wait for them; later arrivals start none.
        Idempotent."""
        await self._tasks.aclose()
        self._checks.clear()
