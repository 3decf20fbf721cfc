"""The bots' Prometheus figures, and the worker's one endpoint that serves them all.

What every bot process counts (``agent`` is a bot's agent name: a handful of values; no
label names a room or a participant):
- ``tp_bot_rooms{agent}``: rooms the bot is in now;
- ``tp_bot_jobs_accepted_total``, ``tp_bot_jobs_finished_total`` and
  ``tp_bot_jobs_failed_total`` ``{agent}``: jobs taken, and how they ended;
- ``tp_bot_rpc_errors_total{method,code}``: RPC calls answered with an error
  (``bots/rpc_errors.py``: the HTTP status plus 2000, 429 for a caller over its limits);
- ``tp_chat_messages_total{outcome}``: chat messages the chat bot stored (``created``,
  ``edited``, ``duplicate``) or refused (``not_owner``, ``deleted``, ``unstored``: the
  store failed and the sender was told);
- ``tp_chat_relayed_total{audience}``: messages the chat bot sent on, to the room
  (``room``) or to a few (``private``);
- ``tp_waiting_queue_length``: people in the lobbies that this worker's moderator bots
  serve (waiting at the door, or just denied and about to be removed);
- ``tp_admissions_total{via="rpc"}``: people let in by a host's RPC to the moderator bot.
And from the worker's parent: ``tp_bot_process_restarts_total{child}``, a child process
that died and was started again. livekit-agents' own ``lk_agents_*`` figures (its servers'
jobs, load and job processes) come along.

How one endpoint shows many processes: the worker's children (room hosts, livekit-agents
servers) and their job processes each write their figures to files, prometheus_client's
multiprocess mode, in a directory of the worker's run; its parent merges them at each
scrape. Each child writes to a subdirectory of its own, and a livekit-agents server's job
processes to one of that server's (``jobs-<pid>``): livekit-agents empties its job
processes' directory when it starts (``AgentServer(prometheus_multiproc_dir=...)``), and
must never empty another's. Counters of a process that ended stay (they are totals); gauges
of a dead process are dropped at the next scrape. (livekit-agents' own ``prometheus_port``
is not used: it would be one more port per server, and would serve only that server.)

A process that runs no worker (a room host on its own, ``run_room_host``) serves its own
figures on the same port setting; prometheus_client then keeps them in memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = [
    "ADMISSIONS",
    "CHAT_MESSAGES",
    "CHAT_RELAYED",
    "JOBS_ACCEPTED",
    "JOBS_FAILED",
    "JOBS_FINISHED",
    "REGISTRY",
    "ROOMS",
    "RPC_ERRORS",
    "WAITING",
    "MetricsServer",
    "WorkerMetrics",
    "serve_registry",
]

# This process's figures. Not prometheus_client's global registry: livekit-agents puts its
# own there, and a process that serves itself shows ours only.
REGISTRY = CollectorRegistry()

# Every figure a job process may move is labelled: a labelled series is made (and its file
# opened) at first use, after livekit-agents has emptied the directory, never at import.
ROOMS = Gauge(
    "tp_bot_rooms", "Rooms a bot is in now, by agent.", ["agent"],
    registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip
JOBS_ACCEPTED = Counter(
    "tp_bot_jobs_accepted", "Jobs a bot took, by agent.", ["agent"], registry=REGISTRY
)
JOBS_FINISHED = Counter(
    "tp_bot_jobs_finished", "Jobs that ended well (the bot left), by agent.", ["agent"],
    registry=REGISTRY,
)  # fmt: skip
JOBS_FAILED = Counter(
    "tp_bot_jobs_failed", "Jobs that failed (the session raised, or its runtime stopped), "
    "by agent.", ["agent"], registry=REGISTRY,
)  # fmt: skip
RPC_ERRORS = Counter(
    "tp_bot_rpc_errors", "RPC calls a bot answered with an error, by method and code.",
    ["method", "code"], registry=REGISTRY,
)  # fmt: skip
CHAT_MESSAGES = Counter(
    "tp_chat_messages", "Chat messages the chat bot handled, by outcome.", ["outcome"],
    registry=REGISTRY,
)  # fmt: skip
CHAT_RELAYED = Counter(
    "tp_chat_relayed", "Chat messages the chat bot sent on, by audience (room, private).",
    ["audience"], registry=REGISTRY,
)  # fmt: skip
WAITING = Gauge(
    "tp_waiting_queue_length", "People in the lobbies the moderator bots serve, by agent.",
    ["agent"], registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip
ADMISSIONS = Counter(
    "tp_admissions", "People let in from a waiting room, by path (rpc here; rest from the "
    "token service).", ["via"], registry=REGISTRY,
)  # fmt: skip

_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's (and livekit-agents') switch
_LIVE_GAUGE = re.compile(r"^gauge_live[a-z]*_(\d+)\.db$")


class MetricsServer:
    """An HTTP server of one registry's figures, in a thread; ``close`` stops it."""

    def __init__(self, registry: Collector, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, host, registry)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_registry(host: str, port: int) -> MetricsServer:
    """This process's own figures (a room host run on its own)."""
    return MetricsServer(REGISTRY, host, port)


class _Merged(Collector):
    """Every process's files under ``root``, merged; a dead process's gauges dropped."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()  # scrapes may overlap: one sweep at a time

    def collect(self) -> Iterable[Any]:
        with self._lock:
            files = []
            for path in self._root.rglob("*.db"):
                match = _LIVE_GAUGE.match(path.name)
                if match is not None and not _alive(int(match.group(1))):
                    path.unlink(missing_ok=True)
                    continue
                files.append(str(path))
            merged: Iterable[Any] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
            return merged


class _Restarts(Collector):
    def __init__(self, restarts: Callable[[], Mapping[str, int]]) -> None:
        self._restarts = restarts

    def collect(self) -> Iterator[Any]:
        family = CounterMetricFamily(
            "tp_bot_process_restarts",
            "Worker children (room hosts, bot servers) that died and were started again.",
            labels=["child"],
        )
        for child, count in sorted(self._restarts().items()):
            family.add_metric([child], count)
        yield family


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: alive
    return True


class WorkerMetrics:
    """The worker parent's endpoint: its children's figures, merged, on ``host:port``. Its
    directory (a fresh one under the system's temporary directory) goes with ``close``."""

    def __init__(self, host: str, port: int, restarts: Callable[[], Mapping[str, int]]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tp-bot-metrics-"))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Merged(self.root))
        self.registry.register(_Restarts(restarts))
        try:
            self._server = MetricsServer(self.registry, host, port)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self._closed = False

    @property
    def port(self) -> int:
        return self._server.port

    def child_dir(self, child: str) -> Path:
        path = self.root / re.sub(r"[^A-Za-z0-9_.-]", "_", child)
        path.mkdir(exist_ok=True)
        return path

    @contextlib.contextmanager
    def child_environment(self, child: str) -> Iterator[Path]:
        """Within it, a process started (spawned: it copies this environment) writes its
        figures to ``child``'s directory. prometheus_client decides on its import whether
        figures go to files, so the child must have the setting from its first moment."""
        path = self.child_dir(child)
        previous = os.environ.get(_ENV)
        os.environ[_ENV] = str(path)
        try:
            yield path
        finally:
            if previous is None:
                os.environ.pop(_ENV, None)
            else:
                os.environ[_ENV] = previous

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.close()
        shutil.rmtree(self.root, ignore_errors=True)
