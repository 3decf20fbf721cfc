"""The waiting room and host controls end to end: real server, the moderator bot, the
token service, synthetic hosts and guests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from livekit import rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import waiting as proto
from talkplatform_agents.lk.naming import WAITING_ROOM_AGENT_NAME
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant

from .conftest import bot_in, post_json, until

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _meeting(api: httpx.AsyncClient, auth: Auth, host: str, **settings: Any) -> str:
    created = await post_json(
        api, "/api/v1/meetings", auth(host, host.title()), {"title": "t", "settings": settings}
    )
    return str(created["id"])


async def _token(api: httpx.AsyncClient, auth: Auth, user: str, mid: str) -> dict[str, Any]:
    return await post_json(
        api, "/api/v1/livekit/token", auth(user, user.title()), {"meetingId": mid}
    )


@asynccontextmanager
async def _joined(
    grant: dict[str, Any], *, audio: bool = False, url: str | None = None
) -> AsyncIterator[SyntheticParticipant]:
    config = ParticipantConfig(
        url=url or grant["wsUrl"], token=grant["token"], publish_audio=audio, publish_video=False
    )
    async with SyntheticParticipant(config) as participant:
        yield participant


async def _bot(participant: SyntheticParticipant) -> str:
    return await bot_in(participant.room, WAITING_ROOM_AGENT_NAME)


async def _next(participant: SyntheticParticipant, topic: str, **match: Any) -> dict[str, Any]:
    """The next message on ``topic`` whose fields include ``match``."""
    async with asyncio.timeout(60):  # the lobby bot's process may still be starting
        while True:
            message = json.loads((await participant.next_data(topic)).payload)
            if all(message.get(k) == v for k, v in match.items()):
                return dict(message)


async def test_knock_admit_and_a_waiting_guest_sees_nothing_of_the_meeting(
    api: httpx.AsyncClient, user_auth: Auth
) -> None:
    host, guest, outsider = _uid("host"), _uid("guest"), _uid("outsider")
    mid = await _meeting(api, user_auth, host, waiting_room=True)
    host_grant = await _token(api, user_auth, host, mid)
    assert host_grant["status"] == "joined" and host_grant["room"] == f"meeting-{mid}"

    async with _joined(host_grant, audio=True) as host_p:
        bot = await _bot(host_p)
        guest_grant = await _token(api, user_auth, guest, mid)
        assert guest_grant["status"] == "waiting"
        assert guest_grant["room"] == f"meeting-{mid}-lobby"
        assert guest_grant["metadata"]["permissions"]["canPublish"] is False

        async with _joined(guest_grant) as guest_p:
            assert (await _next(guest_p, proto.TOPIC_STATUS))["status"] == "waiting"
            knock = await _next(host_p, proto.TOPIC_QUEUE, event="knock")
            assert knock["identity"] == guest
            assert [w["identity"] for w in knock["waiting"]] == [guest]
            assert knock["waiting"][0]["name"] == guest.title() and knock["waiting"][0]["since"]

            # Room-wide data in the meeting never reaches the lobby; nor do its people.
            await host_p.send_data(b"secret", topic="meeting.broadcast")
            listing = await api.get(f"/api/v1/meetings/{mid}/waiting-room", headers=user_auth(host))
            assert [w["identity"] for w in listing.json()["waiting"]] == [guest]
            stats = await api.get(
                f"/api/v1/meetings/{mid}/waiting-room/stats", headers=user_auth(host)
            )
            assert stats.json()["counts"]["waiting"] == 1
            assert stats.json()["longestWaitSeconds"] >= 0

            # Only hosts decide, by the store's roles: through REST and through RPC.
            refused = await api.post(
                f"/api/v1/meetings/{mid}/waiting-room/{guest}/admit", headers=user_auth(outsider)
            )
            assert refused.status_code == 403
            unknown = await api.post(
                f"/api/v1/meetings/{mid}/waiting-room/nobody/admit", headers=user_auth(host)
            )
            assert unknown.status_code == 404
            with pytest.raises(rtc.RpcError) as bad:
                await host_p.rpc(bot, proto.RPC_WAITING_ADMIT, "{not json")
            assert bad.value.code == 2400

            answer = json.loads(
                await host_p.rpc(bot, proto.RPC_WAITING_ADMIT, json.dumps({"identity": guest}))
            )
            assert answer == {"identity": guest, "status": "admitted", "changed": True}
            admitted = await _next(guest_p, proto.TOPIC_STATUS, status="admitted")
            assert admitted["room"] == f"meeting-{mid}"
            again = await api.post(
                f"/api/v1/meetings/{mid}/waiting-room/{guest}/admit", headers=user_auth(host)
            )
            assert again.status_code == 200 and again.json()["changed"] is False

            # The broadcast went out before several round trips through the server (the
            # listing, the RPCs, the admission the guest has read since): had the server
            # misdirected it to the lobby, it would be queued here by now.
            assert all(
                p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                for p in guest_p.room.remote_participants.values()
            )
            assert not any(p.track_publications for p in guest_p.room.remote_participants.values())
            topics = {m.topic for m in list(guest_p.data._queue)}  # type: ignore[attr-defined]
            assert "meeting.broadcast" not in topics

        async with _joined({**admitted, "token": admitted["token"]}) as in_meeting:
            assert in_meeting.room.name == f"meeting-{mid}"
            await until(lambda: guest in host_p.room.remote_participants, 15)
        # The guest's token request now leads straight in.
        assert (await _token(api, user_auth, guest, mid))["status"] == "joined"

    # Webhooks recorded the sessions: the guest in the lobby, then in the meeting.
    async def sessions() -> list[dict[str, Any]] | None:
        reply = await api.get(f"/api/v1/meetings/{mid}/attendance", headers=user_auth(host))
        rows = [r for r in reply.json()["attendance"] if r["identity"] == guest]
        return rows if len(rows) == 2 and all(r["leftAt"] for r in rows) else None

    rows = await _until_async(sessions, 30)
    assert {r["room"] for r in rows} == {"lobby", "meeting"}


async def _until_async(probe: Callable[[], Any], timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    return value


async def test_deny_admit_all_and_message(api: httpx.AsyncClient, user_auth: Auth) -> None:
    host = _uid("host")
    guests = [_uid("g") for _ in range(3)]
    mid = await _meeting(api, user_auth, host, waiting_room=True)
    async with _joined(await _token(api, user_auth, host, mid)) as host_p:
        bot = await _bot(host_p)
        grants = [await _token(api, user_auth, g, mid) for g in guests]
        assert all(g["status"] == "waiting" for g in grants)
        async with (
            _joined(grants[0]) as g0,
            _joined(grants[1]) as g1,
            _joined(grants[2]) as g2,
        ):
            for g in (g0, g1, g2):
                await _next(g, proto.TOPIC_STATUS, status="waiting")
            lobby_bot = await _bot(g1)
            await g1.send_data(b'{"text": "running late"}', topic=proto.TOPIC_CHAT, to=[lobby_bot])
            chat = await _next(host_p, proto.TOPIC_CHAT)
            assert chat == {
                "identity": guests[1],
                "name": guests[1].title(),
                "text": "running late",
            }
            sent = await api.post(
                f"/api/v1/meetings/{mid}/waiting-room/message",
                json={"text": "five minutes"},
                headers=user_auth(host),
            )
            assert sent.status_code == 200
            for g in (g0, g1, g2):
                assert (await _next(g, proto.TOPIC_MESSAGE))["text"] == "five minutes"

            denied = await api.post(
                f"/api/v1/meetings/{mid}/waiting-room/{guests[0]}/deny",
                json={"reason": "not invited"},
                headers=user_auth(host),
            )
            assert denied.status_code == 200
            status = await _next(g0, proto.TOPIC_STATUS, status="denied")
            assert status["reason"] == "not invited"
            await until(lambda: not g0.room.isconnected(), 15)  # the server dropped them
            refused = await api.post(
                "/api/v1/livekit/token", json={"meetingId": mid}, headers=user_auth(guests[0])
            )
            assert refused.status_code == 403 and refused.json()["error"]["reason"] == "denied"

            some = await api.post(
                f"/api/v1/meetings/{mid}/waiting-room/admit",
                json={"identities": [guests[1], "nobody"]},
                headers=user_auth(host),
            )
            assert some.json() == {"admitted": [guests[1]], "notWaiting": ["nobody"]}
            await _next(g1, proto.TOPIC_STATUS, status="admitted")
            answer = json.loads(await host_p.rpc(bot, proto.RPC_WAITING_ADMIT_ALL, "{}"))
            assert answer["admitted"] == [guests[2]]
            await _next(g2, proto.TOPIC_STATUS, status="admitted")


async def test_guests_wait_for_the_host_then_enter_when_the_host_arrives(
    api: httpx.AsyncClient, user_auth: Auth
) -> None:
    host, guest = _uid("host"), _uid("guest")
    mid = await _meeting(api, user_auth, host, join_before_host=False)
    grant = await _token(api, user_auth, guest, mid)
    assert grant["status"] == "waiting"
    async with _joined(grant) as guest_p:
        assert (await _next(guest_p, proto.TOPIC_STATUS))["status"] == "waiting_for_host"
        async with _joined(await _token(api, user_auth, host, mid)):
            admitted = await _next(guest_p, proto.TOPIC_STATUS, status="admitted")
            assert admitted["room"] == f"meeting-{mid}"


async def test_lock_and_settings_need_the_host(api: httpx.AsyncClient, user_auth: Auth) -> None:
    host, guest = _uid("host"), _uid("guest")
    mid = await _meeting(api, user_auth, host)
    patch = await api.patch(
        f"/api/v1/public-meetings/{mid}",
        json={"settings": {"waiting_room": "maybe"}},
        headers=user_auth(host),
    )
    assert patch.status_code == 400
    not_host = await api.patch(
        f"/api/v1/public-meetings/{mid}",
        json={"settings": {"locked": True}},
        headers=user_auth(guest),
    )
    assert not_host.status_code == 403
    assert (
        await api.post(f"/api/v1/meetings/{mid}/lock", headers=user_auth(guest))
    ).status_code == 403
    assert (
        await api.post(f"/api/v1/meetings/{mid}/lock", headers=user_auth(host))
    ).status_code == 200
    locked = await api.post(
        "/api/v1/livekit/token", json={"meetingId": mid}, headers=user_auth(guest)
    )
    assert locked.status_code == 403 and locked.json()["error"]["reason"] == "locked"
    assert (await _token(api, user_auth, host, mid))["status"] == "joined"  # hosts still enter
    await api.post(f"/api/v1/meetings/{mid}/unlock", headers=user_auth(host))
    assert (await _token(api, user_auth, guest, mid))["status"] == "joined"
    patched = await api.patch(
        f"/api/v1/public-meetings/{mid}",
        json={"settings": {"waiting_room": True, "auto_admit": ["example.com"]}},
        headers=user_auth(host),
    )
    assert patched.status_code == 200 and patched.json()["settings"]["waiting_room"] is True
    assert (await _token(api, user_auth, "ann@example.com", mid))["status"] == "joined"
    assert (await _token(api, user_auth, _uid("x"), mid))["status"] == "waiting"


async def test_host_controls(api: httpx.AsyncClient, user_auth: Auth) -> None:
    host, talker, other, third = _uid("host"), _uid("talker"), _uid("other"), _uid("third")
    mid = await _meeting(api, user_auth, host)
    base = f"/api/v1/meetings/{mid}"
    async with (
        _joined(await _token(api, user_auth, host, mid)) as host_p,
        _joined(await _token(api, user_auth, talker, mid), audio=True) as talker_p,
        _joined(await _token(api, user_auth, other, mid), audio=True) as other_p,
        _joined(await _token(api, user_auth, third, mid)) as third_p,
    ):
        bot = await _bot(host_p)

        def mic_muted(who: str) -> bool | None:
            remote = host_p.room.remote_participants.get(who)
            pubs = list(remote.track_publications.values()) if remote else []
            return bool(pubs) and all(p.muted for p in pubs)

        await until(lambda: talker in host_p.room.remote_participants and
                    host_p.room.remote_participants[talker].track_publications, 15)  # fmt: skip
        forbidden = await api.post(f"{base}/participants/{host}/mute", headers=user_auth(talker))
        assert forbidden.status_code == 403
        muted = await api.post(f"{base}/participants/{talker}/mute", headers=user_auth(host))
        assert muted.status_code == 200, muted.text
        await until(lambda: mic_muted(talker), 15)
        answer = json.loads(await host_p.rpc(bot, proto.RPC_HOST_MUTE_ALL, "{}"))
        assert other in answer["muted"] and host not in answer["muted"]
        await until(lambda: mic_muted(other), 15)
        with pytest.raises(rtc.RpcError) as not_host:
            await talker_p.rpc(bot, proto.RPC_HOST_MUTE_ALL, "{}")
        assert not_host.value.code == 2403

        # Co-host and pass host: the store, the attributes, the permissions.
        cohost = await api.post(
            f"{base}/cohosts", json={"identity": third}, headers=user_auth(host)
        )
        assert cohost.status_code == 200
        await until(lambda: third_p.room.local_participant.attributes.get("role") == "cohost", 15)
        by_cohost = await api.post(f"{base}/end", headers=user_auth(third))
        assert by_cohost.status_code == 403  # ending is the host's alone

        back = await api.post(
            f"{base}/participants/{other}/return-to-waiting", headers=user_auth(third)
        )
        assert back.status_code == 200, back.text
        returned = await _next(other_p, proto.TOPIC_STATUS, status="returned")
        assert returned["room"] == f"meeting-{mid}-lobby"
        await until(lambda: not other_p.room.isconnected(), 15)
        assert (await _token(api, user_auth, other, mid))["status"] == "waiting"

        removed = await api.post(f"{base}/participants/{talker}/remove", headers=user_auth(host))
        assert removed.status_code == 200
        await until(lambda: not talker_p.room.isconnected(), 15)
        barred = await api.post(
            "/api/v1/livekit/token", json={"meetingId": mid}, headers=user_auth(talker)
        )
        assert barred.status_code == 403 and barred.json()["error"]["reason"] == "removed"

        passed = await host_p.rpc(bot, proto.RPC_HOST_PASS, json.dumps({"identity": third}))
        assert json.loads(passed)["host"] == third
        await until(lambda: third_p.room.local_participant.attributes.get("role") == "host", 15)
        await until(lambda: host_p.room.local_participant.attributes.get("role") == "cohost", 15)
        assert (await api.post(f"{base}/end", headers=user_auth(host))).status_code == 403

        ended = await api.post(f"{base}/end", headers=user_auth(third))
        assert ended.status_code == 200
        await until(lambda: not host_p.room.isconnected(), 15)
    gone = await api.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=user_auth(host))
    assert gone.status_code == 410


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.child_env()}
    return subprocess.run(
        [sys.executable, "-m", "talkplatform_agents", "meeting", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_cli_acts_as_a_host_and_refuses_others(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings
) -> None:
    host, guest = _uid("host"), _uid("guest")
    mid = await _meeting(api, user_auth, host, waiting_room=True)
    assert (await _token(api, user_auth, guest, mid))["status"] == "waiting"

    listed = await asyncio.to_thread(_cli, live_settings, "waiting", mid, "--as", host)
    assert listed.returncode == 0, listed.stderr
    assert [w["identity"] for w in json.loads(listed.stdout)["waiting"]] == [guest]
    refused = await asyncio.to_thread(_cli, live_settings, "admit", mid, guest, "--as", guest)
    assert refused.returncode == 1 and "403" in refused.stderr
    admitted = await asyncio.to_thread(_cli, live_settings, "admit", mid, guest, "--as", host)
    assert admitted.returncode == 0 and json.loads(admitted.stdout)["status"] == "admitted"
    locked = await asyncio.to_thread(_cli, live_settings, "lock", mid, "--as", host)
    assert locked.returncode == 0 and json.loads(locked.stdout) == {"locked": True}
    bad = await asyncio.to_thread(_cli, live_settings, "settings", mid, "{nope", "--as", host)
    assert bad.returncode == 2 and "settings must be JSON" in bad.stderr


async def test_a_restarted_bot_loses_nothing(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings
) -> None:
    host, guest = _uid("host"), _uid("guest")
    mid = await _meeting(api, user_auth, host, waiting_room=True)
    server = ServerApi(
        live_settings.livekit_http_url,
        Credentials(
            live_settings.livekit_api_key, live_settings.livekit_api_secret.get_secret_value()
        ),
    )
    try:
        async with _joined(await _token(api, user_auth, host, mid)) as host_p:
            bot = await _bot(host_p)
            assert (await _token(api, user_auth, guest, mid))["status"] == "waiting"
            # The bot goes away mid-meeting (its job ends when it leaves the room).
            assert await server.remove(f"meeting-{mid}", bot)
            await until(lambda: bot not in host_p.room.remote_participants, 15)
        # The host comes back; a fresh bot (the token's dispatch, or the reconciler's)
        # finds the queue where it always was: in the store.
        async with _joined(await _token(api, user_auth, host, mid)) as host_p:
            fresh = await _bot(host_p)
            assert fresh != bot
            queue = json.loads(await host_p.rpc(fresh, proto.RPC_WAITING_LIST, "{}"))
            assert [w["identity"] for w in queue["waiting"]] == [guest]
            admitted = await host_p.rpc(
                fresh, proto.RPC_WAITING_ADMIT, json.dumps({"identity": guest})
            )
            assert json.loads(admitted)["changed"] is True
    finally:
        await server.aclose()
