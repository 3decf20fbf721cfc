"""``talkplatform-agents up`` as a user runs it: in its own namespace, demo, clean stop."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'up.db'}"
    return env


def _up(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "talkplatform_agents", "up", "--netns"]
    argv += ["--run-dir", str(tmp_path / "run"), *args]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until_ready(up: subprocess.Popen[str], timeout_s: float) -> list[str]:
    """Lines up to 'ready'; a reader thread, so a silent process cannot hang the test."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert up.stdout is not None
        for line in up.stdout:
            lines.put(line)
            if line.strip() == "ready":
                break
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.strip() == "ready":
            break
    return seen


def _interrupt(up: subprocess.Popen[str]) -> None:
    """Whatever the test did, `up` ends: SIGINT (it cleans up), then SIGKILL."""
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)


def _leftovers(tmp_path: Path, pid: int) -> str:
    namespaces = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    mine = [line for line in namespaces.splitlines() if line.startswith(f"tpa-{pid}")]
    procs = subprocess.run(
        ["pgrep", "-af", str(tmp_path / "run")], capture_output=True, text=True, check=False
    ).stdout
    return "\n".join(mine) + procs


def test_up_runs_the_echo_demo_and_cleans_up(tmp_path: Path) -> None:
    up = _up(tmp_path, "--demo", "--exit-after-demo")
    try:
        output, _ = up.communicate(timeout=240)
    finally:
        _interrupt(up)
    assert up.returncode == 0, output
    assert "ready" in output
    assert "echo round trip p50" in output
    assert "markers sent / echoed" in output
    assert _leftovers(tmp_path, up.pid) == ""


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    up = _up(tmp_path)
    try:
        seen = _read_until_ready(up, timeout_s=180)
        assert any(line.strip() == "ready" for line in seen), "".join(seen)
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
    finally:
        _interrupt(up)
    assert up.returncode == 0, "".join(seen) + rest
    assert _leftovers(tmp_path, up.pid) == ""
