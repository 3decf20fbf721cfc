"""The room host: one process serving many bot jobs, each an ``rtc.Room`` on one event loop.

livekit-agents runs a job per process (~260 MB a meeting, measured), or a job per thread,
each thread with its own event loop, IPC channel and loop watchdog: 2.5 times this host's
CPU per chatting meeting, and with other work on the machine concurrent joins ended in the
SDK's "timed out waiting for ReadyForRoomEventRequest" panic, which kills the process and
every meeting in it (3 runs of 3 at 10 to 20 meetings; README, "Bots at scale"). The host
registers with livekit-server itself (``lk/agent_worker.py``), one link per agent name, and
runs every job as a task here:
- a job's failure (its session raised, its room dropped) ends that job only, and is reported
  to livekit-server as failed; the other rooms carry on;
- joins are limited to a few at a time, and a join in flight is never cancelled (that
  strands the SDK's handshake: livekit/python-sdks#784): a job that ends while joining
  waits for the join, then leaves;
- a host holds at most ``capacity`` rooms: its Python runs on one core, and a native crash
  takes down every room in it (the worker starts it again), so the worker runs several.
SIGUSR1 makes a host log (at WARNING) its live asyncio tasks and jobs: bench/soak.py's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from livekit import rtc
from livekit.protocol import agent

from talkplatform_agents.bots.hosted import HOSTED, HostedOptions, Session
from talkplatform_agents.bots.job import ShutdownCallback
from talkplatform_agents.bots.lease import LeaseKeeper, LeaseOptions
from talkplatform_agents.bots.load import LoadMode, OwnLoad, machine_cpu
from talkplatform_agents.bots.metrics import JOBS_ACCEPTED, JOBS_FAILED, JOBS_FINISHED, ROOMS
from talkplatform_agents.lk.agent_worker import (
    SERVER_TARGET_LOAD,
    AgentWorkerLink,
    LinkOptions,
    WorkerLoad,
)
from talkplatform_agents.logs import LogFormat, configure_logging
from talkplatform_agents.tasks import TaskSet

__all__ = ["HostOptions", "HostedJob", "Ready", "RoomHost", "serve_host"]

# What a host process tells its parent once registered: (its name, {agent name: worker id}).
Ready = tuple[str, dict[str, str]]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostOptions:
    ws_url: str
    api_key: str
    api_secret: str
    agent_names: tuple[str, ...]
    hosted: HostedOptions = field(default_factory=HostedOptions)
    lease: LeaseOptions = field(default_factory=LeaseOptions)
    capacity: int = 50  # rooms in this process, of every agent name together
    load_mode: LoadMode = "own"
    load_threshold: float = 0.7  # own CPU at which the host takes no more (as livekit-agents)
    joins_at_once: int = 4
    join_timeout_s: float = 30.0
    close_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {self.capacity}")
        if self.joins_at_once < 1:
            raise ValueError(f"joins_at_once must be >= 1, not {self.joins_at_once}")
        if not self.agent_names:
            raise ValueError("a room host needs at least one agent name")


class HostedJob:
    """One job: a ``BotJob`` whose room lives on the host's event loop."""

    def __init__(
        self, host: RoomHost, agent_name: str, job: agent.Job, url: str, token: str
    ) -> None:
        self._host = host
        self.agent_name = agent_name
        self.job = job
        self._url = url
        self._token = token
        self._room = rtc.Room()
        self._joining: asyncio.Task[None] | None = None
        self._callbacks: list[ShutdownCallback] = []
        self.ended = asyncio.Event()
        self.reason = ""
        self.identity = ""  # once joined
        self.serving = False  # counted in the rooms served (metrics)
        self._room.on("disconnected", self._on_disconnected)

    @property
    def room_name(self) -> str:
        return self.job.room.name

    @property
    def room(self) -> rtc.Room:
        return self._room

    async def connect(self, *, subscribe: bool = False) -> None:
        if self._joining is not None:
            raise RuntimeError(f"[{self.room_name}] the job already joined its room")
        # Not in the host's TaskSet: a join in flight must never be cancelled, and close()
        # awaits it instead.
        self._joining = asyncio.create_task(self._join(subscribe))
        # Shielded: cancelling the caller must not cancel the join (python-sdks#784).
        await asyncio.shield(self._joining)
        await self._host.running(self)

    async def _join(self, subscribe: bool) -> None:
        async with self._host.joins:
            if self.ended.is_set():
                # Ended while waiting its turn: nothing is in flight yet, so never join.
                raise RuntimeError(f"[{self.room_name}] the job ended before it joined")
            options = rtc.RoomOptions(
                auto_subscribe=subscribe, connect_timeout=self._host.join_timeout_s
            )
            await self._room.connect(self._url, self._token, options)

    def shutdown(self, reason: str = "") -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()

    def add_shutdown_callback(self, callback: ShutdownCallback) -> None:
        self._callbacks.append(callback)

    def _on_disconnected(self, reason: object) -> None:
        self.shutdown(f"disconnected ({reason})")

    async def close(self, timeout_s: float) -> None:
        """Run the shutdown callbacks, then leave the room; never raises."""
        if self._joining is not None:
            # Whatever the join's outcome (it failed, or this wait is cancelled in turn), the
            # room is left below if it was joined.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._joining), self._host.join_timeout_s * 2)
        for callback in self._callbacks:
            try:
                await asyncio.wait_for(callback(), timeout_s)
            except Exception:
                logger.exception("[%s] %s: shutdown callback failed", self.room_name,
                                 self.agent_name)  # fmt: skip
        self._callbacks.clear()
        with contextlib.suppress(Exception):
            self._room.off("disconnected", self._on_disconnected)
        if self._room.isconnected():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._room.disconnect(), timeout_s)


class RoomHost:
    def __init__(self, options: HostOptions, sessions: Mapping[str, Session] = HOSTED) -> None:
        unknown = [name for name in options.agent_names if name not in sessions]
        if unknown:
            raise ValueError(f"no session for {', '.join(unknown)}; known: {', '.join(sessions)}")
        self._options = options
        self._sessions = sessions
        self._links = {
            name: AgentWorkerLink(
                LinkOptions(options.ws_url, options.api_key, options.api_secret, name),
                self,
            )
            for name in options.agent_names
        }
        self._jobs: dict[str, HostedJob] = {}
        self._reserved = 0
        self._own = OwnLoad(options.capacity)
        self._cpu = 0.0
        self._cpu_at = 0.0
        self._work = TaskSet("room-host")
        # Each bot's lease on its room: this process's heartbeat for the service.
        self.leases = LeaseKeeper(options.lease)
        self._stopping = False
        self.joins = asyncio.Semaphore(options.joins_at_once)

    @property
    def jobs(self) -> Mapping[str, HostedJob]:
        return self._jobs

    @property
    def join_timeout_s(self) -> float:
        return self._options.join_timeout_s

    # -- JobHandler: what the agent links ask ------------------------------------------

    def offer(self, agent_name: str, job: agent.Job) -> bool:
        if self._stopping or job.id in self._jobs:
            return False
        if self.status().full:
            return False
        self._reserved += 1
        return True

    def withdraw(self, agent_name: str, job: agent.Job) -> None:
        self._reserved = max(self._reserved - 1, 0)

    def assigned(self, agent_name: str, job: agent.Job, url: str, token: str) -> None:
        self._reserved = max(self._reserved - 1, 0)
        hosted = HostedJob(self, agent_name, job, url, token)
        if self._stopping:  # offered before the drain, assigned after: end it at once
            hosted.shutdown("the room host is stopping")
        self._jobs[job.id] = hosted
        task = self._work.spawn(self._run(hosted), f"{agent_name} in {job.room.name}")
        if task is None:  # closing: never started
            self._jobs.pop(job.id, None)
        else:
            JOBS_ACCEPTED.labels(agent_name).inc()

    def terminated(self, agent_name: str, job_id: str) -> None:
        if (job := self._jobs.get(job_id)) is not None:
            job.shutdown("terminated by livekit-server")

    def status(self) -> WorkerLoad:
        """The host's fill (rooms taken and promised, over its capacity) or its CPU over the
        threshold, whichever is higher; full at 1. Reported scaled to livekit-server's target
        load, which is where the server stops sending jobs."""
        options = self._options
        taken = len(self._jobs) + self._reserved
        pressure = max(taken / options.capacity, self._read_cpu() / options.load_threshold)
        full = self._stopping or pressure >= 1.0
        return WorkerLoad(min(pressure, 1.0) * SERVER_TARGET_LOAD, len(self._jobs), full)

    def _read_cpu(self) -> float:
        # Every link asks at about the same moment: one reading a second serves them all
        # (a reading over a few milliseconds is 0 or a whole core).
        now = time.monotonic()
        if now - self._cpu_at >= 1.0:
            self._cpu_at = now
            if self._options.load_mode == "own":
                self._cpu = self._own.cpu()
            elif self._options.load_mode == "cpu":
                self._cpu = machine_cpu()
        return self._cpu

    # -- jobs ---------------------------------------------------------------------------

    async def running(self, job: HostedJob) -> None:
        await self._links[job.agent_name].update_job(job.job.id, agent.JobStatus.JS_RUNNING)
        job.identity = job.room.local_participant.identity
        job.serving = True
        ROOMS.labels(job.agent_name).inc()
        await self.leases.hold(job.room_name, job.agent_name, job.identity)

    async def _run(self, job: HostedJob) -> None:
        status, error = agent.JobStatus.JS_SUCCESS, ""
        logger.info("[%s] %s: job %s starts", job.room_name, job.agent_name, job.job.id)
        try:
            await self._sessions[job.agent_name](job, self._options.hosted)
            if not job.room.isconnected():
                job.shutdown(job.reason or "the session ended without joining")
            await job.ended.wait()
        except asyncio.CancelledError:
            status, error = agent.JobStatus.JS_FAILED, "cancelled: the room host stopped"
            raise
        except Exception as exc:
            # This meeting's bot only: the host and its other rooms carry on.
            logger.exception("[%s] %s failed", job.room_name, job.agent_name)
            status, error = agent.JobStatus.JS_FAILED, repr(exc)
        finally:
            await job.close(self._options.close_timeout_s)
            self._jobs.pop(job.job.id, None)
            if job.serving:
                ROOMS.labels(job.agent_name).dec()
            ended = JOBS_FAILED if status == agent.JobStatus.JS_FAILED else JOBS_FINISHED
            ended.labels(job.agent_name).inc()
            # Left its room: not a death. (A twin's release spares the winner's lease.)
            if job.identity:
                await self.leases.release(job.room_name, job.agent_name, job.identity)
            with contextlib.suppress(Exception):
                await self._links[job.agent_name].update_job(job.job.id, status, error)
            logger.info("[%s] %s: job %s ended (%s)", job.room_name, job.agent_name,
                        job.job.id, job.reason or error or "done")  # fmt: skip

    # -- running the host ---------------------------------------------------------------

    async def run(self, on_ready: Callable[[dict[str, str]], None] | None = None) -> None:
        """Register every agent name and serve jobs until cancelled; ``on_ready`` gets
        ``{agent_name: worker_id}`` once all are registered."""
        self._options.hosted.prepare()
        self.leases.start()
        async with asyncio.TaskGroup() as group:
            for link in self._links.values():
                group.create_task(link.run(), name=f"agent-link:{link.agent_name}")
            await asyncio.gather(*(link.registered.wait() for link in self._links.values()))
            if on_ready is not None:
                on_ready({name: link.worker_id for name, link in self._links.items()})

    async def aclose(self) -> None:
        """Take no more jobs, end every job (its bot leaves its room), stop. Idempotent."""
        self._stopping = True
        for link in self._links.values():
            await link.drain()
        for job in list(self._jobs.values()):
            job.shutdown("the room host is stopping")
        await self._work.settle(self._options.close_timeout_s + 5)
        await self._work.aclose()
        for link in self._links.values():
            await link.aclose()
        await self.leases.aclose()


def serve_host(
    options: HostOptions,
    name: str,
    log_level: str,
    ready: mp.Queue[Ready] | None,
    log_format: LogFormat = "text",
) -> None:
    """A room host process's main (spawned by the worker, or run in the foreground): serve
    until SIGINT/SIGTERM. This module imports only the hosted bots, so neither
    livekit-agents nor OpenCV is loaded into a host."""
    configure_logging(log_level, log_format, name)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_host_main(options, name, ready))


async def _host_main(options: HostOptions, name: str, ready: mp.Queue[Ready] | None) -> None:
    host = RoomHost(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def census() -> None:
        # An operator (or bench/soak.py) asks how many tasks the loop holds: a leak grows them.
        logger.warning("room host %s (pid %d): %d asyncio tasks, %d jobs", name, os.getpid(),
                       len(asyncio.all_tasks()), len(host.jobs))  # fmt: skip

    loop.add_signal_handler(signal.SIGUSR1, census)

    def registered(ids: dict[str, str]) -> None:
        logger.info("room host %s ready: %s", name, ids)
        if ready is not None:
            ready.put((name, ids))

    # Plain tasks, not a TaskGroup: a group cancels its body when a task fails, and the
    # bots must leave their rooms whatever ended the host.
    running = asyncio.create_task(host.run(registered), name=f"room-host:{name}")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await host.aclose()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running  # re-raises what ended it, if it failed
