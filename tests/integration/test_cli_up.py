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
from livekit import api

from talkplatform_agents.cli.up import APP_JWT_FILE, PARTICIPANT_TOKEN_FILE
from talkplatform_agents.lk import ECHO_AGENT_NAME, greenroom_room_name
from talkplatform_agents.service import AppTokenVerifier

ROOT = Path(__file__).resolve().parents[2]
# The stack's own keys, so that the test can check what `up` signs with them.
API_KEY, API_SECRET = "up-test-key", "up-test-secret-0123456789abcdef0123"
APP_SECRET = "up-test-app-secret-0123456789abcdef"

pytestmark = pytest.mark.integration


def _env(tmp_path: Path) -> dict[str, str]:
    prefixes = ("LIVEKIT_", "DATABASE_", "APP_JWT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'up.db'}"
    env.update(LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=API_SECRET, APP_JWT_SECRET=APP_SECRET)
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


def _read_until(up: subprocess.Popen[str], last: str, timeout_s: float) -> list[str]:
    """Lines up to the one that reads ``last``; a reader thread, so that a silent process
    cannot hang the test."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert up.stdout is not None
        for line in up.stdout:
            lines.put(line)
            if line.strip() == last:
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
        if line.strip() == last:
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


def _check_tokens(run_dir: Path, printed: list[str]) -> None:
    """Each token is in its file, printed whole on a line of its own, and valid."""
    lines = {line.strip() for line in printed}
    participant = (run_dir / PARTICIPANT_TOKEN_FILE).read_text().strip()
    app_jwt = (run_dir / APP_JWT_FILE).read_text().strip()
    assert participant in lines and app_jwt in lines, "".join(printed)
    text = "".join(printed)
    assert PARTICIPANT_TOKEN_FILE in text and APP_JWT_FILE in text  # the table names them
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(participant)
    assert claims.identity == "guest"
    assert claims.video is not None and claims.video.room_join
    assert claims.video.room == greenroom_room_name("guest")
    assert claims.room_config is not None
    assert [a.agent_name for a in claims.room_config.agents] == [ECHO_AGENT_NAME]
    assert AppTokenVerifier(APP_SECRET).verify(app_jwt).user_id == "guest"
    for path in (run_dir / PARTICIPANT_TOKEN_FILE, run_dir / APP_JWT_FILE):
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)  # a credential


def test_up_runs_the_demo_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """One stack for both (a start is the costly part): ready with its tokens, the echo
    demo's figures, then Ctrl-C, after which nothing of it is left."""
    up = _up(tmp_path, "--demo")
    try:
        seen = _read_until(up, "running; Ctrl-C stops everything", timeout_s=240)
        text = "".join(seen)
        assert any(line.strip() == "ready" for line in seen), text
        _check_tokens(tmp_path / "run", seen)
        assert "echo round trip p50" in text and "markers sent / echoed" in text, text
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
    finally:
        _interrupt(up)
    assert up.returncode == 0, "".join(seen) + rest
    assert _leftovers(tmp_path, up.pid) == ""
