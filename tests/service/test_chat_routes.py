"""Chat history and exports over HTTP: who may read, privacy, paging, both export forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx

from talkplatform_agents.config import Settings
from talkplatform_agents.store import Database
from talkplatform_agents.store.chat import ChatRepository

Auth = Callable[..., dict[str, str]]


async def _seed(settings: Settings, meeting_id: str) -> None:
    db = Database(settings.database_url)
    chat = ChatRepository(db)
    now = dt.datetime.now(dt.UTC)
    try:
        await chat.record_participants(meeting_id, ["bob", "carl"])
        for i in range(5):
            await chat.save(
                meeting_id, f"m{i}", sender="bob", sender_name="Bob", text=f"t{i}", sent_at=now
            )
        await chat.save(
            meeting_id,
            "dm",
            sender="bob",
            sender_name="Bob",
            text="to carl",
            sent_at=now,
            recipients=["carl"],
        )
        await chat.save(
            meeting_id, "multi", sender="carl", sender_name=None, text="a\nb", sent_at=now
        )
        await chat.delete(meeting_id, "m0", by="alice")
        await chat.add_reaction(
            meeting_id, "r", sender="carl", emoji="👍", target="m1", sent_at=now
        )
    finally:
        await db.aclose()


async def _meeting(client: httpx.AsyncClient, auth: Auth, **settings: object) -> str:
    reply = await client.post(
        "/api/v1/meetings", json={"title": "T", "settings": settings}, headers=auth()
    )
    assert reply.status_code == 201
    return str(reply.json()["id"])


async def test_readers_privacy_and_paging(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    mid = await _meeting(client, auth)
    await _seed(settings, mid)
    url = f"/api/v1/meetings/{mid}/chat"
    outsider = await client.get(url, headers=auth("eve", "Eve"))
    assert outsider.status_code == 403 and "participants" in outsider.json()["error"]["message"]
    assert (await client.get("/api/v1/meetings/nope/chat", headers=auth())).status_code == 404
    assert (await client.get(url)).status_code == 401

    carl = (await client.get(url, headers=auth("carl", "Carl"))).json()["messages"]
    assert [m["id"] for m in carl] == ["m0", "m1", "m2", "m3", "m4", "dm", "multi"]
    assert carl[0]["deleted"] and carl[0]["message"] is None and carl[0]["deletedBy"] == "alice"
    assert carl[5]["private"] and carl[5]["recipients"] == ["carl"]
    host = (await client.get(url, headers=auth())).json()["messages"]
    assert "dm" not in [m["id"] for m in host]  # the default policy: private stays private

    page = (await client.get(url, params={"limit": 3}, headers=auth("carl"))).json()
    assert [m["id"] for m in page["messages"]] == ["m4", "dm", "multi"]
    older = (
        await client.get(
            url, params={"limit": 3, "before": page["nextBefore"]}, headers=auth("carl")
        )
    ).json()
    assert [m["id"] for m in older["messages"]] == ["m1", "m2", "m3"]
    bad = await client.get(url, params={"limit": 0}, headers=auth("carl"))
    assert bad.status_code == 422


async def test_exports_are_for_hosts_and_follow_the_policy(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    mid = await _meeting(client, auth, chat={"hostsSeePrivate": True})
    await _seed(settings, mid)
    url = f"/api/v1/meetings/{mid}/chat/export"
    assert (await client.get(url, headers=auth("bob", "Bob"))).status_code == 403
    exported = await client.get(url, headers=auth())
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    body = exported.json()
    assert [m["id"] for m in body["messages"]] == ["m0", "m1", "m2", "m3", "m4", "dm", "multi"]
    assert body["reactions"] == {"meeting": {"👍": 1}, "messages": {"m1": {"👍": 1}}}
    text = await client.get(url, params={"format": "text"}, headers=auth())
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert "Bob (bob): (deleted by alice)" in lines[2]
    assert "Bob (bob) [private to carl]: to carl" in lines[7]
    assert lines[8].endswith("carl: a") and lines[9] == "    b"
    bad = await client.get(url, params={"format": "xml"}, headers=auth())
    assert bad.status_code == 422
