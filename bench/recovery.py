"""How long a meeting is without its chat bot after the bot's process is killed.

Each trial SIGKILLs the room host whose chat bot serves a meeting (found by its lease in the
store), and times the kill to the moment the meeting's participant sees a new chat bot
settled (joined and marked active). Two modes, each on a stack of its own, in one run:

- ``leases``: the service's lease sweep (``service/sweeper.py``) and the worker's
  supervisor ending a dead host's leases, as shipped;
- ``webhook`` (the baseline, what main did): no lease sweep (``BOT_SWEEP_S`` an hour), so
  the bot comes back once livekit-server drops the dead bot and its ``participant_left``
  webhook reaches the reconciler.

    .venv/bin/python bench/recovery.py [--trials 5] [--baseline-trials 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from livekit import rtc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk.naming import (
    ACTIVE_ATTRIBUTE,
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    meeting_room_name,
)
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import Database
from talkplatform_agents.store.leases import BotLeaseRepository


def _chat_bot(room: rtc.Room) -> str | None:
    bots = [
        p
        for p in room.remote_participants.values()
        if p.attributes.get(AGENT_NAME_ATTRIBUTE) == CHAT_AGENT_NAME
    ]
    if len(bots) == 1 and bots[0].attributes.get(ACTIVE_ATTRIBUTE) == "1":
        return bots[0].identity
    return None


async def _until(probe: Any, timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := await probe()):  # noqa: ASYNC110 (polls SDK state)
            await asyncio.sleep(0.05)
    return value


async def _trials(stack: Stack, trials: int, times: list[float]) -> None:
    settings = stack.child_settings
    secret = settings.app_jwt_secret.get_secret_value()
    auth = {"Authorization": f"Bearer {mint_app_token(secret, 'bench-host', 'Host', 3600)}"}
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30) as http:
        created = await http.post(
            "/api/v1/meetings", json={"title": "recovery", "settings": {}}, headers=auth
        )
        meeting_id = created.json()["id"]
        grant = (
            await http.post("/api/v1/livekit/token", json={"meetingId": meeting_id}, headers=auth)
        ).json()
    room = rtc.Room()
    await room.connect(grant["wsUrl"], grant["token"])
    db = Database(settings.database_url)
    leases = BotLeaseRepository(db)
    try:

        async def settled() -> str | None:
            return _chat_bot(room)

        async def holder() -> int | None:
            held = [x for x in await leases.of_room(meeting_room_name(meeting_id))
                    if x.agent_name == CHAT_AGENT_NAME and x.identity]  # fmt: skip
            return int(held[0].holder.split("/")[1]) if held else None

        for trial in range(trials):
            old = await _until(settled, 120)
            pid = await _until(holder, 60)
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)

            async def replaced(old: str = old) -> str | None:
                bot = _chat_bot(room)
                return bot if bot and bot != old else None

            await _until(replaced, 120)
            times.append(time.monotonic() - killed)
            print(f"trial {trial + 1}: {times[-1]:.2f} s", flush=True)
            # The killed host is started again by the worker: wait for it to register
            # before the next kill, so each trial has a host to go to.
            await asyncio.sleep(5)  # a bench: spacing between trials, not a test wait
    finally:
        await room.disconnect()
        await db.aclose()


def _measure(mode: str, trials: int) -> list[float]:
    times: list[float] = []

    async def body(stack: Stack) -> None:
        await _trials(stack, trials, times)

    extra = {"BOT_SWEEP_S": 3600.0} if mode == "webhook" else {}
    run_in_local_stack(body, **extra)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--baseline-trials", type=int, default=2)
    parser.add_argument("--one", choices=("leases", "webhook"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        # One mode, in a process of its own: the SDK's threads stay in the namespace of
        # the first stack a process enters.
        print("RESULT " + json.dumps(_measure(args.one, args.trials)), flush=True)
        return
    rows = []
    results: dict[str, list[float]] = {}
    for mode, trials in (("leases", args.trials), ("webhook", args.baseline_trials)):
        run = subprocess.run(
            [sys.executable, __file__, "--one", mode, "--trials", str(trials)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        [line] = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")]
        results[mode] = times = json.loads(line.removeprefix("RESULT "))
        rows.append({
            "mode": mode,
            "trials": len(times),
            "median s": statistics.median(times),
            "min s": min(times),
            "max s": max(times),
        })  # fmt: skip
    ratio = statistics.median(results["leases"]) / statistics.median(results["webhook"])
    report("recovery", rows, {"leases / webhook (median)": round(ratio, 3)})


if __name__ == "__main__":
    main()
