"""docker-compose.yml, run natively (talkplatform_agents/harness/compose.py): every service's
command from the file, with its environment from the file and .env.example, in a namespace
of its own where the service names resolve. Then meetings run through it, with their bots.

The session's stack holds 7880/8000/3478 in the test namespace; the compose services bind
the same ports, hence their own namespace. Clients run inside it too, as subprocesses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from talkplatform_agents.harness.compose import (
    ComposeFile,
    NativeCompose,
    NativeOptions,
    read_env_file,
)
from talkplatform_agents.harness.netns import NetNamespace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MEDIA_ADDRESS = "10.78.0.1"  # the compose namespace's veth0 (the session's is 10.77.0.1)
CLIENT_TIMEOUT_S = 150.0  # a bound: the bots' first job processes start on a busy machine


@pytest.fixture(scope="module")
def compose(
    netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NativeCompose]:
    run_dir = tmp_path_factory.mktemp("compose")
    variables = read_env_file(ROOT / ".env.example")
    # The media address, as a deployment sets it. Left empty, the node takes its own but
    # also asks Google's STUN servers, which nothing here reaches: a resumed client's ICE
    # then stalled 10 s at a time, and the preflight's echo step timed out.
    variables["LIVEKIT_NODE_IP"] = MEDIA_ADDRESS
    spec = ComposeFile.load(ROOT / "docker-compose.yml", variables)
    namespace = NetNamespace.create(MEDIA_ADDRESS, suffix="compose")
    try:
        with NativeCompose(spec, namespace, NativeOptions(root=ROOT, run_dir=run_dir)) as stack:
            yield stack
    finally:
        namespace.destroy()


def _client(compose: NativeCompose, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A client inside the compose namespace, with the app secret the service trusts."""
    env = compose.environment("token-service")
    return subprocess.run(
        compose.exec_argv([sys.executable, *argv]),
        env={"PATH": env["PATH"], "HOME": str(cwd), "APP_JWT_SECRET": env["APP_JWT_SECRET"]},
        cwd=cwd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, check=False,
    )  # fmt: skip


def _explain(compose: NativeCompose, result: subprocess.CompletedProcess[str]) -> str:
    logs = "\n".join(
        f"--- {name}\n{compose.log_tail(name)}" for name in ("livekit", "token-service", "workers")
    )
    return f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}\n{logs}"


def test_a_meeting_and_a_green_room_run_through_it_with_their_bots(
    compose: NativeCompose, tmp_path: Path
) -> None:
    client = Path(__file__).with_name("compose_client.py")
    result = _client(compose, str(client), "http://token-service:8000", cwd=tmp_path)
    assert result.returncode == 0, _explain(compose, result)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["wsUrl"] == "ws://localhost:7880"  # LIVEKIT_PUBLIC_URL, not LIVEKIT_URL
    assert {"chat-relay", "waiting-room"} <= set(seen["bots"])
    assert seen["stored"]
    assert seen["botJobs"] >= 2 and seen["tokens"] >= 1  # both metrics endpoints are wired
    assert seen["echoFrom"]  # the green-room bot echoed the guest's own tone
