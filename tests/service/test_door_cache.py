"""The token endpoint caches each meeting (its settings, its members' roles) and checks the
stored version on every request: a host's change is seen by the very next token request,
whether this process made it (REST) or another one did (the moderator bot answering an RPC,
a second service process: here a second engine on the same database)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from talkplatform_agents.roles import Role
from talkplatform_agents.store import Database, MeetingRepository, WaitingRepository, WaitingStatus

from .conftest import create_meeting

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def elsewhere(store: Database) -> Database:
    """A second connection to the service's database: another process's writes."""
    return store


async def _token(client: httpx.AsyncClient, auth: Auth, mid: str, user: str) -> httpx.Response:
    return await client.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth(user))


async def _entry(client: httpx.AsyncClient, auth: Auth, mid: str, user: str) -> str:
    """joined, waiting, or the 403's reason."""
    reply = await _token(client, auth, mid, user)
    if reply.status_code == 403:
        return str(reply.json()["error"]["reason"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["status"])


async def _role(client: httpx.AsyncClient, auth: Auth, mid: str, user: str) -> str:
    reply = await _token(client, auth, mid, user)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["metadata"]["role"])


async def test_a_lock_refuses_the_very_next_join(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await create_meeting(client, auth)
    assert await _entry(client, auth, mid, "bob") == "joined"  # the meeting is now cached
    locked = await client.post(f"/api/v1/meetings/{mid}/lock", headers=auth("alice"))
    assert locked.status_code == 200, locked.text
    assert await _entry(client, auth, mid, "carol") == "locked"
    assert await _entry(client, auth, mid, "bob") == "locked"  # never admitted: no reconnect
    assert await _entry(client, auth, mid, "alice") == "joined"  # hosts always enter
    unlocked = await client.post(f"/api/v1/meetings/{mid}/unlock", headers=auth("alice"))
    assert unlocked.status_code == 200, unlocked.text
    assert await _entry(client, auth, mid, "carol") == "joined"


async def test_a_settings_change_is_seen_by_the_very_next_request(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await create_meeting(client, auth)
    assert await _entry(client, auth, mid, "bob") == "joined"

    async def patch(**changes: Any) -> None:
        reply = await client.patch(
            f"/api/v1/public-meetings/{mid}", json={"settings": changes}, headers=auth("alice")
        )
        assert reply.status_code == 200, reply.text

    await patch(waiting_room=True)
    assert await _entry(client, auth, mid, "carol") == "waiting"
    await patch(auto_admit=["dave"])
    assert await _entry(client, auth, mid, "dave") == "joined"
    assert await _entry(client, auth, mid, "erin") == "waiting"


async def test_changes_from_another_process_are_seen_by_the_very_next_request(
    client: httpx.AsyncClient, auth: Auth, elsewhere: Database
) -> None:
    mid = await create_meeting(client, auth)
    bot = MeetingRepository(elsewhere)  # as the moderator bot changes things
    assert await _role(client, auth, mid, "bob") == "participant"

    await bot.set_role(mid, "bob", Role.COHOST, "Bob")  # add co-host
    assert await _role(client, auth, mid, "bob") == "cohost"

    await bot.pass_host(mid, "alice", "bob")
    assert await _role(client, auth, mid, "bob") == "host"
    assert await _role(client, auth, mid, "alice") == "cohost"

    await bot.update_settings(mid, {"locked": True})
    assert await _entry(client, auth, mid, "carol") == "locked"
    await bot.update_settings(mid, {"locked": False})
    assert await _entry(client, auth, mid, "carol") == "joined"

    await bot.end(mid)
    ended = await _token(client, auth, mid, "carol")
    assert ended.status_code == 410, ended.text


async def test_a_removal_elsewhere_refuses_the_very_next_request(
    client: httpx.AsyncClient, auth: Auth, elsewhere: Database
) -> None:
    mid = await create_meeting(client, auth)
    assert await _entry(client, auth, mid, "bob") == "joined"
    await WaitingRepository(elsewhere).put_back(mid, "bob", "Bob", "alice", WaitingStatus.REMOVED)
    assert await _entry(client, auth, mid, "bob") == "removed"


async def test_the_answer_says_where_the_time_went(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await create_meeting(client, auth, waiting_room=True)
    joined = await _token(client, auth, mid, "alice")
    waiting = await _token(client, auth, mid, "bob")

    def stages(reply: httpx.Response) -> list[str]:
        timing = reply.headers["server-timing"]
        return [item.strip().partition(";")[0] for item in timing.split(",")]

    assert stages(joined) == ["auth", "store", "policy", "mint"]
    assert stages(waiting) == ["auth", "store", "policy", "write", "mint"]
