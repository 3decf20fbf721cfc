"""Runs bots: one livekit-agents ``AgentServer`` per bot type, each in its own process.

An ``AgentServer`` registers a single ``rtc_session``, so each bot type needs its own
server. Processes are started with spawn: the LiveKit SDK forbids ``fork()``. The parent
says ready only once every server has registered with livekit-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing as mp
import queue
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from talkplatform_agents.bots.registry import BotOptions, BotSpec, resolve
from talkplatform_agents.errors import TalkPlatformError

if TYPE_CHECKING:
    from livekit.agents import AgentServer

    from talkplatform_agents.config import Settings

__all__ = ["WorkerError", "WorkerOptions", "agent_server", "run_workers"]

logger = logging.getLogger(__name__)


class WorkerError(TalkPlatformError, RuntimeError):
    """A bot server failed to start or register."""


@dataclass(frozen=True)
class WorkerOptions:
    ws_url: str
    api_key: str
    api_secret: str
    load_threshold: float = 0.7
    # "cpu": the machine's CPU use (livekit-agents' default). "jobs": running jobs over
    # max_jobs. livekit-server refuses every job while a worker reports a load of 1, which
    # a busy small machine reaches in CPU spikes that say nothing of a bot's capacity.
    load_mode: Literal["cpu", "jobs"] = "cpu"
    max_jobs: int = 8
    # Two warm processes per bot type: a job that finds none waits for a process to start
    # (seconds on a busy machine), and green rooms and meetings come in bursts.
    idle_processes: int = 2
    register_timeout_s: float = 110.0  # each server first starts its idle job process
    drain_timeout_s: int = 10
    log_level: str = "INFO"
    bots: BotOptions = field(default_factory=BotOptions)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        """The bot servers and every bot, as the platform's settings say."""
        return cls(
            ws_url=settings.livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret.get_secret_value(),
            load_threshold=settings.worker_load_threshold,
            load_mode=settings.worker_load_mode,
            max_jobs=settings.worker_max_jobs,
            log_level=settings.log_level.upper(),
            bots=BotOptions.from_settings(settings),
        )


def run_workers(
    names: list[str],
    options: WorkerOptions,
    on_ready: Callable[[dict[str, str]], None],
) -> int:
    """Run the named bots until SIGINT/SIGTERM or until one of them dies.

    ``on_ready`` gets ``{agent_name: worker_id}`` once every server has registered.
    Returns the process exit code: 0 after a requested stop, 1 when a bot failed.
    """
    specs = resolve(names)
    ctx = mp.get_context("spawn")
    ready: mp.Queue[tuple[str, str]] = ctx.Queue()
    children = {
        spec.agent_name: ctx.Process(
            target=_serve_one,
            args=(spec.agent_name, options, ready),
            name=f"bot:{spec.agent_name}",
            daemon=False,
        )
        for spec in specs
    }
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        logger.info("worker: signal %d, stopping bots", signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in children.values():
            child.start()
        registered = _await_registration(
            children, ready, options.register_timeout_s, lambda: stop_requested
        )
        if registered is None:
            return 0  # asked to stop while starting
        on_ready(registered)
        while not stop_requested:
            dead = [name for name, child in children.items() if not child.is_alive()]
            if dead:
                logger.error("worker: bot(s) %s exited; stopping", ", ".join(dead))
                return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop_children(children, options.drain_timeout_s + 5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _await_registration(
    children: Mapping[str, mp.process.BaseProcess],
    ready: mp.Queue[tuple[str, str]],
    timeout: float,
    stopping: Callable[[], bool],
) -> dict[str, str] | None:
    registered: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(registered) < len(children):
        if stopping():
            return None
        for name, child in children.items():
            if not child.is_alive() and name not in registered:
                raise WorkerError(
                    f"bot {name} exited with code {child.exitcode} before registering"
                )
        if time.monotonic() > deadline:
            missing = sorted(set(children) - set(registered))
            raise WorkerError(f"bot(s) {', '.join(missing)} did not register in {timeout:.0f}s")
        with contextlib.suppress(queue.Empty):
            name, worker_id = ready.get(timeout=0.2)
            registered[name] = worker_id
    return registered


def _stop_children(children: Mapping[str, mp.process.BaseProcess], timeout: float) -> None:
    for child in children.values():
        if child.is_alive():
            child.terminate()  # SIGTERM: the child drains its jobs, then closes
    deadline = time.monotonic() + timeout
    for child in children.values():
        child.join(max(deadline - time.monotonic(), 0.1))
        if child.is_alive():
            logger.warning("worker: %s did not stop in time; killing it", child.name)
            child.kill()
            child.join(5)


def _jobs_load(max_jobs: int, server: AgentServer) -> float:
    return min(len(server.active_jobs) / max_jobs, 1.0)


def _serve_one(agent_name: str, options: WorkerOptions, ready: mp.Queue[tuple[str, str]]) -> None:
    """Child process main: one AgentServer for one bot."""
    logging.basicConfig(
        level=options.log_level,
        format=f"%(asctime)s %(levelname)s [{agent_name}] %(name)s: %(message)s",
    )
    spec = resolve([agent_name])[0]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(spec, options, ready))


_INIT_TIMEOUT_S = 45.0


def agent_server(agent_name: str, options: WorkerOptions, port: int = 0) -> AgentServer:
    """One bot type's ``AgentServer``: as the worker runs it, and as ``agents/*.py`` deploy it
    on their own (with LiveKit's CLI, and its health-check ``port``; 0 picks a free one)."""
    from livekit.agents import AgentServer  # in a bot's process only: the parent stays light

    spec = resolve([agent_name])[0]
    server = AgentServer(
        ws_url=options.ws_url,
        api_key=options.api_key,
        api_secret=options.api_secret,
        multiprocessing_context="spawn",
        num_idle_processes=options.idle_processes,
        load_threshold=options.load_threshold,
        load_fnc=functools.partial(_jobs_load, options.max_jobs)
        if options.load_mode == "jobs"
        else None,
        drain_timeout=options.drain_timeout_s,
        # A spawned job process imports livekit, numpy and OpenCV before it is ready; on a
        # busy two-core machine running several bot types that takes well over the 10 s
        # default, and a timed-out process is killed and the job waits for another.
        initialize_process_timeout=_INIT_TIMEOUT_S,
        port=port,
        # A partial of a module-level function pickles by reference: spawn-safe.
        setup_fnc=functools.partial(spec.prewarm, options.bots) if spec.prewarm else None,
        # livekit-agents spells WARNING its own way.
        log_level="WARN" if options.log_level == "WARNING" else options.log_level,
    )
    server.rtc_session(spec.entrypoint, agent_name=spec.agent_name)
    return server


async def _serve(spec: BotSpec, options: WorkerOptions, ready: mp.Queue[tuple[str, str]]) -> None:
    server = agent_server(spec.agent_name, options)
    server.on("worker_registered", lambda worker_id, _info: ready.put((spec.agent_name, worker_id)))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with asyncio.TaskGroup() as group:
        running = group.create_task(server.run(devmode=False))
        stopping = group.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not running.done():
            logger.info("[%s] draining", spec.agent_name)
            with contextlib.suppress(Exception):
                await server.drain(timeout=options.drain_timeout_s)
        # Also after run() failed: idle job processes must not outlive the server.
        await server.aclose()
