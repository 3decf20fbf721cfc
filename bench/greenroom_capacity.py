"""Green-room bot cost and capacity, against issue 11's goals: at least 8 concurrent sessions
per core in real time with the camera check on, the echo at most 2 % of a core per session,
the camera analysed at a reduced rate.

    .venv/bin/python bench/greenroom_capacity.py [--sessions 1,2,3,4,6,8,12,16] [--seconds 15]
        [--cost-sessions 2]

Inside a fresh network namespace with the real stack, its worker running the green room
only. Each session is a synthetic user in its own green room publishing a marked tone and a
320x180 camera at 15 fps (one layer); the bot echoes the tone, checks the camera and, when
asked, sends the camera back as a preview. The bot's CPU is its worker's process tree (every
session's job process, /proc via psutil), less the idle tree's rate measured first.

1. Cost, with ``--cost-sessions`` sessions at once, three ways in this run: the camera off
   (users publish audio only: the echo, the level meter and the report); the camera check
   on (the default: no preview); and the preview asked for too. The camera off is the
   baseline: the ratios say what the check and the preview add to it.
2. Capacity, with the camera check on: sessions raised step by step until real time breaks
   (the echo's p95 round trip at 400 ms or more, or under 90 % of the markers echoed).
   Sessions per core is the sessions over the cores the bot's processes used; the summary
   also gives it from the check's CPU per session alone (100 % over it), which holds however
   early this box's own limit comes.

The synthetic users run in this process on the same two cores (their cores are shown), so
the capacity is a floor: on this machine the users and the server run out of CPU first.
"""

from __future__ import annotations

import os

# The users' marker decoders multiply small matrices: OpenBLAS's helper threads would
# spin-wait for each other on a busy 2-core machine and take a core from what is measured
# (here they made one user cost a whole core and the echo's p95 several hundred ms).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import (
    ECHO_AGENT_NAME,
    Credentials,
    Role,
    greenroom_room_name,
    mint_token,
)
from talkplatform_agents.lk import greenroom as proto
from talkplatform_agents.synthetic import (
    AudioProbe,
    ParticipantConfig,
    SyntheticParticipant,
    ToneConfig,
    percentile,
)

P95_LIMIT_MS = 400.0
ECHOED_MIN = 0.9
SESSIONS_PER_CORE_GOAL = 8.0
ECHO_CPU_GOAL_PCT = 2.0
SETTLE_S = 3.0  # after the last session is up: the worker refills its idle processes
CLOSE_S = 5.0  # between steps: the bots leave 3 s after their users


@dataclass(frozen=True)
class Config:
    name: str
    camera: bool
    preview: bool = False


CAMERA_OFF = Config("camera off", camera=False)
CHECK = Config("camera check", camera=True)
PREVIEW = Config("check + preview", camera=True, preview=True)


class TreeCpu:
    """CPU seconds used so far by a process and its descendants (those alive now)."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)

    def processes(self) -> list[psutil.Process]:
        return [self._root, *self._root.children(recursive=True)]

    def total(self) -> float:
        return sum(_cpu(p) for p in self.processes())

    def per_process(self) -> dict[int, float]:
        return {p.pid: _cpu(p) for p in self.processes()}


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


@dataclass
class Session:
    user: SyntheticParticipant
    probe: AudioProbe  # the bot's echo of this user's tone
    tag: int

    @property
    def bot(self) -> str:
        return self.probe.sender


@contextlib.asynccontextmanager
async def _sessions(
    stack: Stack, count: int, config: Config, run: int
) -> AsyncIterator[list[Session]]:
    settings = stack.child_settings
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    users = []
    for i in range(count):
        identity = f"cap{run}-{i}"
        token = mint_token(
            creds, identity=identity, name=identity, room=greenroom_room_name(identity),
            role=Role.PARTICIPANT, ttl=dt.timedelta(minutes=30),
            dispatch_agents=(ECHO_AGENT_NAME,),
        ).jwt  # fmt: skip
        tone = ToneConfig(tag=i % 16)
        users.append(
            SyntheticParticipant(
                ParticipantConfig(
                    url=settings.livekit_url, token=token, tone=tone, publish_video=config.camera
                )
            )
        )
    try:
        for user in users:
            await user.start()
        # A bound for a busy machine spawning a job process per session, not a wait.
        async with asyncio.timeout(60 + 5 * count):
            sessions = [
                Session(user, await user.wait_for_audio_marker(tag=i % 16), i % 16)
                for i, user in enumerate(users)
            ]
            if config.preview:
                for s in sessions:
                    await s.user.rpc(s.bot, proto.RPC_SET_PREVIEW, '{"enabled": true}')
                for s in sessions:
                    await _until(functools.partial(_preview_frames, s))
        await asyncio.sleep(SETTLE_S)
        yield sessions
    finally:
        for user in users:
            await user.stop()


def _preview_frames(session: Session) -> int:
    probes = session.user.video_probes.values()
    return sum(p.frames for p in probes if p.sender == session.bot)


async def _until(predicate: Callable[[], object]) -> None:
    while not predicate():  # noqa: ASYNC110 (SDK state: nothing to await)
        await asyncio.sleep(0.1)


async def _camera_reports(sessions: list[Session]) -> list[dict[str, Any]]:
    cameras = []
    for s in sessions:
        body = json.loads(await s.user.rpc(s.bot, proto.RPC_GET_REPORT, "{}"))
        cameras.append(body["camera"])
    return cameras


@dataclass
class Meter:
    """The worker's tree, this process alone (the users; the stack's processes are its
    children) and the idle baseline."""

    bot: TreeCpu
    users: psutil.Process
    idle_per_s: float = 0.0


async def _step(
    stack: Stack, meter: Meter, count: int, config: Config, seconds: float, run: int
) -> dict[str, Any]:
    async with _sessions(stack, count, config, run) as sessions:
        sent_before = [s.user.marker_log.sent_count for s in sessions]
        echoed_before = [len(s.probe.latencies_ms(tag=s.tag)) for s in sessions]
        bot_before, users_before = meter.bot.total(), _cpu(meter.users)
        started = time.monotonic()
        await asyncio.sleep(seconds)
        bot_cpu, users_cpu = meter.bot.total() - bot_before, _cpu(meter.users) - users_before
        elapsed = time.monotonic() - started
        rtts = [
            rtt
            for s, n in zip(sessions, echoed_before, strict=True)
            for rtt in s.probe.latencies_ms(tag=s.tag)[n:]
        ]
        sent = sum(
            s.user.marker_log.sent_count - b for s, b in zip(sessions, sent_before, strict=True)
        )
        cameras = await _camera_reports(sessions) if config.camera else []
    p95 = percentile(rtts, 95)
    echoed = len(rtts) / sent if sent else 0.0
    bot_cores = bot_cpu / elapsed
    net_per_session = (bot_cpu - meter.idle_per_s * elapsed) / elapsed / count
    row = {
        "config": config.name,
        "sessions": count,
        "bot_cores": round(bot_cores, 3),
        "cpu_pct_per_session": round(100 * net_per_session, 2),
        "sessions_per_core": round(count / bot_cores, 1) if bot_cores > 0 else None,
        "user_cores": round(users_cpu / elapsed, 2),
        "echo_p50_ms": _ms(percentile(rtts, 50)),
        "echo_p95_ms": _ms(p95),
        "echoed": round(echoed, 3),
        "analysed_fps": _mean([c["analysed_fps"] for c in cameras]),
        "camera_fps": _mean([c["fps"] for c in cameras]),
        "camera_size": _sizes(cameras),
        "real_time": bool(p95 is not None and p95 < P95_LIMIT_MS and echoed >= ECHOED_MIN),
    }
    print(row, flush=True)
    await asyncio.sleep(CLOSE_S)
    return row


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def _sizes(cameras: list[dict[str, Any]]) -> str:
    return ",".join(sorted({f"{c['width']}x{c['height']}" for c in cameras})) or "-"


async def _idle(meter: Meter, seconds: float) -> float:
    """The idle tree's rate; returns one idle job process's share of it (cores)."""
    before, total_before = meter.bot.per_process(), meter.bot.total()
    await asyncio.sleep(seconds)
    after = meter.bot.per_process()
    meter.idle_per_s = (meter.bot.total() - total_before) / seconds
    # Job processes are the worker's children that multiprocessing spawned.
    jobs = [
        after[p.pid] - before[p.pid]
        for p in meter.bot.processes()[1:]
        if p.pid in before and p.pid in after and "--multiprocessing-fork" in _cmdline(p)
    ]
    return statistics.fmean(jobs) / seconds if jobs else 0.0


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return ""


async def _measure(stack: Stack, steps: list[int], seconds: float, cost_sessions: int) -> None:
    [worker] = [p for p in stack.processes if p.name == "worker"]
    assert worker.pid is not None
    meter = Meter(TreeCpu(worker.pid), psutil.Process())
    load = os.getloadavg()
    idle_job = await _idle(meter, seconds)
    cost_rows, ramp = [], []
    for run, config in enumerate((CAMERA_OFF, CHECK, PREVIEW)):
        cost_rows.append(await _step(stack, meter, cost_sessions, config, seconds, run))
    cost = {row["config"]: row["cpu_pct_per_session"] for row in cost_rows}
    for run, sessions in enumerate(steps, start=len(cost_rows)):
        row = await _step(stack, meter, sessions, CHECK, seconds, run)
        ramp.append(row)
        if not row["real_time"]:
            break
    best = max((r for r in ramp if r["real_time"]), key=lambda r: r["sessions"], default=None)
    echo_pct = cost[CAMERA_OFF.name]
    check = cost_rows[1]
    report(
        "greenroom_capacity",
        cost_rows + ramp,
        {
            "load_avg_at_start": [round(x, 2) for x in load],
            "idle_bot_cores": round(meter.idle_per_s, 3),
            "idle_job_process_pct": round(100 * idle_job, 2),
            "echo_cpu_pct_per_session": echo_pct,
            "echo_cpu_pct_per_session_less_idle_process": round(echo_pct - 100 * idle_job, 2),
            "echo_goal_pct": ECHO_CPU_GOAL_PCT,
            "camera_check_pct_per_session": round(cost[CHECK.name] - echo_pct, 2),
            "preview_pct_per_session": round(cost[PREVIEW.name] - cost[CHECK.name], 2),
            "check_over_camera_off": _ratio(cost[CHECK.name], echo_pct),
            "preview_over_check": _ratio(cost[PREVIEW.name], cost[CHECK.name]),
            "camera_analysed_fps": check["analysed_fps"],
            "camera_received_fps": check["camera_fps"],
            "sessions_per_core_from_cpu": _ratio(100.0, cost[CHECK.name]),
            "max_real_time_sessions": best["sessions"] if best else 0,
            "sessions_per_core_at_max": best["sessions_per_core"] if best else None,
            "sessions_per_core_goal": SESSIONS_PER_CORE_GOAL,
            "limit": f"p95 < {P95_LIMIT_MS:.0f} ms and >= {ECHOED_MIN:.0%} echoed",
        },
    )


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1,2,3,4,6,8,12,16")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--cost-sessions", type=int, default=2)
    args = parser.parse_args()
    steps = [int(n) for n in args.sessions.split(",")]
    if not steps or min(steps) < 1 or args.cost_sessions < 1 or args.seconds <= 0:
        parser.error("sessions and --cost-sessions must be positive, --seconds above 0")
    run_in_local_stack(
        lambda stack: _measure(stack, steps, args.seconds, args.cost_sessions),
        agents=(ECHO_AGENT_NAME,),
        # Every session is a job process; the bench wants them all, however busy the box.
        WORKER_MAX_JOBS=64,
        WORKER_LOAD_THRESHOLD="inf",
    )


if __name__ == "__main__":
    main()
