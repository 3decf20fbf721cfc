"""Security headers on every response, and CORS only for the configured frontend origins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from talkplatform_agents.config import RateLimit, Settings
from talkplatform_agents.service import create_app

Auth = Callable[..., dict[str, str]]
FRONTEND = "https://app.example.test"


@asynccontextmanager
async def _service(settings: Settings, **update: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=update))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as http,
    ):
        yield http


def _hardened(reply: httpx.Response) -> None:
    headers = reply.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


async def test_every_kind_of_answer_is_hardened(client: httpx.AsyncClient, auth: Auth) -> None:
    answers = [
        await client.get("/healthz"),
        await client.post("/api/v1/greenroom/token", headers=auth()),
        await client.get("/api/v1/meetings/nope", headers=auth()),  # 404
        await client.get("/api/v1/meetings/nope"),  # 401
        await client.post("/api/v1/meetings", json={}, headers=auth()),  # 422
        await client.get("/no/such/route"),
    ]
    for reply in answers:
        _hardened(reply)
        assert reply.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in reply.headers  # http:// by default
    for reply in answers[1:5]:  # the API's answers are never stored
        assert reply.headers["cache-control"] == "no-store", reply.request.url


async def test_the_api_documentation_page_keeps_its_scripts(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _hardened(page)
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"


async def test_hsts_when_the_public_url_is_https(settings: Settings) -> None:
    async with _service(settings, public_api_url="https://api.example.test") as http:
        reply = await http.get("/healthz")
    assert reply.headers["strict-transport-security"].startswith("max-age=")


async def test_no_cors_without_configured_origins(client: httpx.AsyncClient, auth: Auth) -> None:
    reply = await client.get("/healthz", headers={"Origin": FRONTEND})
    assert not any(name.startswith("access-control-") for name in reply.headers)
    preflight = await client.options(
        "/api/v1/greenroom/token",
        headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_for_the_configured_origins(settings: Settings, auth: Auth) -> None:
    async with _service(settings, cors_origins=[FRONTEND, "http://localhost:5173"]) as http:
        preflight = await http.options(
            "/api/v1/greenroom/token",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers  # bearer tokens
        _hardened(preflight)

        reply = await http.post(
            "/api/v1/greenroom/token", headers={**auth(), "Origin": "http://localhost:5173"}
        )
        assert reply.status_code == 200
        assert reply.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "retry-after" in reply.headers["access-control-expose-headers"].lower()

        stranger = await http.options(
            "/api/v1/greenroom/token",
            headers={
                "Origin": "https://evil.example.test",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers


async def test_a_browser_can_read_a_429(settings: Settings) -> None:
    limited = {"cors_origins": [FRONTEND], "rate_limit_auth_failures": RateLimit(1, 60)}
    async with _service(settings, **limited) as http:
        headers = {"Origin": FRONTEND}
        assert (await http.get("/api/v1/meetings/x", headers=headers)).status_code == 401
        blocked = await http.get("/api/v1/meetings/x", headers=headers)
    assert blocked.status_code == 429
    assert blocked.headers["access-control-allow-origin"] == FRONTEND
    assert blocked.headers["retry-after"] == "60"
    _hardened(blocked)
