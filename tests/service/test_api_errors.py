"""The service's error contract across every route: a login everywhere but where the design
says otherwise, and a JSON error body with a clear status when the database or
livekit-server is down (503) or livekit-server refuses (502); a 500 only for a bug."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from livekit import api

from talkplatform_agents.config import Settings
from talkplatform_agents.service import create_app

Auth = Callable[..., dict[str, str]]

# Public by design: health and metrics for load balancers and scrapers (figures and room
# names only: a meeting's id admits nobody without an app login), the webhook
# (livekit-server signs it; test_token_service checks the signature), and FastAPI's own API
# documentation; the web pages (their scripts ask for the login) and the development sign-in
# (APP_ENV=development only).
_PUBLIC = {
    "/app",
    "/app/",
    "/app/signin",
    "/app/greenroom",
    "/app/meeting/{meeting_id}",
    "/app/host/{meeting_id}",
    "/app/assets/{name}",
    "/api/v1/dev/sign-in",
    "/healthz",
    "/metrics",
    "/api/v1/livekit/webhook",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, with its path parameters filled in."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        if route.path is None or route.path in _PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


async def test_every_route_but_the_public_ones_needs_a_login(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    routes = _routes(create_app(settings))
    # One route of each router: the list is the whole API, not one that lost a router.
    assert {("POST", "/api/v1/livekit/token"), ("POST", "/api/v1/meetings/x1/end")} <= set(routes)
    assert ("GET", "/api/v1/meetings/x1/chat") in routes
    for method, path in routes:
        reply = await client.request(method, path)
        assert reply.status_code == 401, (method, path, reply.text)
        assert reply.json()["error"]["code"] == "unauthorized"
        assert reply.headers["www-authenticate"] == "Bearer"


@pytest.fixture
async def database_down(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The service with a database it cannot open."""
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    app = create_app(settings.model_copy(update={"database_url": unreachable}))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as http,
    ):
        yield http


async def test_healthz_is_503_with_the_database_down(database_down: httpx.AsyncClient) -> None:
    reply = await database_down.get("/healthz")
    assert reply.status_code == 503
    assert reply.json() == {"status": "unavailable", "database": "unreachable"}


async def test_a_database_outage_is_a_503_with_the_error_body(
    database_down: httpx.AsyncClient, auth: Auth
) -> None:
    for method, path, body in [
        ("POST", "/api/v1/meetings", {"title": "t"}),
        ("GET", "/api/v1/meetings/m1", None),
        ("POST", "/api/v1/livekit/token", {"meetingId": "m1"}),
        ("GET", "/api/v1/meetings/m1/waiting-room", None),
        ("GET", "/api/v1/meetings/m1/chat", None),
    ]:
        reply = await database_down.request(method, path, json=body, headers=auth())
        assert reply.status_code == 503, (path, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "unavailable"
        assert "database is unavailable" in error["message"]


async def test_livekit_unreachable_is_a_503_with_the_error_body(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """The test service's livekit-server URL has nothing listening."""
    created = await client.post(
        "/api/v1/meetings",
        json={"title": "t", "settings": {"join_before_host": False}},
        headers=auth("alice"),
    )
    mid = created.json()["id"]
    for user, path, body in [
        ("alice", f"/api/v1/meetings/{mid}/participants/g1/mute", None),
        ("alice", f"/api/v1/meetings/{mid}/mute-all", None),
        ("guest", "/api/v1/livekit/token", {"meetingId": mid}),  # is a host in the room?
    ]:
        reply = await client.post(path, json=body, headers=auth(user))
        assert reply.status_code == 503, (path, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "unavailable"
        assert "livekit-server is unreachable" in error["message"]


@pytest.fixture
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    # A bug's exception reaches the test client after the 500 is sent; the body is the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as http,
    ):
        yield app, http


async def test_livekit_refusing_is_a_502_with_the_error_body(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """livekit-server answers, with an error of its own: a bad gateway, the same verdict the
    moderator bot's RPC gives (2502), never a 500 nor a "try again"."""
    app, client = app_and_client

    async def refuse(room: str) -> list[api.ParticipantInfo]:
        raise api.TwirpError("internal", "the room service failed", status=500)

    monkeypatch.setattr(app.state.context.server, "participants", refuse)
    created = await client.post("/api/v1/meetings", json={"title": "t"}, headers=auth("alice"))
    reply = await client.post(
        f"/api/v1/meetings/{created.json()['id']}/mute-all", headers=auth("alice")
    )
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["code"] == "bad_gateway"
    assert error["message"] == "livekit-server refused: internal: the room service failed"


async def test_a_schema_bug_is_a_logged_500_not_an_outage(
    settings: Settings, tmp_path: Path, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    """A database the service reaches but whose schema is wrong (never migrated) is a bug:
    a 500, logged with the driver's traceback, not a 503 that says "try again"."""
    unmigrated = f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}"
    app = create_app(settings.model_copy(update={"database_url": unmigrated}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as http,
    ):
        reply = await http.get("/api/v1/meetings/m1", headers=auth())
    assert reply.status_code == 500, reply.text
    assert reply.json() == {"error": {"code": "internal", "message": "internal server error"}}
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged.exc_info is not None and "no such table" in str(logged.exc_info[1])
