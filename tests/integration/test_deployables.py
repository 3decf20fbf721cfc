"""The hosted bots' stand-alone entrypoints (``agents/chat_relay.py``, ``agents/waiting_room.py``):
each is one room host that registers with the real livekit-server, and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from talkplatform_agents.config import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _env(settings: Settings, metrics_port: int = 0) -> dict[str, str]:
    """The stack's settings, but for the metrics port: the stack's worker has that one
    (``metrics_port`` 0: no endpoint)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "API_"))}
    return {
        **env,
        **settings.child_env(),
        "BOT_METRICS_PORT": str(metrics_port),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


_HOSTED = [("chat_relay.py", "chat-relay"), ("waiting_room.py", "waiting-room")]


@pytest.mark.parametrize(("script", "agent_name"), _HOSTED)
async def test_a_hosted_bot_deploys_alone(
    live_settings: Settings, script: str, agent_name: str
) -> None:
    host = live_settings.bot_metrics_host
    port = _free_port(host)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "agents" / script), "start",
        cwd=ROOT, env=_env(live_settings, port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(90):
            while not any("ready" in line and agent_name in line for line in seen):
                line = (await process.stdout.readline()).decode()
                assert line, f"the bot exited before registering: {''.join(seen)}"
                seen.append(line)
        # It serves its own figures, on its own port.
        async with httpx.AsyncClient(timeout=10) as http:
            reply = await http.get(f"http://{host}:{port}/metrics")
        assert reply.status_code == 200, reply.text
        names = {family.name for family in text_string_to_metric_families(reply.text)}
        assert {"tp_bot_rooms", "tp_bot_jobs_accepted"} <= names, names
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await process.stdout.read()  # to the end: nothing blocks on a full pipe
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_deployable_refuses_unknown_arguments(live_settings: Settings) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "agents" / "chat_relay.py"), "dev",
        cwd=ROOT, env=_env(live_settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert b"usage:" in output


async def test_a_taken_metrics_port_is_a_clear_error(live_settings: Settings) -> None:
    # The stack's worker serves its figures there already.
    taken = live_settings.bot_metrics_port
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "agents" / "chat_relay.py"), "start",
        cwd=ROOT, env=_env(live_settings, taken),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert f":{taken}: Address already in use".encode() in output, output
    assert b"BOT_METRICS_PORT" in output
