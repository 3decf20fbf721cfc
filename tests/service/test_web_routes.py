"""The pages under /app/ and the development sign-in, in process: what is served, with which
headers, and what is refused (no browser; tests/integration/test_web_*.py drive chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.service.web import page_csp
from tests.service.conftest import running_app


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A WEB_DIR as scripts/build-web.sh leaves it."""
    dist = tmp_path / "dist"
    dist.mkdir()
    for page in ("index", "signin", "greenroom", "meeting", "host"):
        (dist / f"{page}.js").write_text(f"console.log('{page}');\n")
    (dist / "app.css").write_text("body{}\n")
    (dist / ".tp-built").write_text("stamp\n")
    return dist


def with_web(settings: Settings, dist: Path, **changes: str) -> Settings:
    return settings.model_copy(update={"web_dir": str(dist), **changes})


async def test_pages_are_shells_with_a_strict_policy(settings: Settings, built: Path) -> None:
    async with running_app(with_web(settings, built)) as (_, http):
        for path, bundle in [("/app/", "index"), ("/app/greenroom", "greenroom"),
                             ("/app/meeting/m-1", "meeting"), ("/app/host/m_2", "host"),
                             ("/app/signin", "signin")]:  # fmt: skip
            reply = await http.get(path)
            assert reply.status_code == 200, path
            assert reply.headers["content-type"].startswith("text/html")
            assert f'src="/app/assets/{bundle}.js"' in reply.text
            csp = reply.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "ws://127.0.0.1:1" in csp  # the client's LiveKit URL may be connected to
        assert (await http.get("/app", follow_redirects=False)).headers["location"] == "/app/"


async def test_assets_are_served_and_nothing_else(settings: Settings, built: Path) -> None:
    async with running_app(with_web(settings, built)) as (_, http):
        script = await http.get("/app/assets/meeting.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        style = await http.get("/app/assets/app.css")
        assert style.headers["content-type"].startswith("text/css")
        for bad in (".tp-built", "..%2Fdist%2Fapp.css", "missing.js", "app.exe", "%2Fetc%2Fpasswd"):
            reply = await http.get(f"/app/assets/{bad}")
            assert reply.status_code == 404, bad
            assert reply.json()["error"]["code"] == "not_found"


async def test_a_bad_meeting_address_and_missing_bundles_are_said(
    settings: Settings, built: Path, tmp_path: Path
) -> None:
    async with running_app(with_web(settings, built)) as (_, http):
        reply = await http.get("/app/meeting/" + "x" * 65)
        assert reply.status_code == 404 and "Start again" in reply.text
        assert (await http.get("/app/host/a.b")).status_code == 404
    async with running_app(with_web(settings, tmp_path / "never-built")) as (_, http):
        reply = await http.get("/app/greenroom")
        assert reply.status_code == 503
        assert "scripts/build-web.sh" in reply.text


@pytest.fixture
async def dev_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service with DEV_SIGN_IN=1, as `up` runs it."""
    async with running_app(settings.model_copy(update={"dev_sign_in": True})) as (_, http):
        yield http


async def test_development_sign_in_mints_a_login_the_api_accepts(
    dev_client: httpx.AsyncClient,
) -> None:
    client = dev_client
    reply = await client.post("/api/v1/dev/sign-in", json={"userId": "dana", "name": " Dana "})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["userId"] == "dana" and body["name"] == "Dana" and body["expiresIn"] > 0
    made = await client.post(
        "/api/v1/meetings",
        json={"title": "Standup"},
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert made.status_code == 201 and made.json()["hostId"] == "dana"


@pytest.mark.parametrize(
    "body", [{"userId": "has space"}, {"userId": ""}, {"name": "x"}, {"userId": "a", "x": 1}]
)
async def test_development_sign_in_refuses_bad_input(
    dev_client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    reply = await dev_client.post("/api/v1/dev/sign-in", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid_request"


async def test_the_sign_in_is_off_unless_asked_for_and_never_in_production(
    settings: Settings, built: Path
) -> None:
    off = with_web(settings, built)  # development, DEV_SIGN_IN unset: the default
    asked = off.model_copy(update={"dev_sign_in": True})
    production = asked.model_copy(update={"app_env": "production"})  # as if it had started
    for current, mounted in ((off, False), (asked, True), (production, False)):
        async with running_app(current) as (_, http):
            reply = await http.post("/api/v1/dev/sign-in", json={"userId": "mallory"})
            assert reply.status_code == (200 if mounted else 404)
            # The pages stay (the platform's own login opens them), and say which it is.
            page = await http.get("/app/signin")
            assert page.status_code == 200
            assert f'data-dev-sign-in="{int(mounted)}"' in page.text
    with pytest.raises(ValueError, match="DEV_SIGN_IN mints a login for anyone"):
        Settings(_env_file=None, APP_ENV="production", DEV_SIGN_IN=True)  # type: ignore[call-arg]


def test_policy_allows_the_livekit_origin_only() -> None:
    csp = page_csp("wss://media.example.com")
    assert "connect-src 'self' wss://media.example.com https://media.example.com;" in csp
    assert "http://" not in csp and "ws://" not in csp
