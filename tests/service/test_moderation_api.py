"""The waiting-room and host-control endpoints' error cases (the login every one of them
needs is checked for all routes in test_api_errors.py). Each check runs before the
service would talk to livekit-server, so none needs one (the happy paths run end to end
in tests/integration/test_waiting_room.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

Auth = Callable[..., dict[str, str]]

_POSTS = [
    "/waiting-room/admit-all",
    "/waiting-room/g1/admit",
    "/waiting-room/g1/deny",
    "/participants/g1/return-to-waiting",
    "/participants/g1/mute",
    "/mute-all",
    "/participants/g1/remove",
    "/lock",
    "/unlock",
    "/end",
]
_GETS = ["/waiting-room", "/waiting-room/stats", "/attendance"]


async def _meeting(client: httpx.AsyncClient, auth: Auth, **settings: object) -> str:
    reply = await client.post(
        "/api/v1/meetings", json={"title": "t", "settings": settings}, headers=auth("alice")
    )
    assert reply.status_code == 201
    return str(reply.json()["id"])


@pytest.mark.parametrize("path", _POSTS + _GETS)
async def test_non_hosts_are_refused(client: httpx.AsyncClient, auth: Auth, path: str) -> None:
    mid = await _meeting(client, auth)
    method = client.get if path in _GETS else client.post
    reply = await method(f"/api/v1/meetings/{mid}{path}", headers=auth("mallory"))
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", _POSTS + _GETS)
async def test_unknown_meetings_are_404(client: httpx.AsyncClient, auth: Auth, path: str) -> None:
    method = client.get if path in _GETS else client.post
    reply = await method(f"/api/v1/meetings/nope{path}", headers=auth("alice"))
    assert reply.status_code == 404


async def test_admitting_someone_not_waiting_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await _meeting(client, auth)
    reply = await client.post(f"/api/v1/meetings/{mid}/waiting-room/g1/admit", headers=auth())
    assert reply.status_code == 404
    assert reply.json()["error"]["identity"] == "g1"
    denied = await client.post(f"/api/v1/meetings/{mid}/waiting-room/g1/deny", headers=auth())
    assert denied.status_code == 404


async def test_waiting_room_queue_through_rest(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await _meeting(client, auth, waiting_room=True)
    knock = await client.post(
        "/api/v1/livekit/token", json={"meetingId": mid}, headers=auth("g1", "G")
    )
    assert knock.status_code == 200 and knock.json()["status"] == "waiting"
    assert knock.json()["room"] == f"meeting-{mid}-lobby"
    queue = await client.get(f"/api/v1/meetings/{mid}/waiting-room", headers=auth())
    assert [w["identity"] for w in queue.json()["waiting"]] == ["g1"]
    stats = await client.get(f"/api/v1/meetings/{mid}/waiting-room/stats", headers=auth())
    assert stats.json()["counts"]["waiting"] == 1


async def test_bad_bodies_are_422(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await _meeting(client, auth)
    base = f"/api/v1/meetings/{mid}"
    cases = [
        (f"{base}/waiting-room/message", {"text": ""}),
        (f"{base}/waiting-room/message", {"text": "hi", "extra": 1}),
        (f"{base}/participants/g1/mute", {"source": "telepathy"}),
        (f"{base}/host", {}),
        (f"{base}/cohosts", {"identity": ""}),
        (f"{base}/waiting-room/g1/deny", {"reason": "x" * 501}),
    ]
    for path, body in cases:
        reply = await client.post(path, json=body, headers=auth())
        assert reply.status_code == 422, (path, reply.text)


async def test_settings_patch(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await _meeting(client, auth)
    path = f"/api/v1/public-meetings/{mid}"
    assert (await client.patch(path, json={"settings": {"locked": True}})).status_code == 401
    not_host = await client.patch(path, json={"settings": {"locked": True}}, headers=auth("bob"))
    assert not_host.status_code == 403
    bad = await client.patch(path, json={"settings": {"auto_admit": "everyone"}}, headers=auth())
    assert bad.status_code == 400
    missing = await client.patch(
        "/api/v1/public-meetings/nope", json={"settings": {}}, headers=auth()
    )
    assert missing.status_code == 404
    ok = await client.patch(
        path, json={"settings": {"waiting_room": True, "theme": "dark"}}, headers=auth()
    )
    assert ok.status_code == 200
    assert ok.json()["settings"] == {"waiting_room": True, "theme": "dark"}


async def test_locked_meeting_refuses_new_guests(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await _meeting(client, auth, locked=True)
    reply = await client.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth("g"))
    assert reply.status_code == 403 and reply.json()["error"]["reason"] == "locked"
    host = await client.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth())
    assert host.status_code == 200 and host.json()["status"] == "joined"


async def test_admit_lands_in_the_store_even_when_livekit_is_unreachable(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """Messages to the lobby are best effort; the decision is not."""
    mid = await _meeting(client, auth, waiting_room=True)
    for guest in ("g1", "g2"):
        knock = await client.post(
            "/api/v1/livekit/token", json={"meetingId": mid}, headers=auth(guest, guest)
        )
        assert knock.json()["status"] == "waiting"
    some = await client.post(
        f"/api/v1/meetings/{mid}/waiting-room/admit",
        json={"identities": ["g1", "nobody", "g1"]},
        headers=auth(),
    )
    assert some.status_code == 200
    assert some.json() == {"admitted": ["g1"], "notWaiting": ["nobody"]}
    joined = await client.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth("g1"))
    assert joined.json()["status"] == "joined" and joined.json()["room"] == f"meeting-{mid}"
    empty = await client.post(
        f"/api/v1/meetings/{mid}/waiting-room/admit", json={"identities": []}, headers=auth()
    )
    assert empty.status_code == 422


async def test_a_waiting_guests_note_is_checked_limited_and_never_said_sent_unsent(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await _meeting(client, auth, waiting_room=True)
    path = f"/api/v1/meetings/{mid}/waiting-room/note"
    unknown = await client.post(
        "/api/v1/meetings/nope/waiting-room/note", json={"text": "hi"}, headers=auth("g9")
    )
    assert unknown.status_code == 404
    # Not waiting (never knocked): a clear 409, not a silent drop.
    stranger = await client.post(path, json={"text": "hi"}, headers=auth("g9", "G"))
    assert stranger.status_code == 409 and stranger.json()["error"]["status"] is None
    for bad in ({"text": ""}, {"text": "x" * 2001}, {"text": "hi", "to": "all"}, {}):
        assert (await client.post(path, json=bad, headers=auth("g1"))).status_code == 422
    knock = await client.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth("g1"))
    assert knock.json()["status"] == "waiting"
    # Nothing listens at LIVEKIT_URL here: the relay fails, and the guest is told so.
    for _ in range(5):
        unsent = await client.post(path, json={"text": "it is Gus"}, headers=auth("g1", "G"))
        assert unsent.status_code == 503, unsent.text
    flood = await client.post(path, json={"text": "it is Gus"}, headers=auth("g1", "G"))
    assert flood.status_code == 429 and int(flood.headers["Retry-After"]) >= 1
    # The limit is the sender's own.
    other = await client.post(path, json={"text": "hi"}, headers=auth("g2", "H"))
    assert other.status_code == 409


async def test_phones_not_set_up_are_a_409_and_bad_numbers_a_422(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await _meeting(client, auth)
    dial_in = await client.get(f"/api/v1/meetings/{mid}/dial-in", headers=auth())
    assert dial_in.status_code == 409 and "SIP_DIAL_IN_NUMBERS" in dial_in.text
    out = f"/api/v1/meetings/{mid}/dial-out"
    assert (
        await client.post(out, json={"number": "+15550100200"}, headers=auth())
    ).status_code == 409
    for bad in ({"number": ""}, {"number": "+1" * 20}, {}, {"number": "+15550100200", "x": 1}):
        assert (await client.post(out, json=bad, headers=auth())).status_code == 422
