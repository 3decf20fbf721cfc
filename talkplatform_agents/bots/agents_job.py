"""A bot session under livekit-agents: its ``JobContext`` as a ``BotJob``.

This is how a hosted bot (chat relay, moderator) runs as a process per job, the
livekit-agents way: under ``WORKER_EXECUTOR=process``, the baseline that
``bench/bot_density.py`` measures the room host against.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess

from talkplatform_agents.bots.hosted import HOSTED, HostedOptions
from talkplatform_agents.bots.job import ShutdownCallback

__all__ = ["AgentsJob", "hosted_entrypoint", "hosted_prewarm"]

_OPTIONS_KEY = "hosted.options"


class AgentsJob:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    @property
    def room_name(self) -> str:
        return self._ctx.job.room.name

    @property
    def room(self) -> rtc.Room:
        return self._ctx.room

    async def connect(self, *, subscribe: bool = False) -> None:
        mode = AutoSubscribe.SUBSCRIBE_ALL if subscribe else AutoSubscribe.SUBSCRIBE_NONE
        await self._ctx.connect(auto_subscribe=mode)

    def shutdown(self, reason: str = "") -> None:
        self._ctx.shutdown(reason)

    def add_shutdown_callback(self, callback: ShutdownCallback) -> None:
        self._ctx.add_shutdown_callback(callback)


def hosted_prewarm(options: HostedOptions, proc: JobProcess) -> None:
    """Once in each job process: the options its sessions need."""
    options.prepare()
    proc.userdata[_OPTIONS_KEY] = options


def hosted_entrypoint(agent_name: str) -> Callable[[JobContext], Awaitable[None]]:
    """The livekit-agents entrypoint that runs ``agent_name``'s session. A partial of a
    module-level function: it pickles by reference into a spawned job process."""
    HOSTED[agent_name]
    return functools.partial(_run_session, agent_name)


async def _run_session(agent_name: str, ctx: JobContext) -> None:
    options: HostedOptions = ctx.proc.userdata.get(_OPTIONS_KEY, HostedOptions())
    await HOSTED[agent_name](AgentsJob(ctx), options)
