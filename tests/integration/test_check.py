"""The preflight against the real stack: every step, and each failure with its cause."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import Credentials, Role, greenroom_room_name, mint_token

from .conftest import APP_SECRET, ROOT

pytestmark = pytest.mark.integration

STEPS = [
    "api",
    "handshake",
    "websocket",
    "ice",
    "resume",
    "publish",
    "echo",
    "report",
    "throughput",
    "network",
    "tcp",
    "turn",
]
FIGURES = ("rtt_ms", "jitter_ms", "loss_pct", "bitrate_kbps")


def _user() -> str:
    return f"pre-{uuid.uuid4().hex[:6]}"


def _assert_quality_figures(steps: dict[str, dict[str, Any]]) -> None:
    """ICE and DTLS timings, the throughput verdict, and min/avg/max, as ``--json`` has them."""
    handshake = steps["handshake"]["data"]
    for stage in ("ice_gathering_ms", "ice_connectivity_ms", "dtls_handshake_ms", "signal_ms"):
        assert handshake[stage] is not None and handshake[stage] >= 0, handshake
    assert handshake["local_candidates"] >= 1 and handshake["remote_candidates"] >= 1
    assert steps["ice"]["data"]["dtls_state"] == "connected"
    assert steps["ice"]["data"]["srtp_cipher"]
    throughput = steps["throughput"]["data"]
    assert throughput["verdict"] in ("good", "non_optimal")
    assert throughput["video"]["kbps"] > 60 and throughput["video"]["packets_sent"] > 0
    assert throughput["audio"]["verdict"] == "good"  # a clean path carries Opus untouched
    network = steps["network"]["data"]
    for figure in FIGURES:
        spread = network[figure]
        assert spread["samples"] >= 2, network
        assert spread["min"] <= spread["avg"] <= spread["max"], network
    report = steps["report"]["data"]["network_summary"]
    assert report["rtt_ms"]["samples"] >= 1
    assert report["rtt_ms"]["min"] <= report["rtt_ms"]["avg"] <= report["rtt_ms"]["max"]


@pytest.fixture
def turn_stopped(stack: Stack) -> Iterator[None]:
    stack.stop_process("coturn")
    try:
        yield
    finally:
        stack.start_turn()


def _cli(*args: str, timeout_s: float = 180) -> tuple[int, dict[str, Any], str]:
    """The check as a user runs it, in a process of its own (its own session, too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "APP_"))}
    env["APP_JWT_SECRET"] = APP_SECRET
    done = subprocess.run(
        [sys.executable, "-m", "talkplatform_agents", "check", "--json", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
        start_new_session=True,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return done.returncode, json.loads(done.stdout), output


def _steps(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in body["steps"]}


def test_cli_check_passes_with_json(live_settings: Settings) -> None:
    # One full preflight, as a user runs it: the CLI runs the same run_check, and --json
    # carries every figure, so this covers the in-process path as well.
    code, body, output = _cli("--api", live_settings.api_url, "--user", _user())
    assert code == 0, output
    steps = _steps(body)
    assert body["ok"] is True and list(steps) == STEPS
    assert all(step["ok"] is True for step in steps.values()), output
    assert "host" in steps["ice"]["data"]["local_types"]
    assert steps["ice"]["data"]["protocol"] == "udp"
    assert steps["echo"]["data"]["markers"] >= 4
    assert steps["report"]["data"]["verdict"] in ("good", "fair")
    assert steps["report"]["data"]["camera"]["status"] == "ok"
    assert "turn:" in steps["turn"]["data"]["turn"]
    assert steps["tcp"]["data"]["tcp_switch_s"] > 0
    _assert_quality_figures(steps)


@pytest.mark.usefixtures("turn_stopped")
def test_cli_check_names_turn_when_it_is_stopped(live_settings: Settings) -> None:
    # Bounded by _cli's timeout, not timed: twelve steps, each with its own limit.
    code, body, output = _cli("--api", live_settings.api_url, "--user", _user())
    assert code == 1, output
    failed = {name: step for name, step in _steps(body).items() if step["ok"] is not True}
    assert list(failed) == ["turn"], output
    assert "turn:" in failed["turn"]["detail"] and "relay" in failed["turn"]["detail"]


def _direct_token(settings: Settings, secret: str) -> str:
    identity = _user()
    return mint_token(
        Credentials(settings.livekit_api_key, secret),
        identity=identity,
        name=identity,
        room=greenroom_room_name(identity),
        role=Role.PARTICIPANT,
        ttl=dt.timedelta(minutes=5),
    ).jwt


@pytest.mark.parametrize(
    ("case", "expected"),
    [("wrong keys", "refused the token"), ("unreachable", "cannot reach the server")],
)
def test_bad_server_or_keys_fail_fast_with_a_cause(
    live_settings: Settings, case: str, expected: str
) -> None:
    secret = live_settings.livekit_api_secret.get_secret_value()
    url = live_settings.livekit_url
    if case == "wrong keys":
        args = ("--url", url, "--token", _direct_token(live_settings, "w" * 40))
    else:
        args = (
            "--url",
            url.rsplit(":", 1)[0] + ":1",
            "--token",
            _direct_token(live_settings, secret),
        )
    # Failing fast is bounded by the subprocess's timeout, not timed.
    code, body, output = _cli(*args, "--timeout", "10", timeout_s=90)
    assert code == 1, output
    steps = _steps(body)
    assert steps["websocket"]["ok"] is False
    assert expected in steps["websocket"]["detail"], output
    assert all(steps[name]["ok"] is False for name in ("ice", "resume", "publish", "echo"))


def test_unreachable_token_service_is_a_clear_failure() -> None:
    code, body, output = _cli("--api", "http://10.77.0.1:1", "--app-token", "x", "--timeout", "5")
    assert code == 1, output
    assert [(s["name"], s["ok"]) for s in body["steps"]] == [("api", False)]
    assert "cannot reach the token service" in body["steps"][0]["detail"]


def test_cli_refuses_bad_arguments() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    for args in (["--url", "ws://x"], [], ["--api", "http://x"]):
        done = subprocess.run(
            [sys.executable, "-m", "talkplatform_agents", "check", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
