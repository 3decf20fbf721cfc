"""``GET /metrics``: the service's own figures, in Prometheus' text format.

Each app has a registry of its own (never prometheus_client's global one), so two apps in
one process (the tests run several) count apart. Per service process; a scraper sums them.

Requests:
- ``tp_http_requests_total{method,route,status}``, ``tp_http_request_duration_seconds``
  (a histogram, by method and route) and ``tp_http_requests_in_progress``: ``route`` is the
  route's template (``/api/v1/meetings/{meeting_id}``), ``unmatched`` for anything else, so
  that no id ever becomes a series;
- ``tp_token_requests_total{kind,status}``: tokens given (``kind`` meeting or greenroom;
  ``status`` joined, or waiting: a lobby token); refusals are in the HTTP figures (403, 429);
- ``tp_webhooks_total{event,result}``: livekit-server's verified webhooks, ``result``
  acted or duplicate (a replay); rejected ones are the webhook route's 401s;
- ``tp_admissions_total{via="rest"}``: people let in from a waiting room through the REST
  API (the moderator bot counts those let in by RPC under the same name, ``via="rpc"``).

Bots, read live from the reconciler and the sweeper:
- ``tp_bots_missing{room,bot}``: seconds that a bot a room should have has been missing
  (``service/reconciler.py``); a series disappears once the bot arrives or the users leave
  (the one per-room label: missing bots are few, and an operator needs the room);
- ``tp_bot_dispatches_total``: dispatches the reconciler made;
- ``tp_bots_missing_warnings_total``: ``tp.bots.missing`` warnings sent to hosts;
- ``tp_bots_replaced_total``: bots that died in their rooms (their lease expired) and were
  replaced (``service/sweeper.py``); ``tp_bots_redispatched_total``: dispatches whose bot
  never came, made again; ``tp_bot_sweeps_total`` and ``tp_bot_sweep_failures_total``;
- ``tp_asyncio_tasks``: live asyncio tasks on the service's event loop: flat unless
  something leaks them (``bench/soak.py`` watches it).

And prometheus_client's ``process_*`` figures (CPU, memory, open files) of this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware", "ServiceMetrics", "install_metrics", "router"]

router = APIRouter()

UNMATCHED = "unmatched"

_LIVE = {
    "tp_bots_missing": "Seconds a bot that a room should have has been missing.",
    "tp_bot_dispatches": "Bots the service dispatched into rooms missing them.",
    "tp_bots_missing_warnings": "tp.bots.missing warnings sent to hosts.",
    "tp_bots_replaced": "Dead bots (expired leases) removed and dispatched anew.",
    "tp_bots_redispatched": "Dispatches whose bot never came, made again.",
    "tp_bot_sweeps": "Looks the sweeper took at the bots' leases.",
    "tp_bot_sweep_failures": "Sweeper steps that failed (the store or livekit-server away).",
    "tp_asyncio_tasks": "Live asyncio tasks on the service's event loop.",
}


class ServiceMetrics:
    """One app's figures: its registry, and the counters its routes move."""

    def __init__(self, context: Callable[[], Any]) -> None:
        # ``context``: the app's ServiceContext once its lifespan started, else None.
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tp_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "tp_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.in_progress = Gauge(
            "tp_http_requests_in_progress", "HTTP requests being answered now.", registry=r
        )
        self.tokens = Counter(
            "tp_token_requests", "Tokens given, by kind (meeting, greenroom) and status "
            "(joined, or waiting: a lobby token).", ["kind", "status"], registry=r,
        )  # fmt: skip
        self.webhooks = Counter(
            "tp_webhooks", "Verified livekit-server webhooks, by event and result (acted, "
            "duplicate).", ["event", "result"], registry=r,
        )  # fmt: skip
        self.admissions = Counter(
            "tp_admissions", "People let in from a waiting room, by path (rest here; rpc "
            "from the moderator bot).", ["via"], registry=r,
        )  # fmt: skip
        ProcessCollector(registry=r)
        r.register(_LiveFigures(context))

    def token(self, kind: str, status: str) -> None:
        self.tokens.labels(kind, status).inc()

    def webhook(self, event: str, result: str) -> None:
        self.webhooks.labels(event or "unknown", result).inc()

    def admitted(self, count: int) -> None:
        if count > 0:
            self.admissions.labels("rest").inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LiveFigures(Collector):
    """The reconciler's and the sweeper's own counts, read at each scrape."""

    def __init__(self, context: Callable[[], Any]) -> None:
        self._context = context

    def describe(self) -> list[Any]:
        return []  # dynamic: never checked against other collectors' names

    def collect(self) -> Iterator[Any]:
        ctx = self._context()
        if ctx is not None:
            reconciler, sweeper = ctx.reconciler, ctx.sweeper
            missing = GaugeMetricFamily("tp_bots_missing", _LIVE["tp_bots_missing"],
                                        labels=["room", "bot"])  # fmt: skip
            for (room, bot), seconds in sorted(reconciler.missing().items()):
                missing.add_metric([room, bot], round(seconds, 1))
            yield missing
            for name, value in (
                ("tp_bot_dispatches", reconciler.stats.dispatches),
                ("tp_bots_missing_warnings", reconciler.stats.warnings),
                ("tp_bots_replaced", sweeper.stats.replaced),
                ("tp_bots_redispatched", sweeper.stats.redispatched),
                ("tp_bot_sweeps", sweeper.stats.sweeps),
                ("tp_bot_sweep_failures", sweeper.stats.failures),
            ):
                yield CounterMetricFamily(name, _LIVE[name], value=value)
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped off the event loop: nothing to count
            return
        yield GaugeMetricFamily("tp_asyncio_tasks", _LIVE["tp_asyncio_tasks"], value=tasks)


class MetricsMiddleware:
    """ASGI middleware: every HTTP request's count, status and time, by route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500  # unless a response starts: the app raised
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self._metrics
        metrics.in_progress.inc()
        try:
            await self._app(scope, receive, observed)
        finally:
            metrics.in_progress.dec()
            method = scope.get("method", "")
            route = _route_of(scope)
            metrics.requests.labels(method, route, str(status)).inc()
            metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    # The router leaves the route it matched in the scope; a request answered before
    # routing (a CORS preflight, the login guard's 429) is matched here instead.
    route = scope.get("route")
    if route is None:
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def install_metrics(app: FastAPI) -> ServiceMetrics:
    """The app's figures (``app.state.metrics``), its middleware and ``GET /metrics``.
    Called last: the middleware is then the outermost, and sees every answer (the login
    guard's 429s, CORS preflights)."""
    metrics = ServiceMetrics(lambda: getattr(app.state, "context", None))
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(router)
    return metrics


async def _metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


Metrics = Annotated[ServiceMetrics, Depends(_metrics)]


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics_endpoint(metrics: Metrics) -> Response:
    # On the event loop, not a thread: the live figures read the loop's own objects.
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
