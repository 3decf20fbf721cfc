"""livekit-server's webhooks, signed with the service's key and verified by livekit-api's
own WebhookReceiver: a replay (same body, same signature) is acknowledged and ignored, by
any service process on the database; a stale event is refused; a failed one is retried."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from livekit import api
from sqlalchemy import func, select

from talkplatform_agents.config import Settings
from talkplatform_agents.errors import Unavailable
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.security import WebhookGate
from talkplatform_agents.store import Database, WebhookEventRepository
from talkplatform_agents.store.models import WebhookEvent

from .conftest import running_app

Auth = Callable[..., dict[str, str]]
URL = "/api/v1/livekit/webhook"


def _event(event: str, room: str, event_id: str, **fields: Any) -> str:
    body = {"event": event, "room": {"name": room}, "id": event_id,
            "createdAt": int(time.time()), **fields}  # fmt: skip
    return json.dumps(body)


def _signed(settings: Settings, body: str) -> dict[str, str]:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    secret = settings.livekit_api_secret.get_secret_value()
    token = api.AccessToken(settings.livekit_api_key, secret).with_sha256(digest).to_jwt()
    return {"Authorization": token, "Content-Type": "application/webhook+json"}


def _joined(room: str, event_id: str, sid: str = "PA_bob") -> str:
    participant = {"sid": sid, "identity": "bob", "name": "Bob", "joinedAt": int(time.time())}
    return _event("participant_joined", room, event_id, participant=participant)


async def _meeting(http: httpx.AsyncClient, auth: Auth) -> str:
    reply = await http.post("/api/v1/meetings", json={"title": "t"}, headers=auth("alice"))
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _joins_seen(monkeypatch: pytest.MonkeyPatch, context: ServiceContext) -> list[str]:
    """The rooms the reconciler was told a user joined."""
    seen: list[str] = []

    def participant_joined(room: str, is_agent: bool) -> None:
        seen.append(room)

    monkeypatch.setattr(context.reconciler, "participant_joined", participant_joined)
    return seen


async def test_a_replay_is_acknowledged_and_ignored(
    service: tuple[FastAPI, httpx.AsyncClient],
    settings: Settings,
    auth: Auth,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, http = service
    context: ServiceContext = app.state.context
    joins = _joins_seen(monkeypatch, context)
    mid = await _meeting(http, auth)
    room = f"meeting-{mid}"

    started = _event("room_started", room, "EV_started")
    assert (await http.post(URL, content=started, headers=_signed(settings, started))).json() == {
        "status": "ok"
    }
    meeting = await context.meetings.get(mid)
    assert meeting is not None and meeting.room_started_at is not None
    version = meeting.version
    joined = _joined(room, "EV_joined")
    first = await http.post(URL, content=joined, headers=_signed(settings, joined))
    assert first.status_code == 200 and first.json() == {"status": "ok"}
    assert joins == [room]  # the reconciler heard of it
    [attended] = await context.attendance.of_meeting(mid)  # and the store
    assert attended.user_id == "bob"

    for body in (started, joined, started):  # the same bodies, the same signatures
        again = await http.post(URL, content=body, headers=_signed(settings, body))
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert joins == [room]
    after = await context.meetings.get(mid)
    assert after is not None and after.version == version  # no second room_started

    # The same event under a new id is a new event.
    rejoined = _joined(room, "EV_joined_2", sid="PA_bob_2")
    reply = await http.post(URL, content=rejoined, headers=_signed(settings, rejoined))
    assert reply.json() == {"status": "ok"} and joins == [room, room]


async def test_a_replay_to_another_service_process_is_ignored(
    service: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    _, http = service
    body = _event("room_started", "meeting-nobody", "EV_shared")
    assert (await http.post(URL, content=body, headers=_signed(settings, body))).status_code == 200
    async with running_app(settings) as (_, other):  # a second process on the same database
        reply = await other.post(URL, content=body, headers=_signed(settings, body))
    assert reply.status_code == 200 and reply.json() == {"status": "duplicate"}


@pytest.mark.parametrize(
    ("created_s", "event_id", "says"),
    [
        (-301, "EV_old", " s ago"),
        (400, "EV_old", " s ahead"),  # a clock far off is no better
        (None, "EV_old", "no createdAt"),
        (0, "", "no id"),
    ],
)
async def test_a_stale_or_unidentified_event_is_refused(
    service: tuple[FastAPI, httpx.AsyncClient],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    created_s: int | None,
    event_id: str,
    says: str,
) -> None:
    _, http = service
    created = 0 if created_s is None else int(time.time()) + created_s
    fields = {"createdAt": created, "id": event_id}
    body = json.dumps({**json.loads(_event("room_started", "meeting-x", "EV_old")), **fields})
    with caplog.at_level(logging.INFO):
        reply = await http.post(URL, content=body, headers=_signed(settings, body))
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and says in error["message"]
    if event_id:
        assert error["reason"] == "stale" and "WEBHOOK_MAX_AGE_SECONDS" in error["message"]
        assert "refused as stale" in caplog.text
    # Nothing was recorded: the same id inside the window is a first sighting.
    fresh = _event("room_started", "meeting-x", "EV_old")
    assert (await http.post(URL, content=fresh, headers=_signed(settings, fresh))).json() == {
        "status": "ok"
    }


async def test_an_event_whose_handling_failed_is_taken_back(
    service: tuple[FastAPI, httpx.AsyncClient],
    settings: Settings,
    auth: Auth,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, http = service
    context: ServiceContext = app.state.context
    _joins_seen(monkeypatch, context)
    mid = await _meeting(http, auth)
    body = _joined(f"meeting-{mid}", "EV_retried")
    real_joined = context.attendance.joined

    async def database_down(*_: object) -> None:
        raise Unavailable("the database is unavailable: test")

    monkeypatch.setattr(context.attendance, "joined", database_down)
    failed = await http.post(URL, content=body, headers=_signed(settings, body))
    assert failed.status_code == 503
    monkeypatch.setattr(context.attendance, "joined", real_joined)
    # livekit-server's retry (or a replay) of an event never handled is handled.
    retried = await http.post(URL, content=body, headers=_signed(settings, body))
    assert retried.json() == {"status": "ok"}
    assert [a.user_id for a in await context.attendance.of_meeting(mid)] == ["bob"]


async def _stored(db: Database) -> int:
    async with db.session() as session:
        return int(
            (await session.execute(select(func.count()).select_from(WebhookEvent))).scalar_one()
        )


async def test_the_gate_prunes_what_no_replay_can_match(settings: Settings) -> None:
    db = Database(settings.database_url)
    now = [time.time()]
    gate = WebhookGate(
        WebhookEventRepository(db), max_age_s=300, wall_clock=lambda: now[0], prune_every_s=60
    )

    def event(event_id: str) -> api.WebhookEvent:
        return api.WebhookEvent(event="room_started", id=event_id, created_at=int(now[0]))

    try:
        assert await gate.first_seen(event("EV_1"))
        now[0] += 30  # not yet time to prune again
        assert await gate.first_seen(event("EV_2"))
        now[0] += 2 * 300 + 60 + 1  # EV_1 and EV_2 can no longer be replayed: both stale
        assert await gate.first_seen(event("EV_3"))  # and this sighting prunes
        deadline = time.monotonic() + 30
        while await _stored(db) != 1:
            assert time.monotonic() < deadline, "the prune never ran"
            await asyncio.sleep(0.05)
        assert not await gate.first_seen(event("EV_3"))
    finally:
        await gate.aclose()
        await db.aclose()
