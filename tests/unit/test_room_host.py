"""The room host's parameters and the load a bot runtime reports (no server)."""

from __future__ import annotations

import time

import pytest
from livekit.protocol import agent

from talkplatform_agents.bots.hosted import HostedOptions
from talkplatform_agents.bots.job import BotJob
from talkplatform_agents.bots.load import OwnLoad
from talkplatform_agents.bots.room_host import HostOptions, RoomHost
from talkplatform_agents.lk.agent_worker import SERVER_TARGET_LOAD, WorkerLoad


async def _session(_job: BotJob, _options: HostedOptions) -> None:
    return None


def _options(**overrides: object) -> HostOptions:
    fields: dict[str, object] = {
        "ws_url": "ws://x", "api_key": "k", "api_secret": "s", "agent_names": ("a",),
        **overrides,
    }  # fmt: skip
    return HostOptions(**fields)  # type: ignore[arg-type]


def test_a_host_needs_a_session_for_every_agent_name() -> None:
    with pytest.raises(ValueError, match="no session for b"):
        RoomHost(_options(agent_names=("a", "b")), {"a": _session})
    with pytest.raises(ValueError, match="capacity"):
        _options(capacity=0)
    with pytest.raises(ValueError, match="at least one agent name"):
        _options(agent_names=())


def test_an_empty_host_is_idle_and_offers_room() -> None:
    host = RoomHost(_options(capacity=2, load_mode="jobs"), {"a": _session})
    assert host.status() == WorkerLoad(0.0, 0, full=False)
    assert not host.jobs
    assert host.offer("a", agent.Job(id="J1"))  # one room promised: half full
    assert host.status() == WorkerLoad(0.5 * SERVER_TARGET_LOAD, 0, full=False)
    assert host.offer("a", agent.Job(id="J2"))
    assert host.status().full
    assert not host.offer("a", agent.Job(id="J3"))  # full: declined
    host.withdraw("a", agent.Job(id="J2"))  # never assigned: its room is free again
    assert not host.status().full


def test_own_load_counts_this_process_only() -> None:
    own = OwnLoad(max_jobs=4, cores=2)
    assert own.cpu() == 0.0  # the first reading starts the interval
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # this process works; nothing else counts
        pass
    used = own.cpu()
    assert 0.0 < used <= 1.0
    with pytest.raises(ValueError, match="max_jobs"):
        OwnLoad(max_jobs=0)
