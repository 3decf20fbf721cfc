"""Session set-up shared by every test.

Tests that carry media run inside one network namespace that this session makes (see
talkplatform_agents.harness.netns). The whole pytest process moves into it here, in
pytest_configure, before any thread exists, so that the LiveKit SDK's native threads and
every child process inherit it. A run that selects no integration tests skips that.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before numpy is imported (talkplatform_agents/cli/__init__.py says why).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.netns import NetNamespace, netns_available
from talkplatform_agents.harness.stack import ensure_livekit_server

_NAMESPACE = pytest.StashKey[NetNamespace | None]()
_REASON = pytest.StashKey[str | None]()
_EXIT_STATUS = pytest.StashKey[int]()


def _wants_integration(config: pytest.Config) -> bool:
    markexpr = str(config.getoption("markexpr", "") or "")
    return "not integration" not in markexpr


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_NAMESPACE] = None
    config.stash[_REASON] = None
    if not _wants_integration(config):
        config.stash[_REASON] = "this run deselected integration tests"
        return
    reason = netns_available()
    if reason is not None:
        config.stash[_REASON] = reason
        return
    # Build the server now if needed: inside the namespace nothing reaches the Go proxy.
    ensure_livekit_server(Settings(_env_file=None), Path(__file__).resolve().parents[1])  # type: ignore[call-arg]
    namespace = NetNamespace.create()
    namespace.enter()
    config.stash[_NAMESPACE] = namespace


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    namespace = config.stash.get(_NAMESPACE, None)
    if namespace is None:
        return
    namespace.destroy()
    # Every test has reported by now. The LiveKit SDK's native runtime can panic while the
    # interpreter finalises ("panic in a function that cannot unwind", seen on a loaded
    # machine), which would turn a green run red; leave with pytest's own status instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.stash.get(_EXIT_STATUS, 1))


@pytest.fixture(scope="session")
def netns(pytestconfig: pytest.Config) -> NetNamespace:
    namespace = pytestconfig.stash.get(_NAMESPACE, None)
    if namespace is None:
        pytest.fail(
            "integration tests need the test network namespace: "
            f"{pytestconfig.stash.get(_REASON, None)}"
        )
    return namespace
