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
from talkplatform_agents.bots.lease import LeaseKeeper, LeaseOptions
from talkplatform_agents.bots.metrics import JOBS_ACCEPTED, JOBS_FAILED, JOBS_FINISHED, ROOMS

__all__ = [
    "AgentsJob",
    "CountedJob",
    "hosted_entrypoint",
    "hosted_prewarm",
    "leased_entrypoint",
    "leased_prewarm",
]

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


_LEASE_KEY = "lease.options"


def leased_prewarm(
    lease: LeaseOptions, prewarm: Callable[[JobProcess], None] | None, proc: JobProcess
) -> None:
    """Once in each job process: the bot's own prewarm, and the lease options its jobs
    hold their rooms with."""
    proc.userdata[_LEASE_KEY] = lease
    if prewarm is not None:
        prewarm(proc)


def leased_entrypoint(
    agent_name: str, entrypoint: Callable[[JobContext], Awaitable[None]]
) -> Callable[[JobContext], Awaitable[None]]:
    """``entrypoint``, whose bot holds its room's lease (``bots/lease.py``) from the moment
    it serves the room (the entrypoint returned, joined) until its job ends."""
    return functools.partial(_run_leased, agent_name, entrypoint)


class CountedJob:
    """A job in the bots' figures (``bots/metrics.py``): taken, serving its room, ended."""

    def __init__(self, agent_name: str) -> None:
        self._agent = agent_name
        self._serving = False
        self._ended = False  # counted as finished or failed: once
        JOBS_ACCEPTED.labels(agent_name).inc()

    def serving(self) -> None:
        self._serving = True
        ROOMS.labels(self._agent).inc()

    def failed(self) -> None:
        if not self._ended:
            self._ended = True
            JOBS_FAILED.labels(self._agent).inc()

    async def ended(self) -> None:
        if self._serving:
            self._serving = False
            ROOMS.labels(self._agent).dec()
        if not self._ended:
            self._ended = True
            JOBS_FINISHED.labels(self._agent).inc()


async def _run_leased(
    agent_name: str, entrypoint: Callable[[JobContext], Awaitable[None]], ctx: JobContext
) -> None:
    counted = CountedJob(agent_name)
    ctx.add_shutdown_callback(counted.ended)
    try:
        await entrypoint(ctx)
    except BaseException:
        counted.failed()
        raise
    if ctx.room.isconnected():
        counted.serving()
    options: LeaseOptions = ctx.proc.userdata.get(_LEASE_KEY, LeaseOptions())
    if not options.enabled or not ctx.room.isconnected():
        return
    # One keeper per job: a job process runs one job at a time, and its death is the job's.
    keeper = LeaseKeeper(options)
    keeper.start()
    room, identity = ctx.room.name, ctx.room.local_participant.identity

    async def release() -> None:
        await keeper.release(room, agent_name, identity)
        await keeper.aclose()

    ctx.add_shutdown_callback(release)
    await keeper.hold(room, agent_name, identity)
