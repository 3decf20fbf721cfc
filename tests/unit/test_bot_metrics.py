"""The bots' figures: one endpoint for many processes (prometheus_client's multiprocess
files, merged by the worker's parent), and what the runtimes count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from livekit import rtc
from prometheus_client.parser import text_string_to_metric_families

from talkplatform_agents.bots import metrics
from talkplatform_agents.bots.agents_job import CountedJob
from talkplatform_agents.bots.metrics import MetricsPortError, WorkerMetrics
from talkplatform_agents.bots.moderator.bot import ModeratorBot
from talkplatform_agents.bots.rpc_errors import answer_errors
from talkplatform_agents.bots.worker import WorkerError, WorkerOptions, run_room_host, run_workers
from talkplatform_agents.errors import NotFound
from talkplatform_agents.lk.naming import RoomKind
from talkplatform_agents.moderation import ModerationDeps

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


# A job process as livekit-agents' are: a counter, a histogram, and gauges of the modes
# livekit-agents uses (all, max) and ours (livesum).
_JOB = """
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
r = CollectorRegistry()
Counter("t_jobs", "", registry=r).inc(int(sys.argv[1]))
Histogram("t_init_seconds", "", buckets=(0.5, 5), registry=r).observe(float(sys.argv[1]) / 10)
Gauge("t_load", "", multiprocess_mode="all", registry=r).set(int(sys.argv[1]))
Gauge("t_children", "", multiprocess_mode="max", registry=r).set(int(sys.argv[1]))
Gauge("t_rooms", "", multiprocess_mode="livesum", registry=r).set(int(sys.argv[1]))
print("counted", flush=True)
if sys.argv[2] == "stay":
    sys.stdin.read()
"""


def _child(
    endpoint: WorkerMetrics, name: str, count: int, stay: bool, code: str = _CHILD
) -> subprocess.Popen[str]:
    with endpoint.child_environment(name):
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(count), "stay" if stay else "go"],
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


def _files_of(endpoint: WorkerMetrics, *processes: subprocess.Popen[str]) -> list[str]:
    pids = {f"_{p.pid}.db" for p in processes}
    return [p.name for p in endpoint.root.rglob("*.db") if p.name[p.name.rfind("_") :] in pids]


def test_an_ended_process_is_folded_in_and_its_files_go(endpoint: WorkerMetrics) -> None:
    # Two job processes that ended (as each session's does), and one that lives on.
    ended = [_child(endpoint, "greenroom-echo", n, stay=False, code=_JOB) for n in (2, 60)]
    for process in ended:
        assert process.wait(30) == 0
    living = _child(endpoint, "greenroom-echo", 1, stay=True, code=_JOB)
    assert _files_of(endpoint, *ended)  # nothing has swept them yet
    none: frozenset[tuple[str, str]] = frozenset()
    pid = frozenset({("pid", str(living.pid))})
    try:
        for _ in range(2):  # folded once: a second scrape counts them no more
            samples = _scrape(endpoint.port)
            assert not _files_of(endpoint, *ended)
            assert samples[("t_jobs_total", none)] == 63
            assert samples[("t_init_seconds_count", none)] == 3
            assert samples[("t_init_seconds_sum", none)] == pytest.approx(6.3)
            assert samples[("t_init_seconds_bucket", frozenset({("le", "0.5")}))] == 2
            assert samples[("t_init_seconds_bucket", frozenset({("le", "5.0")}))] == 2
            assert samples[("t_init_seconds_bucket", frozenset({("le", "+Inf")}))] == 3
            # Gauges are now: the living process's only, whatever their mode.
            assert [k for k in samples if k[0] == "t_load"] == [("t_load", pid)]
            assert samples[("t_load", pid)] == 1
            assert samples[("t_children", none)] == 1
            assert samples[("t_rooms", none)] == 1
    finally:
        assert living.stdin is not None
        living.stdin.close()
        assert living.wait(30) == 0
    endpoint.sweep()  # the worker's own round, scraped or not
    assert not list(endpoint.root.rglob("*.db"))
    samples = _scrape(endpoint.port)  # the same totals: the living one's, folded in
    assert samples[("t_jobs_total", none)] == 63
    assert samples[("t_init_seconds_sum", none)] == pytest.approx(6.3)
    assert samples[("t_init_seconds_bucket", frozenset({("le", "5.0")}))] == 2
    assert samples[("t_init_seconds_bucket", frozenset({("le", "+Inf")}))] == 3
    assert not [k for k in samples if k[0] in ("t_load", "t_children", "t_rooms")]


def test_the_port_in_use_is_a_clear_error(endpoint: WorkerMetrics) -> None:
    taken = f"127.0.0.1:{endpoint.port}"
    with pytest.raises(MetricsPortError, match=taken):
        WorkerMetrics("127.0.0.1", endpoint.port, dict)
    # The worker, and a room host on its own, say which setting to change.
    options = WorkerOptions(
        "ws://127.0.0.1:1", "key", "secret", metrics_host="127.0.0.1", metrics_port=endpoint.port
    )
    with pytest.raises(WorkerError, match=f"{taken}.*BOT_METRICS_PORT"):
        run_room_host(("chat-relay",), options)
    with pytest.raises(WorkerError, match=f"{taken}.*BOT_METRICS_PORT"):
        run_workers(["chat-relay"], options, lambda _: None)


# A worker that is killed: its endpoint's directory stays behind.
_KILLED = """
import sys
from pathlib import Path
from talkplatform_agents.bots.metrics import WorkerMetrics
served = WorkerMetrics("127.0.0.1", 0, dict, parent=Path(sys.argv[1]))
print(served.root, flush=True)
sys.stdin.read()
"""


def test_a_killed_workers_directory_goes_when_the_next_starts(tmp_path: Path) -> None:
    killed = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert killed.stdout is not None
    left = Path(killed.stdout.readline().strip())
    assert left.name.startswith(f"tp-bot-metrics-{killed.pid}-")
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(30) == -signal.SIGKILL
    assert left.is_dir()
    # A living worker's stays; so does what is not a worker's. One named with this pid but
    # not this process's own was left by an earlier process that had the pid.
    living = tmp_path / f"tp-bot-metrics-{os.getppid()}-abc"
    other = tmp_path / "tp-bot-metrics-abc"
    earlier = tmp_path / f"tp-bot-metrics-{os.getpid()}-abc"
    for path in (living, other, earlier):
        path.mkdir()
    served = WorkerMetrics("127.0.0.1", 0, dict, parent=tmp_path)
    try:
        assert not left.exists() and not earlier.exists()
        assert living.is_dir() and other.is_dir()
        assert served.root.name.startswith(f"tp-bot-metrics-{os.getpid()}-")
        WorkerMetrics("127.0.0.1", 0, dict, parent=tmp_path).close()
        assert served.root.is_dir()  # this process's own, living
    finally:
        served.close()
    assert not served.root.exists()


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


class _Lobby:
    """What the moderator bot uses of its room: its name, its events, who is in it."""

    name = "meeting-0123abcd-lobby"

    def __init__(self) -> None:
        self.remote_participants: dict[str, Any] = {}
        self.handlers: dict[str, Callable[..., None]] = {}

    def on(self, event: str, handler: Callable[..., None]) -> None:
        self.handlers[event] = handler


class _Door:
    """The lobby's queue in the store: not this test's subject."""

    async def knocker_arrived(self, *_: object) -> None:
        pass

    async def knocker_left(self, *_: object) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _guest(identity: str) -> Any:
    return SimpleNamespace(identity=identity, kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)


async def test_the_lobby_is_counted_by_the_elected_moderator_only() -> None:
    before = _value(metrics.WAITING, "waiting-room")
    lobbies = [_Lobby(), _Lobby()]  # one lobby, and two moderators (a duplicate dispatch)
    bots = [
        ModeratorBot(cast(rtc.Room, lobby), "0123abcd", RoomKind.LOBBY, cast(ModerationDeps, None))
        for lobby in lobbies
    ]
    for lobby, bot in zip(lobbies, bots, strict=True):
        bot.waiting_room = cast(Any, _Door())
        lobby.remote_participants["ann"] = _guest("ann")
        await bot.start()
        lobby.handlers["participant_connected"](_guest("bob"))
    bots[0].count_waiting()  # the one that stays
    bots[0].count_waiting()
    assert _value(metrics.WAITING, "waiting-room") == before + 2
    for lobby in lobbies:
        lobby.handlers["participant_disconnected"](_guest("ann"))
    assert _value(metrics.WAITING, "waiting-room") == before + 1
    for bot in bots:
        await bot.stop()
    assert _value(metrics.WAITING, "waiting-room") == before
