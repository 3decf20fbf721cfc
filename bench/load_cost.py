"""What load injection costs against what it loads: the injector's CPU over livekit-server's
CPU for the same run, both read from /proc in the same window.

    .venv/bin/python bench/load_cost.py [--hold 40] [--big 50] [--density-subs 100]
        [--density-pubs 30] [--density-hold 60] [--no-density]

Inside a fresh network namespace with the real livekit-server, ``talkplatform-agents load``
runs as a process of its own (its workers are its children) in these shapes, one after the
other, each held ``--hold`` seconds after the last join:

1. baseline, today's behaviour before light clients: 2 SDK publishers encoding a 720p30
   VP8 camera live with simulcast, 4 subscribers that all decode (``--decode all``);
2. 2 pre-encoded simulcast publishers (720p/360p/180p) and no subscriber: CPU per
   publisher-minute;
3. the same 2 publishers and 4 subscribers, light (the default), and with one of them
   decoding (``--decode sample``);
4. the same 2 publishers and ``--big`` light subscribers (default 50);
5. density: 2 publishers and ``--density-subs`` light subscribers, and ``--density-pubs``
   pre-encoded simulcast publishers (rooms of 15) with one light subscriber each, held
   ``--density-hold`` seconds: subscribers and publishers per injector core, errors, loss.

A process tree's CPU is sampled every 0.5 s (a worker's CPU is kept after it exits); the
window starts 2 s after the last join and ends 2 s before the run does. CPU per
subscriber-minute is the run's injector CPU less the publishers-only run's, per subscriber.
Start-up CPU (imports, clips) is reported apart: the injector's CPU before the window, and
the clip preparation of a first and a second run (the clip cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, report, run_in_local_stack

from talkplatform_agents.harness import Stack

_JOINED = re.compile(r"joined (\d+)/(\d+)")


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


@dataclass
class TreeCpu:
    """A process and its descendants' CPU seconds, sampled; exited ones keep their last."""

    root: psutil.Process
    seen: dict[int, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def sample(self) -> float:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        rss = 0.0
        for proc in procs:
            try:
                self.seen[proc.pid] = _cpu(proc)
                rss += proc.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                continue
        self.peak_rss_mb = max(self.peak_rss_mb, rss)
        return sum(self.seen.values())


@dataclass(frozen=True)
class Shape:
    label: str
    publishers: int
    subscribers: int
    args: tuple[str, ...]
    rooms: int = 1
    hold_s: float = 40.0


def _run(stack: Stack, shape: Shape, cache: Path) -> dict[str, Any]:
    settings = stack.child_settings
    server = psutil.Process(stack.process("livekit-server").pid)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        argv = [
            str(ROOT / ".venv" / "bin" / "talkplatform-agents"),
            "load",
            "--url",
            settings.livekit_url,
            "--api-key",
            settings.livekit_api_key,
            "--api-secret",
            settings.livekit_api_secret.get_secret_value(),
            "--rooms",
            str(shape.rooms),
            "--publishers",
            str(shape.publishers),
            "--subscribers",
            str(shape.subscribers),
            "--duration",
            f"{shape.hold_s}s",
            "--ramp",
            "20/s",
            "--no-switch-layers",
            "--no-progress",
            "--clip-cache",
            str(cache),
            "--report",
            str(out),
            *shape.args,
        ]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        tree = TreeCpu(psutil.Process(proc.pid))
        window: dict[str, float] = {}
        all_joined = threading.Event()

        def read_progress() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                match = _JOINED.search(line)
                if match and match.group(1) == match.group(2) and int(match.group(2)) > 0:
                    all_joined.set()

        reader = threading.Thread(target=read_progress, daemon=True)
        reader.start()
        while proc.poll() is None and not all_joined.is_set():
            tree.sample()
            time.sleep(0.5)
        joined_at = time.monotonic()
        ends_at = joined_at + shape.hold_s - 2
        time.sleep(2)
        window["tool0"], window["server0"], window["t0"] = tree.sample(), _cpu(server), time.time()
        startup = window["tool0"]
        while proc.poll() is None and time.monotonic() < ends_at:
            tree.sample()
            time.sleep(0.5)
        window["tool1"], window["server1"], window["t1"] = tree.sample(), _cpu(server), time.time()
        while proc.poll() is None:
            tree.sample()
            time.sleep(0.5)
        reader.join(timeout=5)
        data = json.loads(out.read_text()) if out.exists() else {"total": {}, "errors": []}
    seconds = max(window["t1"] - window["t0"], 1e-3)  # a run that ended early: no window
    tool = window["tool1"] - window["tool0"]
    srv = window["server1"] - window["server0"]
    total = data.get("total", {})
    return {
        "shape": shape.label,
        "pubs": shape.publishers * shape.rooms,
        "subs": shape.subscribers * shape.rooms,
        "tool_cores": round(tool / seconds, 3),
        "server_cores": round(srv / seconds, 3),
        "tool_over_server": round(tool / srv, 2) if srv > 0 else None,
        "startup_cpu_s": round(startup, 1),
        "peak_rss_mb": round(tree.peak_rss_mb),
        "window_s": round(seconds, 1),
        "join_p95_ms": total.get("join_p95_ms"),
        "first_frame_p95_ms": total.get("first_frame_p95_ms"),
        "kbps_per_sub": total.get("bitrate_kbps"),
        "loss_pct": total.get("loss_pct"),
        "freezes": total.get("freezes"),
        "tracks": f"{total.get('tracks_received', '-')}/{total.get('tracks_expected', '-')}",
        "errors": total.get("errors", len(data.get("errors", []))),
        "wall_s": round(time.monotonic() - started, 1),
    }


def _clip_cpu(cache: Path) -> float:
    """CPU seconds to have the default clips (720p simulcast VP8 and a tone) in a fresh
    process: encoding them when ``cache`` is empty, reading them when it is filled."""
    code = (
        "import time, pathlib, resource\n"
        "from talkplatform_agents.synthetic.load.runner import light_media\n"
        "from talkplatform_agents.synthetic.load.spec import LoadSpec, MediaOptions\n"
        "t = time.process_time()\n"
        f"media = MediaOptions(pre_encoded=True, clip_cache=pathlib.Path({str(cache)!r}))\n"
        "light_media(LoadSpec(url='ws://x', publishers=2, media=media))\n"
        "print(time.process_time() - t)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hold", type=float, default=40, help="seconds each shape holds")
    parser.add_argument("--big", type=int, default=50, help="subscribers of the big shape")
    parser.add_argument("--density-subs", type=int, default=100)
    parser.add_argument("--density-pubs", type=int, default=30)
    parser.add_argument("--density-hold", type=float, default=60)
    parser.add_argument("--no-density", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "clips"
        summary["clip_cpu_s_first_run"] = round(_clip_cpu(cache), 2)
        summary["clip_cpu_s_second_run"] = round(_clip_cpu(cache), 2)
        pre = ("--pre-encoded",)
        hold = args.hold
        shapes = [
            Shape("baseline: live simulcast, all decode", 2, 4, ("--decode", "all"), hold_s=hold),
            Shape("pre-encoded publishers only", 2, 0, pre, hold_s=hold),
            Shape("2x4 light (the default)", 2, 4, pre, hold_s=hold),
            Shape(
                "2x4, one decodes (--decode sample)",
                2,
                4,
                (*pre, "--decode", "sample"),
                hold_s=hold,
            ),
            Shape(f"2x{args.big} light (the default)", 2, args.big, pre, hold_s=hold),
        ]
        if not args.no_density:
            dh = args.density_hold
            rooms = max(args.density_pubs // 15, 1)
            shapes += [
                Shape(
                    f"density: 2x{args.density_subs} light", 2, args.density_subs, pre, hold_s=dh
                ),
                Shape(f"density: {rooms}x15 publishers", 15, 1, pre, rooms=rooms, hold_s=dh),
            ]

        async def body(stack: Stack) -> None:
            for shape in shapes:
                row = await asyncio.to_thread(_run, stack, shape, cache)
                print(json.dumps(row), flush=True)
                rows.append(row)

        run_in_local_stack(body, agents=())

    by = {row["shape"]: row for row in rows}
    base = by["baseline: live simulcast, all decode"]
    pubs_only = by["pre-encoded publishers only"]
    pub_min = pubs_only["tool_cores"] * 60 / 2
    summary["cpu_s_per_publisher_min"] = round(pub_min, 2)
    for row in rows[2:]:
        if row["subs"] and not row["shape"].startswith("density"):
            per_sub = (row["tool_cores"] - pubs_only["tool_cores"]) * 60 / row["subs"]
            summary[f"cpu_s_per_subscriber_min [{row['shape']}]"] = round(per_sub, 2)
    summary["baseline tool/server"] = base["tool_over_server"]
    for row in rows[2:5]:
        summary[f"{row['shape']} tool/server"] = row["tool_over_server"]
        if base["tool_over_server"] and row["tool_over_server"]:
            summary[f"{row['shape']} vs baseline (tool/server ratio)"] = round(
                row["tool_over_server"] / base["tool_over_server"], 3
            )
    for row in rows:
        if row["shape"].startswith("density") and row["tool_cores"]:
            subs = "light" in row["shape"]
            count = row["subs"] if subs else row["pubs"]
            what = "subscribers" if subs else "publishers"
            summary[f"{what} per injector core"] = round(count / row["tool_cores"], 1)
            summary[f"{what} held with 0 errors"] = row["errors"] == 0
    report("load_cost", rows, summary, width=240)


if __name__ == "__main__":
    main()
