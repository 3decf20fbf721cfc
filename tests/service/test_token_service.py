"""The token service's HTTP contract, on a real SQLite database."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from livekit import api

from talkplatform_agents.config import Settings
from talkplatform_agents.service import mint_app_token

from .conftest import APP_SECRET, running_app

Auth = Callable[..., dict[str, str]]


async def _meeting(client: httpx.AsyncClient, auth: Auth, user: str = "alice") -> dict[str, Any]:
    reply = await client.post(
        "/api/v1/meetings",
        json={"title": "Standup", "settings": {"waiting_room": False}},
        headers=auth(user),
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _claims(settings: Settings, token: str) -> api.Claims:
    verifier = api.TokenVerifier(
        settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
    )
    return verifier.verify(token)


async def test_create_meeting_makes_the_creator_host(client: httpx.AsyncClient, auth: Auth) -> None:
    meeting = await _meeting(client, auth)
    assert meeting["hostId"] == "alice"
    assert meeting["room"] == f"meeting-{meeting['id']}"
    assert meeting["settings"] == {"waiting_room": False}
    fetched = await client.get(f"/api/v1/meetings/{meeting['id']}", headers=auth("bob"))
    assert fetched.json()["id"] == meeting["id"]


async def test_host_token_contract(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    meeting = await _meeting(client, auth)
    before = time.time()
    reply = await client.post(
        "/api/v1/livekit/token", json={"meetingId": meeting["id"]}, headers=auth()
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["cache-control"] == "no-store"
    body = reply.json()
    assert set(body) >= {"token", "wsUrl", "identity", "room", "metadata"}
    assert body["wsUrl"] == settings.livekit_url
    assert body["identity"] == "alice"
    assert body["room"] == f"meeting-{meeting['id']}"
    assert body["metadata"]["role"] == "host"
    permissions = body["metadata"]["permissions"]
    assert permissions["canPublish"] and permissions["canSubscribe"]
    assert permissions["roomAdmin"] is False

    claims = _claims(settings, body["token"])
    assert claims.identity == "alice" and claims.name == "Alice"
    assert claims.video.room == body["room"] and claims.video.room_join
    assert claims.video.room_admin is False and claims.video.can_update_own_metadata is False
    assert claims.attributes["role"] == "host"
    exp = jwt.decode(body["token"], options={"verify_signature": False})["exp"]
    assert before + 900 - 5 <= exp <= time.time() + 900 + 5


async def test_other_users_get_participant_tokens(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    meeting = await _meeting(client, auth)
    reply = await client.post(
        "/api/v1/livekit/token", json={"meetingId": meeting["id"]}, headers=auth("bob", "Bob")
    )
    body = reply.json()
    assert body["metadata"]["role"] == "participant"
    claims = _claims(settings, body["token"])
    assert claims.attributes["role"] == "participant"
    assert claims.video.room_admin is False


async def test_greenroom_token_dispatches_the_echo_bot(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    reply = await client.post("/api/v1/greenroom/token", headers=auth("carol"))
    assert reply.status_code == 200 and reply.headers["cache-control"] == "no-store"
    claims = _claims(settings, reply.json()["token"])
    assert claims.video.room == "greenroom-carol"
    assert [a.agent_name for a in claims.room_config.agents] == ["greenroom-echo"]


def _forged() -> str:
    return jwt.encode(
        {"sub": "alice", "exp": int(time.time()) + 60}, "not-the-secret-but-long-enough-for-hs256"
    )


def _unsigned() -> str:
    return jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, None, algorithm="none")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer "}, "Bearer"),
        ({"Authorization": "Bearer garbage"}, "invalid token"),
        ({"Authorization": f"Bearer {_forged()}"}, "invalid token"),
        ({"Authorization": f"Bearer {_unsigned()}"}, "invalid token"),
        (
            {"Authorization": "Bearer " + jwt.encode({"sub": "a"}, APP_SECRET)},
            "invalid token",
        ),  # no exp
        (
            {"Authorization": "Bearer " + jwt.encode({"sub": "a b", "exp": 2**31}, APP_SECRET)},
            "subject",
        ),
    ],
)
async def test_bad_credentials_get_401_json(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    for method, path, body in [
        ("POST", "/api/v1/livekit/token", {"meetingId": "x"}),
        ("POST", "/api/v1/meetings", {"title": "t"}),
        ("POST", "/api/v1/greenroom/token", None),
    ]:
        reply = await client.request(method, path, json=body, headers=headers)
        assert reply.status_code == 401, (path, reply.text)
        assert reply.json()["error"]["code"] == "unauthorized"
        assert message in reply.json()["error"]["message"]


async def test_expired_token_gets_401(client: httpx.AsyncClient, auth: Auth) -> None:
    reply = await client.post("/api/v1/meetings", json={"title": "t"}, headers=auth(ttl=-60))
    assert reply.status_code == 401
    assert reply.json()["error"]["message"] == "token has expired"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"meetingId": ""},
        {"meetingId": 42},
        {"meetingId": "../etc"},
        {"meetingId": "x" * 65},
        {"meetingId": "ok", "extra": 1},
        [],
    ],
)
async def test_malformed_token_request_gets_422(
    client: httpx.AsyncClient, auth: Auth, body: object
) -> None:
    reply = await client.post("/api/v1/livekit/token", json=body, headers=auth())
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"title": ""}',
        b'{"title": "t", "settings": []}',
        b"\xff\xfe",
        b'{"title": "t", "settings": {"a": NaN}}',  # stored JSON has no NaN or Infinity
        b'{"title": "t", "settings": {"a": Infinity}}',
        b'{"title": "t", "settings": {"big": "' + b"x" * 20000 + b'"}}',  # over 16 KiB
    ],
)
async def test_malformed_meeting_gets_422(
    client: httpx.AsyncClient, auth: Auth, content: bytes
) -> None:
    headers = {**auth(), "Content-Type": "application/json"}
    reply = await client.post("/api/v1/meetings", content=content, headers=headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"


async def test_unknown_meeting_gets_404(client: httpx.AsyncClient, auth: Auth) -> None:
    reply = await client.post("/api/v1/livekit/token", json={"meetingId": "nope"}, headers=auth())
    assert reply.status_code == 404
    assert reply.json()["error"] == {
        "code": "not_found",
        "message": "meeting not found",
        "meetingId": "nope",
    }
    assert (await client.get("/api/v1/meetings/nope", headers=auth())).status_code == 404
    assert (await client.get("/no/such/route")).json()["error"]["code"] == "not_found"


async def test_connection_info_reports_ice_and_an_unreachable_server(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    assert (await client.get("/api/v1/livekit/connection-info")).status_code == 401
    reply = await client.get("/api/v1/livekit/connection-info", headers=auth())
    assert reply.status_code == 200
    body = reply.json()
    assert body["wsUrl"] == "ws://127.0.0.1:1"
    assert body["iceServers"] == [
        {"urls": ["turn:turn.test:3478"], "username": "livekit", "credential": "turnpassword"}
    ]
    assert body["server"] == "unreachable"


async def test_healthz(client: httpx.AsyncClient) -> None:
    reply = await client.get("/healthz")
    assert reply.status_code == 200 and reply.json() == {"status": "ok", "database": "ok"}


async def test_webhook_signature_is_verified(client: httpx.AsyncClient, settings: Settings) -> None:
    event = {"event": "room_started", "room": {"name": "meeting-1"}, "id": "EV_1"}
    body = json.dumps({**event, "createdAt": int(time.time())})
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()

    def signed(secret: str) -> str:
        return api.AccessToken(settings.livekit_api_key, secret).with_sha256(digest).to_jwt()

    good = signed(settings.livekit_api_secret.get_secret_value())
    url = "/api/v1/livekit/webhook"
    headers = {"Content-Type": "application/webhook+json"}
    ok = await client.post(url, content=body, headers={**headers, "Authorization": good})
    assert ok.status_code == 200, ok.text
    for auth_header in [signed("x" * 40), "", "garbage"]:
        bad = await client.post(
            url, content=body, headers={**headers, "Authorization": auth_header}
        )
        assert bad.status_code == 401, bad.text
    tampered = body.replace("meeting-1", "meeting-2")
    reply = await client.post(url, content=tampered, headers={**headers, "Authorization": good})
    assert reply.status_code == 401


@pytest.mark.parametrize("name", ["x" * 201, 42, ["a"], ""])
async def test_bad_name_claims_get_401(client: httpx.AsyncClient, name: object) -> None:
    token = jwt.encode({"sub": "alice", "name": name, "exp": int(time.time()) + 60}, APP_SECRET)
    reply = await client.post(
        "/api/v1/meetings", json={"title": "t"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 401
    assert "name" in reply.json()["error"]["message"]


async def test_clients_get_the_public_url_and_the_service_keeps_its_own(settings: Settings) -> None:
    """LIVEKIT_PUBLIC_URL is what browsers are handed; LIVEKIT_URL stays the service's link."""
    split = settings.model_copy(update={"livekit_public_url": "wss://meet.example.test"})
    headers = {"Authorization": f"Bearer {mint_app_token(APP_SECRET, 'alice', None, 600)}"}
    async with running_app(split) as (_, client):
        meeting = await _meeting(client, lambda *_: headers)
        token = await client.post(
            "/api/v1/livekit/token", json={"meetingId": meeting["id"]}, headers=headers
        )
        info = await client.get("/api/v1/livekit/connection-info", headers=headers)
    assert token.json()["wsUrl"] == "wss://meet.example.test"
    assert info.json()["wsUrl"] == "wss://meet.example.test"
    # The health probe behind connection-info went to LIVEKIT_URL, where nothing listens.
    assert info.json()["server"] == "unreachable"
