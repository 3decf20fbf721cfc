"""Shared by the benchmarks: the local stack to measure, a table and a JSON line per run."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import platform
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace, Stack, StackOptions
from talkplatform_agents.store import upgrade

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def report(
    name: str, rows: list[dict[str, Any]], summary: dict[str, Any], *, width: int | None = None
) -> None:
    """Print ``rows`` as a table and append one JSON line to bench/results/<name>.jsonl.
    ``width``: the table's, in characters, for many columns (else the terminal's)."""
    table = Table(title=name)
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_fmt(value) for value in row.values()))
    console = Console(width=width)
    console.print(table)
    for key, value in summary.items():
        console.print(f"{key}: {_fmt(value)}")
    line = {
        "bench": name,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.python_version()}",
        "rows": rows,
        **summary,
    }
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / f"{name}.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")
    print(json.dumps(line))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def run_in_local_stack(
    body: Callable[[Stack], Awaitable[None]],
    *,
    agents: tuple[str, ...] = ("all",),
    sqlite_synchronous: str = "full",
    **settings: Any,
) -> None:
    """Run ``body`` against the real stack in a fresh network namespace, then tear it down.
    ``agents`` are the bots its worker runs; ``sqlite_synchronous`` the store's fsync level
    (store/db.py); ``settings`` are extra Settings fields (by their environment names)."""
    with tempfile.TemporaryDirectory() as tmp, NetNamespace.create() as namespace:
        namespace.enter()  # before any thread: the SDK's threads inherit it
        database_url = f"sqlite+aiosqlite:///{tmp}/bench.db?synchronous={sqlite_synchronous}"
        upgrade(database_url)
        config = Settings(
            _env_file=None,  # type: ignore[call-arg]
            DATABASE_URL=database_url,
            LOG_LEVEL="WARNING",
            **settings,
        )
        options = StackOptions(
            root=ROOT, run_dir=Path(tmp) / "run", host=namespace.address, agents=agents
        )
        with Stack(config, options) as stack:
            asyncio.run(body(stack))


@dataclasses.dataclass
class ProcessSeries:
    """One process's RSS, open fds, threads and (where the caller can see them) asyncio tasks,
    sampled over time; ``gone_at_s`` once it has exited."""

    name: str
    process: psutil.Process
    first_seen_s: float
    t: list[float] = dataclasses.field(default_factory=list)
    rss_mb: list[float] = dataclasses.field(default_factory=list)
    fds: list[int] = dataclasses.field(default_factory=list)
    threads: list[int] = dataclasses.field(default_factory=list)
    tasks: list[int | None] = dataclasses.field(default_factory=list)  # None: not observable
    cpu_s: float = 0.0
    gone_at_s: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def sample(self, now_s: float, tasks: int | None = None) -> None:
        """One sample at ``now_s``, from /proc; marks the process gone if it has exited."""
        if self.gone_at_s is not None:
            return
        process = self.process
        try:
            with process.oneshot():
                rss, fds = process.memory_info().rss, process.num_fds()
                threads, cpu = process.num_threads(), process.cpu_times()
        except psutil.NoSuchProcess:
            self.gone_at_s = now_s
            return
        self.t.append(now_s)
        self.rss_mb.append(rss / 2**20)
        self.fds.append(fds)
        self.threads.append(threads)
        self.tasks.append(tasks)
        self.cpu_s = cpu.user + cpu.system


def rolling_median(values: list[float], window: int) -> list[float]:
    """Medians of each ``window`` consecutive values (all of them, if fewer)."""
    if len(values) < window:
        return [statistics.median(values)] if values else []
    return [statistics.median(values[i : i + window]) for i in range(len(values) - window + 1)]
