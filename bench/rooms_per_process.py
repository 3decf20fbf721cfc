"""What idle ``rtc.Room`` connections cost when one process holds many: the SDK's own CPU
and memory per room at each count, against one room alone (the baseline), in one run.

    .venv/bin/python bench/rooms_per_process.py [--counts 1,10,20,40] [--seconds 15]

This is the floor under any bot runtime that puts many rooms in one process
(bots/room_host.py), and why a room host's capacity is bounded: the SDK's idle CPU per room
grows with the number of rooms in the process. Each count runs in a fresh child process
(inside the namespace, beside a real livekit-server) that joins that many rooms, each alone,
subscribing to nothing, then idles; this process reads the child's CPU and PSS from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.harness import Stack

_CHILD = """
import asyncio, sys
from livekit import api, rtc

async def main(url, key, secret, count):
    rooms = []
    for i in range(count):
        token = (api.AccessToken(key, secret).with_identity(f"bot-{i}").with_kind("agent")
                 .with_grants(api.VideoGrants(room_join=True, room=f"floor-{i}", agent=True))
                 .to_jwt())
        room = rtc.Room()
        await room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
        rooms.append(room)
    print("joined", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _one(stack: Stack, count: int, seconds: float) -> dict[str, float]:
    settings = stack.child_settings
    secret = settings.livekit_api_secret.get_secret_value()
    argv = [sys.executable, "-c", _CHILD, settings.livekit_url, settings.livekit_api_key,
            secret, str(count)]  # fmt: skip
    child = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 120)
        if line.strip() != b"joined":
            raise SystemExit(f"the child did not join its {count} rooms")
        process = psutil.Process(child.pid)
        await asyncio.sleep(3)  # the joins' own work settles
        cpu0, t0 = _cpu_s(process), time.monotonic()
        await asyncio.sleep(seconds)
        cores = (_cpu_s(process) - cpu0) / (time.monotonic() - t0)
        pss_mb = process.memory_full_info().pss / 2**20
    finally:
        child.kill()
        await child.wait()
    return {
        "rooms": count,
        "idle_cpu_ms_per_s": cores * 1000,
        "cpu_ms_per_s_per_room": cores * 1000 / count,
        "pss_mb": pss_mb,
    }


async def _measure(stack: Stack, counts: list[int], seconds: float) -> None:
    rows = [await _one(stack, count, seconds) for count in counts]
    base = rows[0]
    for row in rows:
        row["per_room_over_one"] = row["cpu_ms_per_s_per_room"] / max(
            base["cpu_ms_per_s_per_room"], 1e-9
        )
        extra = row["rooms"] - base["rooms"]
        row["mb_per_extra_room"] = (row["pss_mb"] - base["pss_mb"]) / extra if extra else 0.0
    report("rooms_per_process", rows, {"seconds": seconds, "baseline_rooms": base["rooms"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,20,40")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",") if n]
    run_in_local_stack(lambda stack: _measure(stack, counts, args.seconds), agents=())


if __name__ == "__main__":
    main()
