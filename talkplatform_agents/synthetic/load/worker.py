"""One worker process of a load run (started with spawn: the SDK forbids fork). It runs its
share of the participants in one event loop and reports to the runner over a queue:
``ready``, per-participant progress, every result, then ``done``.

It ignores SIGINT: the runner owns Ctrl-C and tells each worker to stop through its event,
so that every participant still measures, leaves and reports."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from talkplatform_agents.synthetic.load.light import LightMedia, LightPublisher, LightSubscriber
from talkplatform_agents.synthetic.load.members import (
    LoadMember,
    LoadPublisher,
    LoadSubscriber,
    MemberPlan,
)
from talkplatform_agents.synthetic.load.spec import MediaOptions
from talkplatform_agents.synthetic.probes import MarkerLog
from talkplatform_agents.tasks import TaskSet

__all__ = ["WorkerPlan", "worker_main"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    url: str
    members: tuple[MemberPlan, ...]
    media: MediaOptions
    duration_s: float  # after the last planned join
    connect_timeout_s: float
    light: LightMedia | None = None  # pre-encoded media: publishers are light clients
    log_level: str = "WARNING"
    publishers: int = 1  # per room: the simulated speakers take turns among them


def worker_main(plan: WorkerPlan, queue: Queue[Any], go: Event, stop: Event, start_at: Any) -> None:
    """The spawn target. ``start_at`` is a shared double: the run's start (wall time),
    written by the runner before it sets ``go``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=plan.log_level,
        format=f"%(asctime)s w{plan.worker} %(levelname)s %(name)s: %(message)s",
    )
    if plan.log_level != "DEBUG":
        # The SDK warns about handles it drops at exit: noise on the load's console.
        logging.getLogger("livekit").setLevel(logging.ERROR)
    try:
        asyncio.run(_run(plan, queue, go, stop, start_at))
    except BaseException as exc:
        queue.put(("crashed", plan.worker, repr(exc)))
        raise
    finally:
        queue.put(("done", plan.worker))


async def _released(event: Event) -> None:
    await asyncio.to_thread(event.wait)


async def _run(plan: WorkerPlan, queue: Queue[Any], go: Event, stop: Event, start_at: Any) -> None:
    queue.put(("ready", plan.worker))
    await _released(go)
    t0 = float(start_at.value)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    last_join = max((m.start_offset_s for m in plan.members), default=0.0)
    end_at = t0 + last_join + plan.duration_s

    async def watch_stop() -> None:
        await _released(stop)
        loop.call_soon_threadsafe(stopping.set)

    watchers = TaskSet(f"w{plan.worker}")
    watchers.spawn(watch_stop(), "stop-watcher")
    log = MarkerLog()
    try:
        async with asyncio.TaskGroup() as group:
            for member in plan.members:
                group.create_task(_one(plan, member, queue, log, t0, end_at, stopping))
    finally:
        # Cancelling the watcher leaves its thread blocked in ``stop.wait``: setting the
        # event releases it when the run ended on its own.
        stop.set()
        await watchers.aclose()


async def _sleep_until(at: float, stopping: asyncio.Event) -> bool:
    """Wait until wall time ``at``; False when the run is stopped first."""
    try:
        async with asyncio.timeout(max(at - time.time(), 0)):
            await stopping.wait()
    except TimeoutError:
        return True
    return False


async def _one(
    plan: WorkerPlan,
    member_plan: MemberPlan,
    queue: Queue[Any],
    log: MarkerLog,
    t0: float,
    end_at: float,
    stopping: asyncio.Event,
) -> None:
    def first_frame(sub: LoadSubscriber | LightSubscriber) -> None:
        queue.put(
            (
                "first_frame",
                plan.worker,
                sub.plan.room,
                sub.plan.identity,
                sub.result.first_frame_ms,
            )
        )

    member: LoadMember | LightPublisher | LightSubscriber
    url, media, timeout = plan.url, plan.media, plan.connect_timeout_s
    if member_plan.role == "publisher":
        if plan.light is not None:
            member = LightPublisher(
                url, member_plan, media, timeout, log, plan.light, plan.publishers
            )
        else:
            member = LoadPublisher(url, member_plan, media, timeout, log)
    elif member_plan.decode:
        member = LoadSubscriber(url, member_plan, media, timeout, log, first_frame)
    else:
        member = LightSubscriber(url, member_plan, media, timeout, first_frame)
    result = member.result
    result.worker = plan.worker
    if not await _sleep_until(t0 + member_plan.start_offset_s, stopping):
        result.errors.append("not started: the run was stopped first")
        queue.put(("result", plan.worker, result.as_dict()))
        return
    try:
        await member.start()
    except Exception as exc:
        why = str(exc) or repr(exc)  # a bare TimeoutError says nothing by itself
        result.errors.append(f"join failed: {why}")
        queue.put(("failed", plan.worker, member_plan.room, member_plan.identity, why))
        if result.joined:
            await member.stop()  # joined but could not publish: leave cleanly
        queue.put(("result", plan.worker, result.as_dict()))
        return
    queue.put(("joined", plan.worker, member_plan.room, member_plan.identity, result.join_ms))
    try:
        await _sleep_until(end_at, stopping)
    finally:
        await member.stop()
        queue.put(("result", plan.worker, result.as_dict()))
