"""What load this machine can inject, and what one publisher costs.

    .venv/bin/python bench/load_cost.py [--seconds 30] [--publishers 2] [--hold 60]

Inside a fresh network namespace with the real livekit-server:

1. CPU seconds per publisher-minute of a 720p30 VP8 camera, encoded live with simulcast
   (three layers) against the same pattern pre-encoded once with PyAV and sent through
   ``rtc.EncodedVideoSource`` (one layer): both measured in the same run, as a ratio. Each
   side runs in its own spawned process whose CPU time (all threads) is read after every
   publisher has joined, so start-up and the clip's encoding are not counted.
2. The largest load that holds 0 errors and < 1% packet loss for ``--hold`` seconds: rooms
   of 2 pre-encoded 640x360 publishers (with the marked tone) and a growing number of
   subscribers, doubling until a step fails (a short search: at most 4 steps).
3. ``lk load-test`` on the same load, when an ``lk`` binary is in bin/ (it is not: the Go
   module proxy refuses github.com/livekit/livekit-cli; the reason is recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.synthetic.encoded import encode_pattern_clip
from talkplatform_agents.synthetic.load import LoadSpec, MediaOptions, run_load
from talkplatform_agents.synthetic.load.members import LoadPublisher, MemberPlan
from talkplatform_agents.synthetic.probes import MarkerLog

LK_BUILD_FAILURE = (
    "go install github.com/livekit/livekit-cli/v2/cmd/lk@v2.12.0 (also v2.5.0, v2.4.5, v2.0.0, "
    "v1.4.0 of the v1 path): the Go module proxy answers 403 'This module version is not "
    "available' for every version and for the version list"
)


def _publisher_cpu(
    url: str, tokens: list[str], media: MediaOptions, seconds: float, out: Any
) -> None:
    """Spawned: run the publishers; put the CPU seconds they used over ``seconds``."""

    async def body() -> float:
        clip = None
        if media.pre_encoded:
            clip = encode_pattern_clip(media.codec.value, media.width, media.height, media.fps)
        log = MarkerLog()
        pubs = [
            LoadPublisher(url, MemberPlan(f"p{i}", "", "publisher", t, 0.0), media, 15, log, clip)
            for i, t in enumerate(tokens)
        ]
        for pub in pubs:
            await pub.start()
        try:
            await asyncio.sleep(3)  # past the encoder's start-up
            before = time.process_time()
            await asyncio.sleep(seconds)
            return time.process_time() - before
        finally:
            for pub in pubs:
                await pub.stop()

    out.put(asyncio.run(body()))


def _measure_cpu(
    stack: Stack, label: str, media: MediaOptions, count: int, seconds: float
) -> float:
    settings = stack.child_settings
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    room = f"bench-cpu-{label}-{int(time.time())}"
    tokens = [
        mint_token(
            creds,
            identity=f"{room}-p{i}",
            name="p",
            room=room,
            role=Role.PARTICIPANT,
            ttl=dt.timedelta(hours=1),
        ).jwt
        for i in range(count)
    ]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(
        target=_publisher_cpu, args=(settings.livekit_url, tokens, media, seconds, out)
    )
    proc.start()
    cpu = float(out.get(timeout=seconds + 180))
    proc.join(timeout=30)
    return cpu / (count * seconds / 60)


def _hold(stack: Stack, subscribers: int, hold_s: float) -> dict[str, Any]:
    settings = stack.child_settings
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    spec = LoadSpec(
        url=settings.livekit_url,
        rooms=1,
        publishers=2,
        subscribers=subscribers,
        duration_s=hold_s,
        ramp_per_s=5,
        media=MediaOptions(
            simulcast=False,
            pre_encoded=True,
            width=640,
            height=360,
            fps=20,
            max_bitrate=800_000,
            switch_layers=False,
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_load(spec, creds, Path(tmp) / "report.json")
    total = outcome.report["total"]
    ok = total["errors"] == 0 and total["loss_pct"] is not None and total["loss_pct"] < 1
    return {
        "participants": total["participants"],
        "publishers": 2,
        "subscribers": subscribers,
        "video_tracks_received": 2 * subscribers,
        "errors": total["errors"],
        "loss_pct": total["loss_pct"],
        "join_p95_ms": total["join_p95_ms"],
        "first_frame_p95_ms": total["first_frame_p95_ms"],
        "latency_p95_ms": total["latency_p95_ms"],
        "fps": total["fps"],
        "freezes": total["freezes"],
        "held": ok,
    }


async def _nothing() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="CPU measurement window")
    parser.add_argument("--publishers", type=int, default=2, help="publishers per CPU run")
    parser.add_argument("--hold", type=float, default=60, help="seconds each load must hold")
    parser.add_argument("--max-steps", type=int, default=4, help="load steps to try")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}

    def body(stack: Stack) -> None:
        camera = {"width": 1280, "height": 720, "fps": 30, "audio": False}
        simulcast = _measure_cpu(
            stack,
            "simulcast",
            MediaOptions(simulcast=True, **camera),
            args.publishers,
            args.seconds,
        )
        pre = _measure_cpu(
            stack,
            "pre",
            MediaOptions(simulcast=False, pre_encoded=True, **camera),
            args.publishers,
            args.seconds,
        )
        summary["cpu_s_per_publisher_min_simulcast_720p"] = round(simulcast, 2)
        summary["cpu_s_per_publisher_min_pre_encoded_720p"] = round(pre, 2)
        summary["simulcast_over_pre_encoded"] = round(simulcast / pre, 1) if pre else None
        largest: dict[str, Any] | None = None
        subscribers = 2
        for _ in range(args.max_steps):
            row = _hold(stack, subscribers, args.hold)
            rows.append(row)
            if not row["held"]:
                break
            largest = row
            subscribers *= 2
        summary["largest_load_held"] = (
            None
            if largest is None
            else f"1 room, 2 pre-encoded 640x360 publishers, {largest['subscribers']} subscribers"
        )
        summary["hold_s"] = args.hold
        lk = ROOT / "bin" / "lk"
        summary["lk_load_test"] = (
            "lk found but not run by this version of the benchmark"
            if lk.exists() or shutil.which("lk")
            else f"not available: {LK_BUILD_FAILURE}"
        )

    def run(stack: Stack) -> Any:
        # run_load starts its own event loops: do the work before the harness's loop runs.
        body(stack)
        return _nothing()

    run_in_local_stack(run)
    report("load_cost", rows, summary)


if __name__ == "__main__":
    main()
