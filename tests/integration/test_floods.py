"""Floods and oversized input against the live bots: each keeps its promises to everyone
else (relays and stores chat, answers a host's RPC, the green room answers its user), and
the flooder is limited (RPC error 2429, a throttled ``rate_limited`` notice, or dropped),
never a crash or a stall. Nothing here is timed: each test waits for a condition."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk import greenroom as green_proto
from talkplatform_agents.lk import waiting as waiting_proto
from talkplatform_agents.lk.naming import WAITING_ROOM_AGENT_NAME
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant

from .conftest import bot_in, post_json, until
from .test_chat import Meeting
from .test_greenroom import green_room

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]
TOO_MANY = waiting_proto.RPC_TOO_MANY_REQUESTS
_IN_FLIGHT = 32


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _by_id(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in messages}


@pytest.fixture
async def meetings(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings
) -> AsyncIterator[Callable[..., Awaitable[Meeting]]]:
    async with AsyncExitStack() as stack:

        async def make(**settings: Any) -> Meeting:
            return await Meeting(api, user_auth, live_settings, stack).create(**settings)

        yield make


async def _answered(call: Callable[[], Awaitable[str]], timeout_s: float = 30) -> Any:
    """``call``'s JSON answer, once the caller's limit lets it through (2429 until then)."""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                return json.loads(await call())
            except rtc.RpcError as exc:
                assert exc.code == TOO_MANY, exc
            await asyncio.sleep(0.5)


def _drain(participant: SyntheticParticipant, topic: str) -> list[bytes]:
    """The packets on ``topic`` received so far (others are dropped)."""
    got = []
    while not participant.data.empty():
        message = participant.data.get_nowait()
        if message.topic == topic:
            got.append(message.payload)
    return got


async def _rpc_flood(
    participant: SyntheticParticipant, bot: str, method: str, payload: str, count: int
) -> Counter[int]:
    """``count`` concurrent calls; how they were answered (0: a result, else the code)."""

    async def call() -> int:
        try:
            await participant.rpc(bot, method, payload, response_timeout_s=30)
        except rtc.RpcError as exc:
            return exc.code
        return 0

    return Counter(await asyncio.gather(*(call() for _ in range(count))))


async def _packet_flood(
    participant: SyntheticParticipant, bot: str, payloads: list[tuple[str, bytes]], rounds: int
) -> None:
    """``payloads`` (topic, bytes) to ``bot``, ``rounds`` times, as fast as the SDK takes
    them. A few dozen in flight at a time: each send the SDK has in flight filters every
    event of the process, so thousands at once would slow this process, not the bot."""
    queue = iter(payloads * rounds)

    async def sender() -> None:
        for topic, data in queue:
            await participant.send_data(data, topic=topic, to=[bot])

    await asyncio.gather(*(sender() for _ in range(_IN_FLIGHT)))


async def _while(flood: Awaitable[Any], *checks: Awaitable[Any]) -> None:
    """Run ``checks`` while ``flood`` goes on; both must finish."""
    await asyncio.gather(flood, *checks)


async def test_the_chat_bot_serves_others_while_one_participant_floods(
    meetings: Callable[..., Any],
) -> None:
    m: Meeting = await meetings()
    host = await m.join(m.host, "Host")
    ann = await m.join(_uid("ann"), "Ann")  # the flooder
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot
    target = await bob.send(bot, "react to me")
    await host.got(target)

    # 10,000 packets a second's worth, twice: legacy chat (valid, invalid UTF-8, broken
    # JSON) and unknown topics, all addressed to the bot.
    burst: list[tuple[str, bytes]] = []
    for i in range(2500):
        body = {"id": f"flood-{i}", "message": f"f{i}", "relay": True}
        burst.append((proto.TOPIC_LEGACY_CHAT, json.dumps(body).encode()))
        burst.append((proto.TOPIC_LEGACY_CHAT, b"\xff\xfe" + bytes([i % 256])))
        burst.append((proto.TOPIC_LEGACY_CHAT, b'{"id": "x", "message": '))
        burst.append(("tp.unknown.topic", b"\x00" * 64))
    sent: list[str] = []
    answers: list[Counter[int]] = []

    async def others() -> None:
        # Bob keeps chatting; the host's RPCs are answered; ann's RPC flood is refused.
        for i in range(5):
            sent.append(await bob.send(bot, f"during {i}"))
            await host.got(sent[-1])
        answers.append(await _rpc_flood(ann.participant, bot, proto.RPC_REACTIONS, "{}", 300))
        totals = json.loads(await host.participant.rpc(bot, proto.RPC_REACTIONS, "{}"))
        assert totals == {"meeting": {}, "messages": {}}
        deleted = await host.participant.rpc(bot, proto.RPC_DELETE, json.dumps({"id": sent[0]}))
        assert json.loads(deleted) == {"id": sent[0], "deleted": True}

    await _while(_packet_flood(ann.participant, bot, burst, rounds=2), others())
    [rpcs] = answers
    assert set(rpcs) == {0, TOO_MANY} and rpcs[TOO_MANY] >= 200, rpcs
    await ann.notice(bot, "rate_limited")

    # Everything bob said is stored; of ann's 5,000 valid packets, a trickle.
    stored = await m.stored_where(lambda ms: set(sent[1:]) <= set(_by_id(ms)))
    flooded = [s for s in stored if s["id"].startswith("flood-")]
    assert 1 <= len(flooded) < 500
    after = await bob.send(bot, "still there?")
    assert (await host.got(after)).text == "still there?"


async def test_the_chat_bot_refuses_oversized_and_flooding_streams(
    meetings: Callable[..., Any],
) -> None:
    m: Meeting = await meetings()
    carl = await m.join(_uid("carl"), "Carl")
    dana = await m.join(_uid("dana"), "Dana")
    bot = m.bot
    relay = {proto.ATTR_RELAY: "1"}

    # One character over the maximum, and a 2 MB stream: refused, never relayed.
    over = await carl.send(bot, "x" * 2001)
    notice = await carl.notice(bot, "too_large")
    assert notice.attributes[proto.ATTR_REF] == over and "2000 characters" in notice.text
    huge = await carl.participant.send_text(
        "é" * 1_000_000, topic=proto.TOPIC_CHAT, to=[bot], attributes=relay
    )
    await carl.notice(bot, "too_large", count=2)

    # Fifty streams at once from one sender: a few read, the rest refused unread.
    async def stream(i: int) -> str:
        return await dana.participant.send_text(
            f"stream {i}", topic=proto.TOPIC_CHAT, to=[bot], attributes=relay
        )

    streams = await asyncio.gather(*(stream(i) for i in range(50)))
    await dana.notice(bot, "rate_limited")

    # Carl still gets through; nothing oversized was kept.
    fine = await carl.send(bot, "a normal message")
    assert (await dana.got(fine)).text == "a normal message"
    stored = _by_id(await m.stored_where(lambda ms: fine in _by_id(ms)))
    assert over not in stored and huge not in stored
    assert 1 <= len(set(streams) & set(stored)) < 50


async def test_the_moderator_answers_hosts_while_others_flood(
    api: httpx.AsyncClient, user_auth: Auth
) -> None:
    host, guest = _uid("host"), _uid("guest")
    created = await post_json(
        api, "/api/v1/meetings", user_auth(host, "Host"), {"title": "t", "settings": {
            "waiting_room": True}},
    )  # fmt: skip
    mid = str(created["id"])

    async def joined(user: str) -> SyntheticParticipant:
        grant = await post_json(
            api, "/api/v1/livekit/token", user_auth(user, user.title()), {"meetingId": mid}
        )
        config = ParticipantConfig(
            url=grant["wsUrl"], token=grant["token"], publish_audio=False, publish_video=False
        )
        return await SyntheticParticipant(config).__aenter__()

    host_p = await joined(host)
    guest_p: SyntheticParticipant | None = None
    try:
        bot = await bot_in(host_p.room, WAITING_ROOM_AGENT_NAME)
        guest_p = await joined(guest)  # waits in the lobby
        lobby_bot = await bot_in(guest_p.room, WAITING_ROOM_AGENT_NAME)

        # The guest floods the hosts' lobby chat (and sends invalid UTF-8); the host's own
        # RPC flood is limited, and a single call of theirs is answered.
        chat_flood = [(waiting_proto.TOPIC_CHAT, b'{"text": "let me in"}')] * 500
        chat_flood += [(waiting_proto.TOPIC_CHAT, b"\xff\xfe")] * 500
        answers: list[Counter[int]] = []

        async def host_calls() -> None:
            answers.append(await _rpc_flood(host_p, bot, waiting_proto.RPC_WAITING_LIST, "{}", 300))

        await _while(_packet_flood(guest_p, lobby_bot, chat_flood, rounds=4), host_calls())
        [flood] = answers
        assert set(flood) == {0, TOO_MANY} and flood[0] >= 8, flood

        # Of 2,000 lobby messages, the hosts got a few (the first burst of five, then about
        # one a second).
        relayed = await until(lambda: _drain(host_p, waiting_proto.TOPIC_CHAT), 30)
        waiting = await _answered(lambda: host_p.rpc(bot, waiting_proto.RPC_WAITING_LIST, "{}"))
        assert [w["identity"] for w in waiting["waiting"]] == [guest]

        # The bot still admits: the guest hears it in the lobby.
        admitted = json.loads(
            await host_p.rpc(bot, waiting_proto.RPC_WAITING_ADMIT, json.dumps({"identity": guest}))
        )
        assert admitted["status"] == "admitted"
        relayed += _drain(host_p, waiting_proto.TOPIC_CHAT)
        assert 1 <= len(relayed) < 200, len(relayed)

        # In the meeting, the guest floods the host controls: refused as not a host, or as
        # too many.
        await guest_p.stop()
        guest_p = await joined(guest)
        assert guest_p.room.name == host_p.room.name
        mute_all = await _rpc_flood(guest_p, bot, waiting_proto.RPC_HOST_MUTE_ALL, "{}", 300)
        assert set(mute_all) == {2403, TOO_MANY} and mute_all[TOO_MANY] >= 200, mute_all
    finally:
        if guest_p is not None:
            await guest_p.stop()
        await host_p.stop()


async def test_the_green_room_answers_its_user_through_a_flood(
    api: httpx.AsyncClient, user_auth: Auth
) -> None:
    async with green_room(api, user_auth, "flo", publish_video=False) as (user, bot):
        junk = [("tp.unknown.topic", b"\xff" * 200), (green_proto.TOPIC_STATE, b"{")] * 1000
        answers: list[Counter[int]] = []

        async def calls() -> None:
            answers.append(await _rpc_flood(user, bot, green_proto.RPC_GET_REPORT, "{}", 300))
            toggles = await _rpc_flood(
                user, bot, green_proto.RPC_SET_AUDIO_MODE, '{"mode": "live"}', 100
            )
            answers.append(toggles)

        await _while(_packet_flood(user, bot, junk, rounds=3), calls())
        reports, toggles = answers
        assert set(reports) == {0, TOO_MANY} and reports[TOO_MANY] >= 200, reports
        assert set(toggles) <= {0, TOO_MANY}, toggles

        body = await _answered(lambda: user.rpc(bot, green_proto.RPC_GET_REPORT, "{}"))
        assert body["audio_mode"] == "live"
        # And it keeps pushing its report, as promised.
        async with asyncio.timeout(30):
            await user.next_data(green_proto.TOPIC_REPORT)


FLOODER = Path(__file__).resolve().parents[2] / "bin" / "tp-flood"  # scripts/install-flood.sh


async def test_the_chat_bot_serves_others_through_10000_packets_a_second(
    meetings: Callable[..., Any],
) -> None:
    """A native participant (tests/flood, Go) sends the bot 10,000 chat packets a second
    for 3 s, well beyond what a Python one can: the bot still relays and stores the
    others' chat, answers the host, and stores only a trickle of the flood."""
    m: Meeting = await meetings()
    host = await m.join(m.host, "Host")
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot
    flooder = _uid("flooder")
    grant = await post_json(m.api, "/api/v1/livekit/token", m.auth(flooder, "F"),
                            {"meetingId": m.id})  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        str(FLOODER), "-url", grant["wsUrl"], "-token", grant["token"], "-rate", "10000",
        "-seconds", "3", "-to", bot, "-hold",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    async with asyncio.timeout(60):
        assert (await process.stdout.readline()).strip() == b"joined"
    # Flood once the room knows the flooder (as its peers see it): the bot then sees who
    # floods, and limits that sender.
    await until(lambda: flooder in host.participant.room.remote_participants or None, 30)
    process.stdin.write(b"go\n")
    await process.stdin.drain()
    sent: list[str] = []

    async def others() -> None:
        for i in range(5):
            sent.append(await bob.send(bot, f"through the flood {i}"))
            await host.got(sent[-1])
        totals = json.loads(await host.participant.rpc(bot, proto.RPC_REACTIONS, "{}"))
        assert totals == {"meeting": {}, "messages": {}}

    async with asyncio.timeout(120):
        out, _ = await asyncio.gather(process.communicate(), others())
    assert process.returncode == 0
    flood = json.loads(out[0].splitlines()[-1])
    rate = flood["sent"] / flood["seconds"]
    print(f"\nflood: {flood['sent']} packets in {flood['seconds']:.2f} s ({rate:.0f} a second)")
    assert flood["sent"] > 0
    stored = await m.stored_where(lambda ms: set(sent) <= set(_by_id(ms)))
    # The flood is one message id sent again and again: stored once at most (as edits).
    assert len([s for s in stored if s["id"] == "flood"]) <= 1
    after = await bob.send(bot, "still there?")
    assert (await host.got(after)).text == "still there?"
