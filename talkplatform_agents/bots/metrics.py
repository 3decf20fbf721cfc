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
must never empty another's. A process that ended leaves its files (every job process does,
one per session): at each scrape, and every little while (``WorkerMetrics.sweep``), the
parent folds its counters and histograms into totals it keeps in memory, and deletes its
files, gauges and all (a gauge is now, and that process is gone). So the directory holds
the living processes' files only. (livekit-agents' own ``prometheus_port`` is not used: it
would be one more port per server, and would serve only that server.)

The directory is ``tp-bot-metrics-<pid>-…`` under the system's temporary directory, ``pid``
the worker's: a worker that was killed leaves it, and the next worker removes it.

A process that runs no worker (a room host on its own, ``run_room_host``) serves its own
figures on the same port setting; prometheus_client then keeps them in memory.
"""

from __future__ import annotations

import contextlib
import logging
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
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from talkplatform_agents.errors import TalkPlatformError

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
    "MetricsPortError",
    "MetricsServer",
    "WorkerMetrics",
    "serve_registry",
]

logger = logging.getLogger(__name__)

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
# One process's figures of one kind: prometheus_client names a gauge's kind by its
# multiprocess mode (gauge_livesum, gauge_all, gauge_max, ...).
_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")
_DIR_PREFIX = "tp-bot-metrics-"


class MetricsPortError(TalkPlatformError, OSError):
    """A metrics endpoint's address cannot be bound (its port is in use, say)."""


class MetricsServer:
    """An HTTP server of one registry's figures, in a thread; ``close`` stops it."""

    def __init__(self, registry: Collector, host: str, port: int) -> None:
        try:
            self._server, self._thread = start_http_server(port, host, registry)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise MetricsPortError(f"cannot serve metrics on {host}:{port}: {reason}") from exc

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
    """Every process's files under ``root``, merged, plus the totals of processes that
    ended (``sweep``).

    A pid counts as ended only when no process has it (``os.kill(pid, 0)``). Pids are
    reused: an ended process's files then wait until the pid's new owner ends too (late,
    never wrong). A new owner that is one of ours, writing to the same directory, opens the
    ended one's files and carries on from their values (prometheus_client reads a file's
    values when it opens it), so its counters stay right and nothing is folded while it
    lives. Counts are lost only if a new owner starts between the check and the delete
    (the pid space wrapping in that instant); and as files go within ``sweep``'s period of
    their process's end, a new owner rarely inherits a gauge that a killed process left."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()  # scrapes (and a sweep) may overlap: one at a time
        self._ended: dict[str, Metric] = {}  # by metric name; every sample a sum

    def collect(self) -> Iterable[Any]:
        with self._lock:
            live = self._sweep()
            merged: Iterable[Metric] = MultiProcessCollector.merge(live, accumulate=True)  # type: ignore[no-untyped-call]
            figures = {metric.name: metric for metric in merged}
            for metric in self._ended.values():
                _add(figures, metric)
            return list(figures.values())

    def sweep(self) -> None:
        with self._lock:
            self._sweep()

    def _sweep(self) -> list[str]:
        """Fold the files of processes that ended into the totals, and delete them. Returns
        the files that stay (living processes')."""
        live = []
        for path in sorted(self._root.rglob("*.db")):
            match = _FILE.match(path.name)
            if match is None or _alive(int(match.group(2))):
                live.append(str(path))
            elif match.group(1).startswith("gauge_"):
                path.unlink(missing_ok=True)
            elif not self._fold(path):
                live.append(str(path))
        return live

    def _fold(self, path: Path) -> bool:
        """An ended process's counters, histograms or summaries, into the totals: each
        sample adds (a histogram's buckets too, cumulative or not). False when the file
        could not be deleted: it stays, and is read as a living one's (never twice)."""
        read: Iterable[Metric] = MultiProcessCollector.merge([str(path)], accumulate=True)  # type: ignore[no-untyped-call]
        figures = list(read)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("metrics: cannot delete %s (%s); its figures stay there", path, exc)
            return False
        for metric in figures:
            _add(self._ended, metric)
        return True


def _add(figures: dict[str, Metric], metric: Metric) -> None:
    """``metric``'s samples added to ``figures``' same-named metric (a new one when none;
    ``metric`` itself is never kept, nor changed)."""
    into = figures.get(metric.name)
    if into is None:
        into = figures[metric.name] = Metric(metric.name, metric.documentation, metric.type)
    at = {(s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(into.samples)}
    for sample in metric.samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        if key in at:
            held = into.samples[at[key]]
            into.samples[at[key]] = held._replace(value=held.value + sample.value)
        else:
            at[key] = len(into.samples)
            into.samples.append(Sample(sample.name, dict(sample.labels), sample.value))


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


# This process's endpoints' directories: a directory named with this process's pid and not
# among these was left by an earlier process that had the same pid (a container's worker,
# started again, often does).
_OWN_DIRS: set[Path] = set()
_DIRS_LOCK = threading.Lock()


def _sweep_stale_dirs(parent: Path) -> None:
    """Remove the directories of workers that ended without closing theirs (killed)."""
    for path in parent.glob(f"{_DIR_PREFIX}*"):
        owner = path.name.removeprefix(_DIR_PREFIX).partition("-")[0]
        if not owner.isdigit() or path in _OWN_DIRS or not path.is_dir():
            continue
        if int(owner) == os.getpid() or not _alive(int(owner)):
            logger.warning("metrics: removing %s, left by a worker that ended", path)
            shutil.rmtree(path, ignore_errors=True)


class WorkerMetrics:
    """The worker parent's endpoint: its children's figures, merged, on ``host:port``. Its
    directory (a fresh one under ``parent``, by default the system's temporary directory)
    goes with ``close``; one that a killed worker left goes when the next one starts.
    Raises ``MetricsPortError`` when ``host:port`` cannot be bound."""

    def __init__(
        self,
        host: str,
        port: int,
        restarts: Callable[[], Mapping[str, int]],
        parent: Path | None = None,
    ) -> None:
        parent = parent if parent is not None else Path(tempfile.gettempdir())
        with _DIRS_LOCK:
            _sweep_stale_dirs(parent)
            self.root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=parent))
            _OWN_DIRS.add(self.root)
        self._merged = _Merged(self.root)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._merged)
        self.registry.register(_Restarts(restarts))
        try:
            self._server = MetricsServer(self.registry, host, port)
        except BaseException:
            self._remove_root()
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

    def sweep(self) -> None:
        """Fold the figures of processes that ended, and delete their files (a scrape does
        too): call it every little while, so that files never pile up unscraped. A failure
        is logged: the figures must never stop the bots."""
        try:
            self._merged.sweep()
        except Exception:
            logger.exception("metrics: sweeping %s failed", self.root)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.close()
        self._remove_root()

    def _remove_root(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        with _DIRS_LOCK:
            _OWN_DIRS.discard(self.root)
