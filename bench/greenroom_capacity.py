"""Green-room bot cost and capacity: CPU seconds per session-minute, and how many concurrent
green rooms this machine holds while the echo stays real time.

    .venv/bin/python bench/greenroom_capacity.py [--sessions 1,2,4,6] [--seconds 15]

Inside a fresh network namespace with the real stack. Each session is a synthetic user in
its own green room publishing a marked tone and a 320x180 camera at 15 fps; the bot echoes
both. The worker's CPU (its process tree) is measured over the same window with no session
first: that idle figure is the baseline subtracted from each step. Real time means: the
echo's p95 round trip under 400 ms and at least 90 % of the markers sent echoed. The
synthetic users run in this process on the same two cores, so the capacity is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

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
from talkplatform_agents.synthetic import (
    ParticipantConfig,
    SyntheticParticipant,
    ToneConfig,
    percentile,
)

ROOT = Path(__file__).resolve().parents[1]
P95_LIMIT_MS = 400.0
ECHOED_MIN = 0.9


def _worker_cpu(stack: Stack) -> float:
    [worker] = [p for p in stack.processes if p.name == "worker"]
    assert worker.pid is not None
    root = psutil.Process(worker.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def _step(stack: Stack, sessions: int, seconds: float, run: int) -> dict[str, object]:
    settings = stack.child_settings
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    users = []
    for i in range(sessions):
        identity = f"cap{run}-{i}"
        token = mint_token(
            creds, identity=identity, name=identity, room=greenroom_room_name(identity),
            role=Role.PARTICIPANT, ttl=dt.timedelta(minutes=30),
            dispatch_agents=(ECHO_AGENT_NAME,),
        ).jwt  # fmt: skip
        users.append(
            SyntheticParticipant(
                ParticipantConfig(
                    url=settings.livekit_url, token=token, tone=ToneConfig(tag=i % 16)
                )
            )
        )
    try:
        for user in users:
            await user.start()
        async with asyncio.timeout(60):
            probes = [await u.wait_for_audio_marker(tag=i % 16) for i, u in enumerate(users)]
        sent_before = [u.marker_log.sent_count for u in users]
        echoed_before = [len(p.latencies_ms()) for p in probes]
        cpu_before, started = _worker_cpu(stack), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = _worker_cpu(stack) - cpu_before
        elapsed = time.monotonic() - started
        rtts = [
            rtt for p, n in zip(probes, echoed_before, strict=True) for rtt in p.latencies_ms()[n:]
        ]
        sent = sum(u.marker_log.sent_count - s for u, s in zip(users, sent_before, strict=True))
    finally:
        for user in users:
            await user.stop()
    p95 = percentile(rtts, 95)
    echoed = len(rtts) / sent if sent else 0.0
    return {
        "sessions": sessions,
        "worker_cpu_s": round(cpu, 2),
        "seconds": round(elapsed, 1),
        "echo_p50_ms": percentile(rtts, 50),
        "echo_p95_ms": p95,
        "echoed": round(echoed, 3),
        "real_time": bool(p95 is not None and p95 < P95_LIMIT_MS and echoed >= ECHOED_MIN),
    }


async def _measure(stack: Stack, steps: list[int], seconds: float) -> None:
    cpu_before = _worker_cpu(stack)
    await asyncio.sleep(seconds)
    idle_per_s = (_worker_cpu(stack) - cpu_before) / seconds
    rows = []
    for run, sessions in enumerate(steps):
        row = await _step(stack, sessions, seconds, run)
        busy = float(row["worker_cpu_s"]) - idle_per_s * float(row["seconds"])  # type: ignore[arg-type]
        minutes = sessions * float(row["seconds"]) / 60  # type: ignore[arg-type]
        row["cpu_s_per_session_min"] = round(busy / minutes, 2)
        rows.append(row)
        print(row, flush=True)
        if not row["real_time"]:
            break
        await asyncio.sleep(5)  # let the rooms close before the next step
    held = [r["sessions"] for r in rows if r["real_time"]]
    report(
        "greenroom_capacity",
        rows,
        {
            "idle_worker_cpu_per_s": round(idle_per_s, 3),
            "max_real_time_sessions": max(held, default=0),  # type: ignore[type-var]
            "limit": f"p95 < {P95_LIMIT_MS:.0f} ms and >= {ECHOED_MIN:.0%} echoed",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1,2,4,6")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    steps = [int(n) for n in args.sessions.split(",")]
    run_in_local_stack(lambda stack: _measure(stack, steps, args.seconds), WORKER_MAX_JOBS=64)


if __name__ == "__main__":
    main()
