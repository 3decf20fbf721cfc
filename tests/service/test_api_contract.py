"""What the schema fuzzer (tests/fuzz) found, each pinned down: bounded integers, the error
answers the OpenAPI document declares, a 405's Allow, the reports a host reads after the
meeting has ended, and a token request with the database gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.service import create_app
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.chat import MAX_SEQ, ChatRepository

Auth = Callable[..., dict[str, str]]


async def _meeting(client: httpx.AsyncClient, auth: Auth, **settings: Any) -> str:
    reply = await client.post(
        "/api/v1/meetings", json={"title": "Standup", "settings": settings}, headers=auth()
    )
    assert reply.status_code == 201, reply.text
    meeting_id: str = reply.json()["id"]
    return meeting_id


async def test_chat_pages_before_a_seq_out_of_range_are_a_422(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await _meeting(client, auth)
    for before in (MAX_SEQ + 1, 2**64, 0):
        reply = await client.get(f"/api/v1/meetings/{mid}/chat?before={before}", headers=auth())
        assert reply.status_code == 422, (before, reply.text)
        [issue] = reply.json()["error"]["details"]
        assert issue["loc"] == ["query", "before"]
    reply = await client.get(f"/api/v1/meetings/{mid}/chat?before={MAX_SEQ}", headers=auth())
    assert reply.status_code == 200, reply.text


async def test_the_store_reads_before_any_seq_at_all(settings: Settings) -> None:
    """The store's own bound: a seq past any the column can hold means "all of them"."""
    db = Database(settings.database_url)
    try:
        meeting = await MeetingRepository(db).create(
            title="t", settings={}, host_user_id="alice", host_name="Alice"
        )
        chat = ChatRepository(db)
        saved = await chat.save(
            meeting.id,
            "m1",
            sender="alice",
            sender_name=None,
            text="hi",
            sent_at=meeting.created_at,
        )
        for before in (MAX_SEQ, MAX_SEQ + 1, 2**70):
            history = await chat.history(meeting.id, "alice", before=before)
            assert [m.seq for m in history] == [saved[1].seq]
    finally:
        await db.aclose()


async def test_a_405_says_which_methods_the_path_takes(client: httpx.AsyncClient) -> None:
    reply = await client.delete("/api/v1/meetings")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, POST"  # POST creates, GET lists (calendar)
    assert reply.json()["error"]["code"] == "method_not_allowed"


async def test_a_body_that_is_not_json_is_a_declared_400(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    reply = await client.post(
        "/api/v1/meetings",
        content=b"\xff\xfe{",
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert reply.status_code == 400, reply.text  # not even text: FastAPI's own 400
    assert reply.json()["error"]["code"] == "invalid_request"
    assert "400" in _document()["paths"]["/api/v1/meetings"]["post"]["responses"]


async def test_settings_no_door_could_read_are_refused_at_creation(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    reply = await client.post(
        "/api/v1/meetings",
        json={"title": "t", "settings": {"waiting_room": "perhaps"}},
        headers=auth(),
    )
    assert reply.status_code == 422, reply.text
    [issue] = reply.json()["error"]["details"]
    assert "settings.waiting_room" in issue["msg"]


async def test_a_host_reads_attendance_and_exports_the_chat_after_the_end(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    mid = await _meeting(client, auth)
    db = Database(settings.database_url)
    try:
        # Ended in the store: the route would also close the room, on no server here.
        await MeetingRepository(db).end(mid)
        await ChatRepository(db).record_participants(mid, ["bob"])
    finally:
        await db.aclose()
    attendance = f"/api/v1/meetings/{mid}/attendance"
    reply = await client.get(attendance, headers=auth())
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"attendance": []}
    reply = await client.get(f"/api/v1/meetings/{mid}/chat/export", headers=auth())
    assert reply.status_code == 200, reply.text
    assert reply.json()["meeting"]["id"] == mid
    reply = await client.get(f"/api/v1/meetings/{mid}/chat", headers=auth("bob"))
    assert reply.status_code == 200, reply.text
    # Still for hosts only; and what acts on a meeting still refuses an ended one.
    forbidden = await client.get(attendance, headers=auth("bob"))
    assert forbidden.status_code == 403, forbidden.text
    assert (await client.get("/api/v1/meetings/nope/attendance", headers=auth())).status_code == 404
    for path in ("waiting-room", "lock"):
        method = "GET" if path == "waiting-room" else "POST"
        gone = await client.request(method, f"/api/v1/meetings/{mid}/{path}", headers=auth())
        assert gone.status_code == 410, (path, gone.text)
    token = await client.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth())
    assert token.status_code == 410, token.text


async def test_a_token_request_with_the_database_closed_is_a_503(
    settings: Settings, auth: Auth
) -> None:
    """The service's database closed under it (as at shutdown, with requests in flight):
    the token endpoint says "unavailable, try again" in its JSON body, never a 500."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as http,
    ):
        created = await http.post("/api/v1/meetings", json={"title": "t"}, headers=auth())
        await app.state.context.db.aclose()
        reply = await http.post(
            "/api/v1/livekit/token", json={"meetingId": created.json()["id"]}, headers=auth()
        )
    assert reply.status_code == 503, reply.text
    assert reply.json() == {"error": {"code": "unavailable", "message": "the database is closed"}}


def _document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return document


@pytest.mark.parametrize("status", ["401", "422", "429"])
def test_every_api_route_declares_its_errors_with_the_one_error_body(status: str) -> None:
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in _document()["paths"].items():
        if not path.startswith("/api/") or path == "/api/v1/livekit/webhook":
            continue
        if path == "/api/v1/dev/sign-in" and status == "401":
            continue  # the development login itself (APP_ENV=development only)
        for method, operation in operations.items():
            declared = operation["responses"].get(status)
            assert declared is not None, (method, path, status)
            assert declared["content"]["application/json"]["schema"] == error_body


def test_rate_limited_answers_declare_retry_after() -> None:
    paths = _document()["paths"]
    for path in ("/api/v1/livekit/token", "/api/v1/greenroom/token"):
        headers = paths[path]["post"]["responses"]["429"]["headers"]
        assert headers["Retry-After"]["schema"]["type"] == "integer"


def test_a_token_request_declares_the_doors_answers() -> None:
    responses = _document()["paths"]["/api/v1/livekit/token"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "410", "422", "429", "502", "503"} <= set(responses)
