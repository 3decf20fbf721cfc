"""Makes sure every green room that has a user also has its bot.

The token's room configuration dispatches the bot only when the room is created, and
livekit-server v1.13 sometimes answers that dispatch with "no worker is available" while
its worker cache refreshes (livekit/livekit#4060); it never retries. A user who rejoins
within the room's departure timeout finds the room still there and gets no dispatch at
all. So on each participant_joined webhook for a green room, after a grace period, the
service checks for the bot and dispatches it explicitly when it is missing. Should both
dispatches land, the bots themselves keep one (see bots.greenroom).
"""

from __future__ import annotations

import asyncio
import logging

from livekit import api

from talkplatform_agents.lk.naming import ECHO_AGENT_NAME
from talkplatform_agents.lk.server_api import ServerApi

__all__ = ["BotReconciler"]

logger = logging.getLogger(__name__)

GREENROOM_PREFIX = "greenroom-"


class BotReconciler:
    def __init__(self, server: ServerApi, grace_s: float = 4.0) -> None:
        self._server = server
        self._grace_s = grace_s
        self._checks: dict[str, asyncio.Task[None]] = {}  # one pending check per room

    def participant_joined(self, room: str, is_agent: bool) -> None:
        if is_agent or not room.startswith(GREENROOM_PREFIX) or room in self._checks:
            return
        task = asyncio.create_task(self._ensure_bot(room), name=f"reconcile:{room}")
        self._checks[room] = task
        task.add_done_callback(lambda _: self._checks.pop(room, None))

    async def _ensure_bot(self, room: str) -> None:
        await asyncio.sleep(self._grace_s)
        try:
            present = await self._server.participants(room)
            agents = [p for p in present if p.kind == api.ParticipantInfo.Kind.AGENT]
            if agents or len(agents) == len(present):
                return  # the bot is there, or the user has already gone
            logger.warning("[%s] no bot after %.0fs; dispatching %s", room, self._grace_s,
                           ECHO_AGENT_NAME)  # fmt: skip
            await self._server.dispatch(room, ECHO_AGENT_NAME)
        except Exception as exc:  # the webhook already answered: log, never raise
            logger.error("[%s] could not reconcile the bot: %r", room, exc)

    async def aclose(self) -> None:
        tasks = list(self._checks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
