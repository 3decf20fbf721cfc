"""The service's hardening that is not a limit (``limits.py``):

- security headers on every response (``SecurityHeaders``);
- CORS for the platform's frontend origins (``CORS_ORIGINS``; none: no CORS headers);
- livekit-server's webhooks: refused when stale, ignored when replayed (``WebhookGate``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from fastapi import FastAPI
from livekit import api
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talkplatform_agents.errors import Invalid
from talkplatform_agents.store import WebhookEventRepository
from talkplatform_agents.tasks import TaskSet

__all__ = ["SecurityHeaders", "WebhookGate", "install_cors"]

logger = logging.getLogger(__name__)

# Nothing the API answers is a page to render or frame; the API documentation (/docs) is a
# page, with its scripts from a CDN, so it gets only the framing rule.
_JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
_HTML_CSP = "frame-ancestors 'none'"
_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)
_HSTS = "max-age=31536000"


class SecurityHeaders:
    """ASGI middleware: the usual security headers on every response (a header the route
    set itself wins). ``Cache-Control: no-store`` on the API's answers (tokens, TURN
    credentials, who is in a meeting); HSTS when the service's public URL is https."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self._app = app
        self._hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        api_path = scope.get("path", "").startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS:
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("content-security-policy", _HTML_CSP if html else _JSON_CSP)
                if api_path:
                    headers.setdefault("cache-control", "no-store")
                if self._hsts:
                    headers.setdefault("strict-transport-security", _HSTS)
            await send(message)

        await self._app(scope, receive, with_headers)


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Let the platform's frontends call the API from a browser. Logins are bearer tokens,
    not cookies, so no credentials mode."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After", "Server-Timing"],
        max_age=600,
    )


class WebhookGate:
    """Which of livekit-server's (verified) webhooks to act on: a stale one (created more
    than ``max_age_s`` ago, or ahead by as much) is refused, a replay is ignored. First
    sightings are recorded in the store, shared by every service process on the database;
    they are pruned now and then in the background, keeping what a replay could still
    match (a replay older than ``max_age_s`` is refused as stale anyway)."""

    def __init__(
        self,
        events: WebhookEventRepository,
        max_age_s: float,
        *,
        wall_clock: Callable[[], float] = time.time,
        prune_every_s: float = 600,
    ) -> None:
        self._events = events
        self._max_age_s = max_age_s
        self._clock = wall_clock
        self._prune_every_s = prune_every_s
        self._next_prune = 0.0
        self._tasks = TaskSet("webhooks")

    async def first_seen(self, event: api.WebhookEvent) -> bool:
        """False for a replay; ``Invalid`` for an event with no id or out of the window."""
        room = event.room.name or "-"
        if not event.id:
            logger.warning("[%s] webhook %s refused: it has no id", room, event.event)
            raise Invalid("webhook event has no id", event=event.event)
        now = self._clock()
        age_s = now - event.created_at
        if not event.created_at or abs(age_s) > self._max_age_s:
            if not event.created_at:
                when = "it has no createdAt"
            else:
                when = f"created {abs(age_s):.0f} s {'ago' if age_s > 0 else 'ahead'}"
            limit = f"WEBHOOK_MAX_AGE_SECONDS is {self._max_age_s:.0f}"
            logger.warning("[%s] webhook %s (%s) refused as stale: %s; %s",
                           room, event.event, event.id, when, limit)  # fmt: skip
            raise Invalid(
                f"webhook event is stale: {when}; {limit}", reason="stale", eventId=event.id
            )
        created = dt.datetime.fromtimestamp(event.created_at, dt.UTC)
        received = dt.datetime.fromtimestamp(now, dt.UTC)
        first = await self._events.first_seen(event.id, event.event, created, received_at=received)
        if now >= self._next_prune:
            self._next_prune = now + self._prune_every_s
            self._tasks.spawn(self._prune(now), "prune")
        return first

    async def forget(self, event: api.WebhookEvent) -> None:
        """Its handling failed: take it back, so that a retry is acted on. Best effort."""
        try:
            await self._events.forget(event.id)
        except Exception as exc:
            logger.warning("[%s] webhook %s (%s) not forgotten: %s",
                           event.room.name or "-", event.event, event.id, exc)  # fmt: skip

    async def aclose(self) -> None:
        await self._tasks.aclose()

    async def _prune(self, now: float) -> None:
        # An accepted event was created within max_age of its receipt, and a replay of it
        # is accepted only within max_age of its creation: 2 x max_age covers every replay.
        cutoff = dt.datetime.fromtimestamp(now - 2 * self._max_age_s - 60, dt.UTC)
        pruned = await self._events.prune(cutoff)
        if pruned:
            logger.info("pruned %d webhook events received before %s", pruned, cutoff)
