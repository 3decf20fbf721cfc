"""Runs bots, each the way it runs best (``BotSpec.executor``):
- ``host``: the chat relay and the moderator, many rooms to a room host process
  (``bots/room_host.py``). The worker runs ``room_hosts`` of them, each holding up to
  ``rooms_per_host`` rooms, and registering with livekit-server for every hosted bot.
- ``process``: the green room, a livekit-agents ``AgentServer`` whose jobs are each a
  process (media needs the cores; one ``AgentServer`` registers one agent name).

Processes are started with spawn: the LiveKit SDK forbids ``fork()``. The parent says ready
once every child has registered, then supervises: a child that dies (a native crash, say)
is started again, and the service's reconciler brings its meetings' bots back. A child that
keeps dying ends the worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from talkplatform_agents.bots.agents_job import leased_entrypoint, leased_prewarm
from talkplatform_agents.bots.lease import expire_leases_of
from talkplatform_agents.bots.load import LoadMode, OwnLoad, jobs_load
from talkplatform_agents.bots.metrics import MetricsPortError, WorkerMetrics, serve_registry
from talkplatform_agents.bots.registry import BotOptions, BotSpec, Executor, resolve
from talkplatform_agents.bots.room_host import HostOptions, Ready, serve_host
from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.logs import LogFormat, configure_logging

if TYPE_CHECKING:
    from livekit.agents import AgentServer

    from talkplatform_agents.config import Settings

__all__ = ["WorkerError", "WorkerOptions", "agent_server", "run_room_host", "run_workers"]

logger = logging.getLogger(__name__)


class WorkerError(TalkPlatformError, RuntimeError):
    """A bot runtime failed to start or register, or kept dying."""


@dataclass(frozen=True)
class WorkerOptions:
    ws_url: str
    api_key: str
    api_secret: str
    load_threshold: float = 0.7
    # bots/load.py: "own" counts this runtime's jobs and its own processes' CPU, never the
    # rest of the machine's work.
    load_mode: LoadMode = "own"
    # "auto": each bot's own executor (BotSpec.executor); otherwise the same for all that
    # can (the green room has no hosted session: it always runs a process per job).
    executor: Literal["auto"] | Executor = "auto"
    max_jobs: int = 8  # per AgentServer: a process per job
    room_hosts: int = 2  # room host processes
    rooms_per_host: int = 50
    # Two warm processes per AgentServer: a job that finds none waits for a process to
    # start (seconds on a busy machine), and green rooms come in bursts.
    idle_processes: int = 2
    register_timeout_s: float = 110.0  # each server first starts its idle job process
    drain_timeout_s: int = 10
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    # The one Prometheus endpoint for every bot process (bots/metrics.py); port 0: none.
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 0
    # livekit-agents watches each job's event loop for blocking: a timer and a watchdog
    # thread, each waking every 20-50 ms. 0 turns the watch off.
    loop_monitor_ms: int = 0
    # A child that dies this many times within restart_window_s ends the worker.
    restarts: int = 5
    restart_window_s: float = 60.0
    bots: BotOptions = field(default_factory=BotOptions)

    def executor_of(self, spec: BotSpec) -> Executor:
        if self.executor == "auto":
            return spec.executor
        if self.executor == "host" and not spec.hostable:
            return "process"  # the green room has no hosted session
        return self.executor

    def host_options(self, agent_names: tuple[str, ...]) -> HostOptions:
        return HostOptions(
            ws_url=self.ws_url,
            api_key=self.api_key,
            api_secret=self.api_secret,
            agent_names=agent_names,
            hosted=self.bots.hosted,
            lease=self.bots.lease,
            capacity=self.rooms_per_host,
            load_mode=self.load_mode,
            load_threshold=self.load_threshold,
            close_timeout_s=self.drain_timeout_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        """The bot runtimes and every bot, as the platform's settings say."""
        return cls(
            ws_url=settings.livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret.get_secret_value(),
            load_threshold=settings.worker_load_threshold,
            load_mode=settings.worker_load_mode,
            executor=settings.worker_executor,
            max_jobs=settings.worker_max_jobs,
            room_hosts=settings.worker_room_hosts,
            rooms_per_host=settings.worker_rooms_per_host,
            loop_monitor_ms=settings.worker_loop_monitor_ms,
            log_level=settings.log_level.upper(),
            log_format=settings.log_format,
            metrics_host=settings.bot_metrics_host,
            metrics_port=settings.bot_metrics_port,
            bots=BotOptions.from_settings(settings),
        )


@dataclass
class _Child:
    name: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    process: mp.process.BaseProcess | None = None
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    restarts: int = 0

    def start(self, ctx: Any, metrics: WorkerMetrics | None) -> None:
        if self.process is not None and self.process.exitcode is not None:
            self.process.close()  # a dead one's handles, before its replacement
        self.process = ctx.Process(
            target=self.target, args=self.args, name=f"bot:{self.name}", daemon=False
        )
        with metrics.child_environment(self.name) if metrics else contextlib.nullcontext():
            self.process.start()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()


def run_workers(
    names: list[str],
    options: WorkerOptions,
    on_ready: Callable[[dict[str, str]], None],
) -> int:
    """Run the named bots until SIGINT/SIGTERM, or until a child keeps dying.

    ``on_ready`` gets ``{agent_name[@host]: worker_id}`` once every child has registered.
    Returns the process exit code: 0 after a requested stop, 1 when a bot kept failing.
    """
    specs = resolve(names)
    ctx = mp.get_context("spawn")
    ready: mp.Queue[Ready] = ctx.Queue()
    children: dict[str, _Child] = {}
    metrics: WorkerMetrics | None = None
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        logger.info("worker: signal %d, stopping bots", signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if options.metrics_port:
            # In the try: its directory goes with the finally's close, whatever fails next.
            metrics = _worker_metrics(options, lambda: {n: c.restarts for n, c in children.items()})
        children.update(_children(specs, options, ready, metrics))
        for child in children.values():
            child.start(ctx, metrics)
        registered = _await_registration(
            children, ready, options.register_timeout_s, lambda: stop_requested
        )
        if registered is None:
            return 0  # asked to stop while starting
        on_ready(registered)
        next_sweep = time.monotonic() + _METRICS_SWEEP_S
        while not stop_requested:
            if metrics is not None and time.monotonic() >= next_sweep:
                metrics.sweep()  # ended job processes' files, scraped or not
                next_sweep = time.monotonic() + _METRICS_SWEEP_S
            with contextlib.suppress(queue.Empty):
                name, ids = ready.get(timeout=0.2)  # a restarted child registered again
                logger.info("worker: %s registered again: %s", name, ids)
            for child in children.values():
                if stop_requested or child.alive:
                    continue
                if not _restart(child, options, ctx, metrics):
                    return 1
        return 0
    finally:
        # A room host ends its jobs (at most drain_timeout_s to settle), then closes each
        # (its callbacks and the leave, bounded by drain_timeout_s too): room for both.
        _stop_children(children, 2 * options.drain_timeout_s + 10)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if metrics is not None:
            metrics.close()


_METRICS_SWEEP_S = 15.0


def _worker_metrics(
    options: WorkerOptions, restarts: Callable[[], dict[str, int]]
) -> WorkerMetrics:
    try:
        return WorkerMetrics(options.metrics_host, options.metrics_port, restarts)
    except MetricsPortError as exc:
        raise WorkerError(_port_taken(exc)) from exc


def _port_taken(exc: MetricsPortError) -> str:
    return f"{exc} (BOT_METRICS_PORT: a free port, or 0 for no metrics endpoint)"


def _children(
    specs: list[BotSpec],
    options: WorkerOptions,
    ready: mp.Queue[Ready],
    metrics: WorkerMetrics | None,
) -> dict[str, _Child]:
    children: dict[str, _Child] = {}
    hosted = tuple(s.agent_name for s in specs if options.executor_of(s) == "host")
    if hosted:
        host_options = options.host_options(hosted)
        for index in range(options.room_hosts):
            name = f"host-{index}"
            host_args = (host_options, name, options.log_level, ready, options.log_format)
            children[name] = _Child(name, serve_host, host_args)
    for spec in specs:
        if options.executor_of(spec) != "host":
            jobs_dir = str(metrics.child_dir(spec.agent_name)) if metrics else None
            server_args = (spec.agent_name, options, ready, jobs_dir)
            children[spec.agent_name] = _Child(spec.agent_name, _serve_one, server_args)
    return children


def _restart(
    child: _Child, options: WorkerOptions, ctx: Any, metrics: WorkerMetrics | None
) -> bool:
    now = time.monotonic()
    child.deaths.append(now)
    while child.deaths and now - child.deaths[0] > options.restart_window_s:
        child.deaths.popleft()
    code = child.process.exitcode if child.process else None
    if len(child.deaths) > options.restarts:
        logger.error("worker: %s died %d times in %.0fs (last exit code %s); stopping",
                     child.name, len(child.deaths), options.restart_window_s, code)  # fmt: skip
        return False
    logger.error("worker: %s died (exit code %s); starting it again", child.name, code)
    if child.process is not None and child.process.pid is not None:
        # Its bots are dead in their rooms: say so now, not a lease's length later.
        ended = expire_leases_of(options.bots.lease, child.process.pid)
        logger.info("worker: %s's %d leases ended", child.name, ended)
    child.restarts += 1
    child.start(ctx, metrics)
    return True


def _await_registration(
    children: dict[str, _Child],
    ready: mp.Queue[Ready],
    timeout: float,
    stopping: Callable[[], bool],
) -> dict[str, str] | None:
    registered: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + timeout
    while len(registered) < len(children):
        if stopping():
            return None
        for name, child in children.items():
            if not child.alive and name not in registered:
                code = child.process.exitcode if child.process else None
                raise WorkerError(f"bot {name} exited with code {code} before registering")
        if time.monotonic() > deadline:
            missing = sorted(set(children) - set(registered))
            raise WorkerError(f"bot(s) {', '.join(missing)} did not register in {timeout:.0f}s")
        with contextlib.suppress(queue.Empty):
            name, ids = ready.get(timeout=0.2)
            registered[name] = ids
    return {
        (agent if agent == child else f"{agent}@{child}"): worker_id
        for child, ids in registered.items()
        for agent, worker_id in ids.items()
    }


def _stop_children(children: dict[str, _Child], timeout: float) -> None:
    for child in children.values():
        if child.alive and child.process is not None:
            child.process.terminate()  # SIGTERM: the child ends its jobs, then closes
    deadline = time.monotonic() + timeout
    for child in children.values():
        if child.process is None:
            continue
        child.process.join(max(deadline - time.monotonic(), 0.1))
        if child.process.is_alive():
            logger.warning("worker: %s did not stop in time; killing it", child.name)
            child.process.kill()
            child.process.join(5)


def run_room_host(agent_names: tuple[str, ...], options: WorkerOptions) -> int:
    """One room host in this process, in the foreground, until SIGINT/SIGTERM: how
    ``agents/chat_relay.py`` and ``agents/waiting_room.py`` deploy a hosted bot on its own
    (run as many of them as the rooms need; each takes ``rooms_per_host``)."""
    server = None
    if options.metrics_port:
        try:
            server = serve_registry(options.metrics_host, options.metrics_port)
        except MetricsPortError as exc:
            raise WorkerError(_port_taken(exc)) from exc
    try:
        serve_host(
            options.host_options(agent_names), "host", options.log_level, None, options.log_format
        )
    finally:
        if server is not None:
            server.close()
    return 0


# -- a livekit-agents AgentServer process ---------------------------------------------


def _serve_one(
    agent_name: str, options: WorkerOptions, ready: mp.Queue[Ready], metrics_dir: str | None
) -> None:
    """Child process main: one AgentServer for one bot. ``metrics_dir``: this child's
    directory of figures (bots/metrics.py), under which its job processes write theirs."""
    configure_logging(options.log_level, options.log_format, agent_name)
    spec = resolve([agent_name])[0]
    # Its own: livekit-agents empties it as the server starts (a restarted server, too).
    jobs_dir = os.path.join(metrics_dir, f"jobs-{os.getpid()}") if metrics_dir else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(spec, options, ready, jobs_dir))


_INIT_TIMEOUT_S = 45.0
_LOOP_MONITOR_ENV = "LIVEKIT_AGENTS_LOOP_BLOCK_WARN_MS"


def agent_server(
    agent_name: str, options: WorkerOptions, port: int = 0, jobs_metrics_dir: str | None = None
) -> AgentServer:
    """One bot type's ``AgentServer``, a process per job: as the worker runs it, and as
    ``agents/greenroom_echo.py`` deploys it on its own (with LiveKit's CLI, and its
    health-check ``port``; 0 picks a free one). ``jobs_metrics_dir``: where its job
    processes write their figures (the worker's, bots/metrics.py)."""
    # In a bot's process only: the parent stays light.
    from livekit.agents import AgentServer, JobExecutorType

    spec = resolve([agent_name])[0]
    # livekit-agents reads it from the environment, in each job process it starts.
    os.environ[_LOOP_MONITOR_ENV] = str(options.loop_monitor_ms)
    load_fnc: Callable[[AgentServer], float] | None = None
    if options.load_mode == "own":
        load_fnc = OwnLoad(options.max_jobs)
    elif options.load_mode == "jobs":
        load_fnc = functools.partial(jobs_load, options.max_jobs)
    server = AgentServer(
        ws_url=options.ws_url,
        api_key=options.api_key,
        api_secret=options.api_secret,
        multiprocessing_context="spawn",
        job_executor_type=JobExecutorType.THREAD
        if options.executor_of(spec) == "thread"
        else JobExecutorType.PROCESS,
        num_idle_processes=options.idle_processes
        if spec.idle_processes is None
        else spec.idle_processes,
        load_threshold=options.load_threshold,
        load_fnc=load_fnc,
        drain_timeout=options.drain_timeout_s,
        # A spawned job process imports livekit, numpy and OpenCV before it is ready; on a
        # busy two-core machine running several bot types that takes well over the 10 s
        # default, and a timed-out process is killed and the job waits for another.
        initialize_process_timeout=_INIT_TIMEOUT_S,
        port=port,
        prometheus_multiproc_dir=jobs_metrics_dir,
        # A partial of a module-level function pickles by reference: spawn-safe.
        setup_fnc=functools.partial(
            leased_prewarm,
            options.bots.lease
            if spec.lease_ttl_s is None
            else dataclasses.replace(
                options.bots.lease, ttl_s=max(spec.lease_ttl_s, options.bots.lease.ttl_s)
            ),
            functools.partial(spec.prewarm, options.bots) if spec.prewarm else None,
        ),
        # livekit-agents spells WARNING its own way.
        log_level="WARN" if options.log_level == "WARNING" else options.log_level,
    )
    server.rtc_session(
        leased_entrypoint(spec.agent_name, spec.entrypoint), agent_name=spec.agent_name
    )
    return server


async def _serve(
    spec: BotSpec, options: WorkerOptions, ready: mp.Queue[Ready], jobs_metrics_dir: str | None
) -> None:
    server = agent_server(spec.agent_name, options, jobs_metrics_dir=jobs_metrics_dir)
    server.on(
        "worker_registered",
        lambda worker_id, _info: ready.put((spec.agent_name, {spec.agent_name: worker_id})),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Plain tasks, not a TaskGroup: a group cancels its body when a task fails, and idle job
    # processes must not outlive the server whatever ended it.
    running = asyncio.create_task(server.run(devmode=False), name=f"server:{spec.agent_name}")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            logger.info("%s: draining", spec.agent_name)
            with contextlib.suppress(Exception):
                await server.drain(timeout=options.drain_timeout_s)
    finally:
        stopping.cancel()
        await server.aclose()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
