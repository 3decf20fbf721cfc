"""config/grafana/talkplatform.json reads only figures that the code exports, and shows each
of them: a renamed metric fails here, not on an operator's blank panel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import livekit.agents.telemetry.metrics  # noqa: F401  (livekit-agents' own lk_agents_* figures)
import prometheus_client

from talkplatform_agents.bots import metrics as bot_metrics
from talkplatform_agents.bots.metrics import WorkerMetrics
from talkplatform_agents.service.metrics import ServiceMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana" / "talkplatform.json"
_NAME = re.compile(r"\b((?:tp|lk_agents|process)_[a-z0-9_]+)\b")
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum", ""),
}


def _sample_names(families: Iterable[Any]) -> set[str]:
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


async def _exported() -> set[str]:
    stats = SimpleNamespace(dispatches=1, warnings=0, replaced=0, redispatched=0, sweeps=1,
                            failures=0)  # fmt: skip
    context = SimpleNamespace(
        reconciler=SimpleNamespace(stats=stats, missing=lambda: {("meeting-x", "chat-relay"): 3.0}),
        sweeper=SimpleNamespace(stats=stats),
    )
    service = ServiceMetrics(lambda: context)
    worker = WorkerMetrics("127.0.0.1", 0, lambda: {"host-0": 0})
    try:
        return _sample_names(
            [
                *service.registry.collect(),  # on the event loop: tp_asyncio_tasks too
                *bot_metrics.REGISTRY.collect(),
                *worker.registry.collect(),
                *prometheus_client.REGISTRY.collect(),
            ]
        )
    finally:
        worker.close()


def _queries(dashboard: dict[str, Any]) -> list[str]:
    queries: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            queries.extend(t["expr"] for t in panel.get("targets", ()))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        queries.append(query["query"] if isinstance(query, dict) else str(query))
    return queries


async def test_every_query_reads_a_figure_the_code_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = await _exported()
    used = {name for query in _queries(dashboard) for name in _NAME.findall(query)}
    assert used, "no queries found"
    assert not used - exported, f"the dashboard reads figures nobody exports: {used - exported}"


async def test_every_family_of_ours_has_a_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = " ".join(_queries(dashboard))
    ours = {name for name in await _exported() if name.startswith("tp_")}
    # A family is shown when any of its series is (a histogram by its buckets).
    shown = {name for name in ours if name in text or name + "_bucket" in text}
    histograms = {n.removesuffix("_bucket") for n in ours if n.endswith("_bucket")}
    missing = {
        name
        for name in ours - shown
        if not any(name.startswith(h) for h in histograms)
        and not (name.endswith("_created") or name.endswith(("_count", "_sum")))
    }
    assert not missing, f"figures with no panel: {sorted(missing)}"


def test_the_dashboard_asks_for_its_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (source,) = dashboard["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "prometheus")
    variable = "${" + source["name"] + "}"

    def sources(panels: list[dict[str, Any]]) -> Iterable[str]:
        for panel in panels:
            if "datasource" in panel:
                yield panel["datasource"]["uid"]
            for target in panel.get("targets", ()):
                yield target["datasource"]["uid"]
            yield from sources(panel.get("panels", []))

    assert set(sources(dashboard["panels"])) == {variable}
