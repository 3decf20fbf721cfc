"""Shared by the benchmarks: a readable table and a JSON line per run."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


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
