"""Shared by the benchmarks: the local stack to measure, a table and a JSON line per run."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import platform
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace, Stack, StackOptions
from talkplatform_agents.store import upgrade

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def report(name: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Print ``rows`` as a table and append one JSON line to bench/results/<name>.jsonl."""
    table = Table(title=name)
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_fmt(value) for value in row.values()))
    console = Console()
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
