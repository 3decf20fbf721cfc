"""The namespace harness: the address libwebrtc needs, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from talkplatform_agents.harness import NetNamespace
from talkplatform_agents.harness.netns import PREFIX, sweep_stale
from tests.integration.conftest import until

pytestmark = pytest.mark.integration


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_the_session_namespace_has_a_veth_address_and_a_default_route(
    netns: NetNamespace,
) -> None:
    # This process runs inside it: what it sees is what the SDK's threads see.
    assert f"inet {netns.address}/" in _run("ip", "-4", "addr", "show", "veth0")
    route = _run("ip", "route", "get", "192.0.2.1")  # TEST-NET-1: never sent, only routed
    assert "dev veth1" in route and f"src {netns.address}" in route
    assert os.getpid() in netns.pids()


def test_destroy_kills_everything_inside_and_removes_the_namespace() -> None:
    namespace = NetNamespace(name=f"{PREFIX}test-{os.getpid()}", address="10.78.0.1")
    namespace._build()
    sleeper = subprocess.Popen([*namespace.exec_prefix(), "sleep", "300"])
    try:
        # `ip netns exec` enters the namespace, then execs sleep under the same pid.
        asyncio.run(until(lambda: sleeper.pid in namespace.pids(), 10))
        namespace.destroy()
        assert sleeper.wait(5) != 0  # killed, not finished
        assert namespace.name not in _run("ip", "netns", "list")
        namespace.destroy()  # idempotent
    finally:
        sleeper.kill()


def test_stale_namespaces_of_dead_owners_are_swept() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = NetNamespace(name=f"{PREFIX}{dead.pid}", address="10.79.0.1")
    stale._build()
    sweep_stale()
    assert stale.name not in _run("ip", "netns", "list")
