from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from livekit import api

from talkplatform_agents.config import Settings
from talkplatform_agents.service import create_app, mint_app_token
from talkplatform_agents.store import Database, upgrade

APP_SECRET = "test-app-secret-0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    upgrade(url)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=url,
        APP_JWT_SECRET=APP_SECRET,
        LIVEKIT_URL="ws://127.0.0.1:1",  # nothing listens: connection-info must say so
        LIVEKIT_TOKEN_TTL_SECONDS=900,
        TURN_SERVER_URL="turn:turn.test:3478",
        TURN_USERNAME="livekit",
        TURN_PASSWORD="turnpassword",
    )


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app on ``settings``, its lifespan running, and an in-process client of it."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://service.test"
        ) as http,
    ):
        yield app, http


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app, running, and a client of it."""
    async with running_app(settings) as pair:
        yield pair


@pytest.fixture
def client(service: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return service[1]


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Database]:
    """The service's database, as a test sets the scene in it."""
    db = Database(settings.database_url)
    try:
        yield db
    finally:
        await db.aclose()


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    def headers(user: str = "alice", name: str | None = "Alice", ttl: int = 600) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_app_token(APP_SECRET, user, name, ttl)}"}

    return headers


async def create_meeting(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], **settings: object
) -> str:
    """A new meeting hosted by alice (``auth``'s default user); its id."""
    reply = await client.post(
        "/api/v1/meetings", json={"title": "t", "settings": settings}, headers=auth("alice")
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


async def check_settings_section(
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    section: str,
    *,
    refused: list[object],
    refused_change: tuple[dict[str, object], str],
    fine: dict[str, object],
) -> None:
    """A meeting's ``settings.<section>`` is checked when written: each of ``refused`` makes
    creating a meeting a 422 naming the section; a change to ``refused_change[0]`` is a 400
    naming ``refused_change[1]`` (the faulty setting); a change to ``fine`` is kept as is."""
    for bad in refused:
        reply = await client.post(
            "/api/v1/meetings",
            json={"title": "t", "settings": {section: bad}},
            headers=auth(),
        )
        assert reply.status_code == 422, bad
        assert f"settings.{section}" in reply.text
    mid = await create_meeting(client, auth, **{section: {"auto": True}})
    bad_change, named = refused_change
    patch = await client.patch(
        f"/api/v1/public-meetings/{mid}", json={"settings": {section: bad_change}}, headers=auth()
    )
    assert patch.status_code == 400 and named in patch.text, patch.text
    kept = await client.patch(
        f"/api/v1/public-meetings/{mid}", json={"settings": {section: fine}}, headers=auth()
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["settings"][section] == fine


def participant_joined(
    settings: Settings, room: str, identity: str, kind: int = 0
) -> tuple[str, dict[str, str]]:
    """livekit-server's signed ``participant_joined`` webhook: its body and headers."""
    now = int(time.time())
    body = json.dumps(
        {
            "event": "participant_joined",
            "id": f"EV_{room}_{identity}",
            "createdAt": now,
            "room": {"name": room, "creationTime": now - 5},
            "participant": {"sid": f"PA_{identity}", "identity": identity, "joinedAt": now,
                            "kind": kind},
        }
    )  # fmt: skip
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    secret = settings.livekit_api_secret.get_secret_value()
    token = api.AccessToken(settings.livekit_api_key, secret).with_sha256(digest).to_jwt()
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}
