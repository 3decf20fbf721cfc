"""The bots that the room host runs: many meetings on one event loop (``bots/room_host.py``).

They mostly wait on data messages and the store, so one process holds many of their rooms.
The green room, which decodes and encodes media, is not among them: it runs a process per
session (``bots/registry.py``).

This module imports only what these bots need (no livekit-agents, no OpenCV): a room host
process pays for nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from talkplatform_agents.bots.chat.entry import chat_session
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.job import BotJob
from talkplatform_agents.bots.moderator.bot import ModeratorOptions, moderator_session
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME, WAITING_ROOM_AGENT_NAME

__all__ = ["HOSTED", "HostedOptions", "Session"]


@dataclass(frozen=True)
class HostedOptions:
    """What the hosted bots are configured with (a room host process gets this, spawned)."""

    database_url: str = ""
    chat: ChatOptions = field(default_factory=ChatOptions)
    moderator: ModeratorOptions = field(default_factory=ModeratorOptions)

    def prepare(self) -> None:
        """Once per process, before any session: the database driver's first import
        blocks an event loop for ~0.2 s, so take it now."""
        for driver in ("aiosqlite", "aiomysql"):
            if driver.removeprefix("aio") in self.database_url:
                importlib.import_module(driver)


Session = Callable[[BotJob, HostedOptions], Awaitable[None]]


async def _chat(job: BotJob, options: HostedOptions) -> None:
    await chat_session(job, options.chat, options.database_url)


async def _moderator(job: BotJob, options: HostedOptions) -> None:
    await moderator_session(job, options.moderator)


HOSTED: dict[str, Session] = {
    CHAT_AGENT_NAME: _chat,
    WAITING_ROOM_AGENT_NAME: _moderator,
}
