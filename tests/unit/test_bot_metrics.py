"""The bots' figures: one endpoint for many processes (prometheus_client's multiprocess
files, merged by the worker's parent), and what the runtimes count."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from livekit import rtc
from prometheus_client.parser import text_string_to_metric_families

from talkplatform_agents.bots import metrics
from talkplatform_agents.bots.agents_job import CountedJob
from talkplatform_agents.bots.metrics import WorkerMetrics
from talkplatform_agents.bots.rpc_errors import answer_errors
from talkplatform_agents.errors import NotFound

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# A bot process: counts, then (if told to stay) holds its figures until its stdin closes.
_CHILD = """
import sys
from talkplatform_agents.bots import metrics as m
m.JOBS_ACCEPTED.labels("chat-relay").inc(int(sys.argv[1]))
m.ROOMS.labels("chat-relay").inc(int(sys.argv[1]))
print("counted", flush=True)
if sys.argv[2] == "stay":
    sys.stdin.read()
"""


@pytest.fixture
def endpoint() -> Iterator[WorkerMetrics]:
    restarts = {"host-0": 2, "greenroom-echo": 0}
    served = WorkerMetrics("127.0.0.1", 0, lambda: restarts)
    try:
        yield served
    finally:
        served.close()
    assert not served.root.exists()  # the run's files go with it


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _child(endpoint: WorkerMetrics, name: str, count: int, stay: bool) -> subprocess.Popen[str]:
    with endpoint.child_environment(name):
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(count), "stay" if stay else "go"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "counted"
    return process


def test_one_endpoint_merges_every_process(endpoint: WorkerMetrics) -> None:
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    staying = _child(endpoint, "host-0", 2, stay=True)
    gone = _child(endpoint, "host-1", 3, stay=False)
    assert gone.wait(30) == 0
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") == before  # only the child had it
    try:
        samples = _scrape(endpoint.port)
        chat = frozenset({("agent", "chat-relay")})
        # A counter is a total: the process that ended still counts.
        assert samples[("tp_bot_jobs_accepted_total", chat)] == 5
        # A gauge is now: only the living process's rooms.
        assert samples[("tp_bot_rooms", chat)] == 2
        assert samples[("tp_bot_process_restarts_total", frozenset({("child", "host-0")}))] == 2
    finally:
        assert staying.stdin is not None
        staying.stdin.close()
        assert staying.wait(30) == 0
    samples = _scrape(endpoint.port)
    assert ("tp_bot_rooms", frozenset({("agent", "chat-relay")})) not in samples
    assert samples[("tp_bot_jobs_accepted_total", frozenset({("agent", "chat-relay")}))] == 5


def test_the_port_in_use_is_a_clear_error(endpoint: WorkerMetrics) -> None:
    with pytest.raises(OSError):
        WorkerMetrics("127.0.0.1", endpoint.port, dict)


def _value(counter: object, *labels: str) -> float:
    return float(counter.labels(*labels)._value.get())  # type: ignore[attr-defined]


async def test_a_job_is_counted_once_however_it_ends() -> None:
    agent = "test-agent"
    accepted = _value(metrics.JOBS_ACCEPTED, agent)
    finished = _value(metrics.JOBS_FINISHED, agent)
    failed = _value(metrics.JOBS_FAILED, agent)
    served = CountedJob(agent)
    served.serving()
    assert _value(metrics.ROOMS, agent) == 1
    await served.ended()
    await served.ended()  # livekit-agents may call back twice: counted once
    broken = CountedJob(agent)
    broken.failed()
    await broken.ended()  # its shutdown after the failure: not also "finished"
    assert _value(metrics.JOBS_ACCEPTED, agent) == accepted + 2
    assert _value(metrics.JOBS_FINISHED, agent) == finished + 1
    assert _value(metrics.JOBS_FAILED, agent) == failed + 1
    assert _value(metrics.ROOMS, agent) == 0


async def test_rpc_errors_are_counted_by_method_and_code() -> None:
    async def missing(_data: rtc.RpcInvocationData) -> str:
        raise NotFound("nobody by that identity is waiting")

    async def broken(_data: rtc.RpcInvocationData) -> str:
        raise RuntimeError("a bug")

    data = rtc.RpcInvocationData("R1", "caller", "{}", 5.0)
    before_404 = _value(metrics.RPC_ERRORS, "test.missing", "2404")
    before_500 = _value(metrics.RPC_ERRORS, "test.broken", "2500")
    for method, handler in (("test.missing", missing), ("test.broken", broken)):
        with pytest.raises(rtc.RpcError):
            await answer_errors("room", method, handler)(data)
    assert _value(metrics.RPC_ERRORS, "test.missing", "2404") == before_404 + 1
    assert _value(metrics.RPC_ERRORS, "test.broken", "2500") == before_500 + 1
