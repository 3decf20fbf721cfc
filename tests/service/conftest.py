from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.service import create_app, mint_app_token
from talkplatform_agents.store import upgrade

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


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://service.test"
        ) as http,
    ):
        yield http


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
