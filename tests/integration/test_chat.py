"""The chat relay bot against the real server: both wire formats in and out, edits and
deletes, late joiners' history, private messages, reactions, every moderation rule, bad
input, a restart mid-meeting, and the REST history and exports."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from livekit import rtc
from prometheus_client.parser import text_string_to_metric_families

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk import waiting as waiting_proto
from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE, CHAT_AGENT_NAME, meeting_room_name
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from talkplatform_agents.synthetic.participant import TextMessage

from .conftest import post_json, settled_bot, until

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]
T = TypeVar("T")


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _eventually(probe: Callable[[], Awaitable[T | None]], timeout_s: float) -> T:
    """``until`` for a probe that must await (the service, the server)."""
    async with asyncio.timeout(timeout_s):
        while not (value := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return value


@dataclass
class Member:
    """A synthetic participant in a meeting, collecting what the chat carries."""

    user: str
    participant: SyntheticParticipant
    texts: asyncio.Queue[TextMessage]
    seen: list[TextMessage]

    async def texts_from(self, sender: str, count: int, timeout_s: float = 20) -> list[TextMessage]:
        """Wait until ``count`` text streams from ``sender`` have arrived; all of them."""

        def enough() -> list[TextMessage] | None:
            while not self.texts.empty():
                self.seen.append(self.texts.get_nowait())
            mine = sorted((t for t in self.seen if t.sender == sender), key=lambda t: t.opened_at)
            return mine if len(mine) >= count else None

        return await until(enough, timeout_s)

    async def notice(
        self, bot: str, code: str, timeout_s: float = 20, count: int = 1
    ) -> TextMessage:
        """The first notice with ``code``, once ``count`` of them have arrived."""

        def found() -> TextMessage | None:
            while not self.texts.empty():
                self.seen.append(self.texts.get_nowait())
            hits = [
                t
                for t in self.seen
                if t.sender == bot and t.attributes.get(proto.ATTR_CODE) == code
            ]
            return hits[0] if len(hits) >= count else None

        return await until(found, timeout_s)

    async def got(self, stream_id: str, timeout_s: float = 30) -> TextMessage:
        """The text stream with this id, once it has arrived."""

        def found() -> TextMessage | None:
            while not self.texts.empty():
                self.seen.append(self.texts.get_nowait())
            return next((t for t in self.seen if t.stream_id == stream_id), None)

        return await until(found, timeout_s)

    def data(self, topic: str) -> list[dict[str, Any]]:
        """Every JSON data packet received so far on ``topic`` (the queue is drained)."""
        queue = self.participant.data
        kept = []
        while not queue.empty():
            kept.append(queue.get_nowait())
        for message in kept:
            self._data.append(message)
        return [json.loads(m.payload) for m in self._data if m.topic == topic]

    def __post_init__(self) -> None:
        self._data: list[Any] = []

    async def send(self, bot: str, text: str, **attrs: str) -> str:
        """A message through the bot (TalkPlatform's form)."""
        attributes = {proto.ATTR_RELAY: "1", **attrs}
        return await self.participant.send_text(
            text, topic=proto.TOPIC_CHAT, to=[bot], attributes=attributes
        )

    async def legacy(self, body: dict[str, Any] | bytes, to: list[str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.participant.send_data(payload, topic=proto.TOPIC_LEGACY_CHAT, to=to)


class Meeting:
    def __init__(
        self, api: httpx.AsyncClient, auth: Auth, settings: Settings, stack: AsyncExitStack
    ) -> None:
        self.api = api
        self.auth = auth
        self.settings = settings
        self.stack = stack
        self.id = ""
        self.host = _uid("host")
        self.bot = ""
        self.server = ServerApi(
            settings.livekit_http_url,
            Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()),
        )
        stack.push_async_callback(self.server.aclose)

    async def create(self, **settings: Any) -> Meeting:
        created = await post_json(
            self.api,
            "/api/v1/meetings",
            self.auth(self.host, "Host"),
            {"title": "chat", "settings": settings},
        )
        self.id = str(created["id"])
        return self

    async def connect(self, user: str, name: str | None = None) -> Member:
        """In the meeting room, without waiting for anything from the bot."""
        grant = await post_json(
            self.api, "/api/v1/livekit/token", self.auth(user, name or user), {"meetingId": self.id}
        )
        participant = SyntheticParticipant(
            ParticipantConfig(
                url=grant["wsUrl"], token=grant["token"], publish_audio=False, publish_video=False
            )
        )
        texts = participant.listen_text(proto.TOPIC_CHAT)  # before joining: history comes fast
        await self.stack.enter_async_context(participant)
        return Member(user, participant, texts, [])

    async def join(self, user: str, name: str | None = None) -> Member:
        member = await self.connect(user, name)
        self.bot = await self._bot()

        # The bot records who it has seen in the room (REST readers) when it welcomes
        # them; from then on, new messages reach them live rather than as history.
        async def welcomed() -> bool:
            return (await self.rest(user, limit=1)).status_code == 200

        await _eventually(welcomed, 30)
        return member

    async def _bot(self) -> str:
        try:
            return await _eventually(self.settled_bot, 30)
        except TimeoutError:
            # The meeting token may not dispatch the chat bot (yet): ask for it directly,
            # as the service's reconciler would. A busy machine starts job processes slowly.
            await self.dispatch()
            return await _eventually(self.settled_bot, 120)

    async def settled_bot(self) -> str | None:
        """The chat bot to talk to, as the server lists the room (nobody may be in it)."""
        participants = await self.server.participants(meeting_room_name(self.id))
        return settled_bot(participants, CHAT_AGENT_NAME)

    async def dispatch(self) -> None:
        await self.server.dispatch(meeting_room_name(self.id), CHAT_AGENT_NAME)

    async def rest(self, user: str, path: str = "", **params: Any) -> httpx.Response:
        return await self.api.get(
            f"/api/v1/meetings/{self.id}/chat{path}", params=params, headers=self.auth(user)
        )

    async def stored(self, user: str | None = None) -> list[dict[str, Any]]:
        reply = await self.rest(user or self.host, limit=200)
        assert reply.status_code == 200, reply.text
        messages: list[dict[str, Any]] = reply.json()["messages"]
        return messages

    async def stored_where(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 20
    ) -> list[dict[str, Any]]:
        async def matching() -> list[dict[str, Any]] | None:
            messages = await self.stored()
            return messages if predicate(messages) else None

        return await _eventually(matching, timeout_s)


@pytest.fixture
async def meetings(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings
) -> AsyncIterator[Callable[..., Any]]:
    async with AsyncExitStack() as stack:

        async def make(**settings: Any) -> Meeting:
            return await Meeting(api, user_auth, live_settings, stack).create(**settings)

        yield make


def _by_id(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in messages}


Figures = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _figures(url: str) -> Figures:
    """A Prometheus endpoint's samples, by name and labels."""
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.get(url)
    assert reply.status_code == 200, reply.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def _figure(figures: Figures, name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


async def test_both_wire_formats_in_and_out_and_edits(
    meetings: Callable[..., Any], live_settings: Settings
) -> None:
    # The worker's one endpoint for all its bot processes, and the service's own.
    bots_url = f"http://{live_settings.bot_metrics_host}:{live_settings.bot_metrics_port}/metrics"
    service_url = live_settings.api_url + "/metrics"
    bots_before, service_before = await _figures(bots_url), await _figures(service_url)
    m: Meeting = await meetings()
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot

    # Current form in, both forms out: bob gets the text stream and the legacy copy.
    first = await ann.send(bot, "hello from ann")
    [relayed] = await bob.texts_from(bot, 1)
    assert (relayed.stream_id, relayed.text) == (first, "hello from ann")
    assert relayed.attributes[proto.ATTR_SENDER] == ann.user
    assert relayed.attributes[proto.ATTR_SENDER_NAME] == "Ann"
    assert relayed.attributes[proto.ATTR_KIND] == "message"
    legacy_out = await until(lambda: bob.data(proto.TOPIC_LEGACY_CHAT), 10)
    assert legacy_out[0]["id"] == first and legacy_out[0]["message"] == "hello from ann"
    assert legacy_out[0]["ignoreLegacy"] is True and legacy_out[0]["timestamp"] > 0

    # Legacy form in (relayed), with an unknown field, which is ignored.
    await bob.legacy(
        {"id": "bob-1", "timestamp": 1, "message": "legacy hi", "relay": True, "extra": [1]}, [bot]
    )
    [from_bob] = await ann.texts_from(bot, 1)
    assert (from_bob.stream_id, from_bob.text) == ("bob-1", "legacy hi")
    assert from_bob.attributes[proto.ATTR_SENDER] == bob.user

    # A stock client broadcasts: everyone got it from the SFU; the bot stores it.
    stock = await ann.participant.send_text("stock broadcast", topic=proto.TOPIC_CHAT)
    # ...as does a legacy client that broadcasts.
    await bob.legacy({"id": "bob-2", "timestamp": 2, "message": "legacy broadcast"})
    stored = await m.stored_where(lambda ms: {stock, "bob-2"} <= set(_by_id(ms)))
    # (The store's order is the bot's order of arrival: the last two raced.)
    assert [s["id"] for s in stored][:2] == [first, "bob-1"]
    assert {s["id"] for s in stored[2:]} == {stock, "bob-2"}

    # Edits: the same id from the same sender, in either form.
    await ann.participant.send_text(
        "hello, edited",
        topic=proto.TOPIC_CHAT,
        to=[bot],
        attributes={proto.ATTR_RELAY: "1"},
        stream_id=first,
    )
    edits = await bob.texts_from(bot, 2)
    assert (edits[1].stream_id, edits[1].text) == (first, "hello, edited")
    assert proto.ATTR_EDITED in edits[1].attributes
    await bob.legacy(
        {"id": "bob-2", "timestamp": 2, "message": "legacy, edited", "editTimestamp": 3}
    )
    stored = await m.stored_where(lambda ms: _by_id(ms)["bob-2"]["message"] == "legacy, edited")
    assert _by_id(stored)[first]["editTimestamp"] is not None

    # Editing someone else's message is refused, with a notice; nothing changes.
    await bob.legacy({"id": first, "timestamp": 5, "message": "hijacked", "relay": True}, [bot])
    notice = await bob.notice(bot, "not_yours")
    assert notice.attributes[proto.ATTR_REF] == first and "someone else" in notice.text
    assert _by_id(await m.stored())[first]["message"] == "hello, edited"

    # The figures moved: two messages relayed to the room, stored ones, the refused edit,
    # the bot in its room; two meeting tokens, and livekit-server's webhooks.
    bots, service = await _figures(bots_url), await _figures(service_url)
    chat = {"agent": CHAT_AGENT_NAME}
    for name, labels, least in (
        ("tp_chat_relayed_total", {"audience": "room"}, 2),
        ("tp_chat_messages_total", {"outcome": "created"}, 4),
        ("tp_chat_messages_total", {"outcome": "not_owner"}, 1),
        ("tp_bot_jobs_accepted_total", chat, 1),
    ):
        moved = _figure(bots, name, **labels) - _figure(bots_before, name, **labels)
        assert moved >= least, (name, labels, moved)
    assert _figure(bots, "tp_bot_rooms", **chat) >= 1
    meeting_tokens = {"kind": "meeting", "status": "joined"}
    assert (
        _figure(service, "tp_token_requests_total", **meeting_tokens)
        - _figure(service_before, "tp_token_requests_total", **meeting_tokens)
        >= 2
    )
    # livekit-server posts its webhooks when it will: the figure grows, in a while (polled
    # as conftest's until does, but each look is a scrape, which is awaited).
    joined = {"event": "participant_joined", "result": "acted"}
    floor = _figure(service_before, "tp_webhooks_total", **joined)
    async with asyncio.timeout(30):
        while _figure(await _figures(service_url), "tp_webhooks_total", **joined) <= floor:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_host_deletes_and_late_joiners_get_history(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings(chat={"historySize": 4})
    host = await m.join(m.host, "Host")
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot
    # One at a time: the store keeps the order in which the bot received them.
    first = await ann.send(bot, "one")
    await m.stored_where(lambda ms: first in _by_id(ms))
    await bob.legacy({"id": "bob-1", "timestamp": 1, "message": "two", "relay": True}, [bot])
    await m.stored_where(lambda ms: "bob-1" in _by_id(ms))
    stock = await ann.participant.send_text("three", topic=proto.TOPIC_CHAT)
    await m.stored_where(lambda ms: stock in _by_id(ms))

    # A host deletes; a participant may not; an unknown id is a clear error.
    with pytest.raises(rtc.RpcError) as refused:
        await ann.participant.rpc(bot, proto.RPC_DELETE, json.dumps({"id": "bob-1"}))
    assert refused.value.code == proto.FORBIDDEN
    with pytest.raises(rtc.RpcError) as missing:
        await host.participant.rpc(bot, proto.RPC_DELETE, json.dumps({"id": "nope"}))
    assert missing.value.code == proto.NOT_FOUND
    deleted_reply = await host.participant.rpc(bot, proto.RPC_DELETE, json.dumps({"id": "bob-1"}))
    assert json.loads(deleted_reply) == {"id": "bob-1", "deleted": True}
    events = await until(lambda: ann.data(proto.TOPIC_EVENT), 10)
    assert {"type": "deleted", "id": "bob-1", "by": m.host} in events
    gone = [t for t in await ann.texts_from(bot, 2) if t.stream_id == "bob-1"]
    assert gone[-1].attributes[proto.ATTR_KIND] == "deleted"  # replaces it in stock clients
    deleted = _by_id(await m.stored(ann.user))["bob-1"]
    assert deleted["deleted"] is True and deleted["message"] is None
    # The author cannot bring it back by editing it.
    await bob.legacy({"id": "bob-1", "message": "two again", "relay": True}, [bot])
    await bob.notice(bot, "deleted")

    # A late joiner gets the last 4 of 5 (the meeting's historySize), oldest first, to
    # them alone; the deleted one keeps its place without its text.
    fourth = await ann.send(bot, "four")
    await m.stored_where(lambda ms: fourth in _by_id(ms))
    fifth = await ann.send(bot, "five")
    await m.stored_where(lambda ms: fifth in _by_id(ms))
    carl = await m.join(_uid("carl"), "Carl")
    history = await carl.texts_from(bot, 4)
    assert [h.stream_id for h in history] == ["bob-1", stock, fourth, fifth]
    kinds = [h.attributes[proto.ATTR_KIND] for h in history]
    assert kinds == ["deleted", "history", "history", "history"]
    assert [h.text for h in history][1:] == ["three", "four", "five"]
    assert history[1].attributes[proto.ATTR_SENDER] == ann.user
    # A message relayed live after the history marks the point by which anything more of
    # it would have arrived (the bot's streams to one participant arrive in sending order).
    sixth = await ann.send(bot, "six")
    assert (await carl.got(sixth)).attributes[proto.ATTR_KIND] == "message"
    await bob.got(sixth)
    from_bot = sorted((t for t in carl.seen if t.sender == bot), key=lambda t: t.opened_at)
    assert [t.stream_id for t in from_bot] == [*(h.stream_id for h in history), sixth]
    assert not [t for t in bob.seen if t.attributes.get(proto.ATTR_KIND) == "history"]


async def test_private_messages_reach_only_their_parties(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings()  # the default policy: hosts do not see private messages
    host = await m.join(m.host, "Host")
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    carl = await m.join(_uid("carl"), "Carl")
    bot = m.bot
    dm = await ann.send(bot, "just for bob", **{proto.ATTR_TO: bob.user})
    await bob.legacy({"id": "bob-dm", "message": "for ann only", "to": [ann.user]}, [bot])
    [to_bob] = await bob.texts_from(bot, 1)
    assert (to_bob.stream_id, to_bob.text) == (dm, "just for bob")
    assert to_bob.attributes[proto.ATTR_PRIVATE] == "1"
    [to_ann] = await ann.texts_from(bot, 1)
    assert to_ann.stream_id == "bob-dm"
    # Relayed after both private messages: once it is in, a misdirected one would be too.
    public = await ann.send(bot, "for everyone")
    for outsider in (carl, host):
        await outsider.got(public)
    for outsider in (carl, host):
        assert [t.stream_id for t in outsider.seen if t.sender == bot] == [public]
    assert {dm, "bob-dm"} <= set(_by_id(await m.stored(bob.user)))
    assert not {dm, "bob-dm"} & set(_by_id(await m.stored(carl.user)))
    assert not {dm, "bob-dm"} & set(_by_id(await m.stored(m.host)))
    # Nor does a late joiner's history carry them.
    dave = await m.join(_uid("dave"), "Dave")
    [history] = await dave.texts_from(bot, 1)
    assert history.stream_id == public


async def test_hosts_see_private_messages_when_the_meeting_says_so(
    meetings: Callable[..., Any],
) -> None:
    m: Meeting = await meetings(chat={"hostsSeePrivate": True})
    host = await m.join(m.host, "Host")
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    dm = await ann.send(m.bot, "psst", **{proto.ATTR_TO: bob.user})
    [seen] = await host.texts_from(m.bot, 1)
    assert seen.stream_id == dm and seen.attributes[proto.ATTR_SENDER] == ann.user
    await bob.texts_from(m.bot, 1)
    assert dm in _by_id(await m.stored(m.host))


async def test_reactions_are_relayed_aggregated_and_rate_limited(
    meetings: Callable[..., Any],
) -> None:
    m: Meeting = await meetings()
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot
    target = await ann.send(bot, "react to me")
    await bob.texts_from(bot, 1)

    async def react(member: Member, rid: str, emoji: str, message: str | None = target) -> None:
        body = {"id": rid, "emoji": emoji, **({"messageId": message} if message else {})}
        await member.participant.send_data(
            json.dumps(body).encode(), topic=proto.TOPIC_REACTION, to=[bot]
        )

    await react(bob, "r1", "👍")
    await react(ann, "r2", "👍")
    await react(ann, "r3", "🎉", None)
    await react(ann, "r3", "🎉", None)  # a redelivery counts once

    def relayed() -> list[dict[str, Any]] | None:
        reactions = [r for r in bob.data(proto.TOPIC_REACTION) if r.get("sender")]
        return reactions if len(reactions) >= 3 else None

    reactions = await until(relayed, 15)
    # Each carries the totals as they stood: the last of each kind has them all.
    on_target = [r for r in reactions if r["messageId"] == target]
    assert max(on_target, key=lambda r: r["counts"].get("👍", 0))["counts"] == {"👍": 2}
    final = max(reactions, key=lambda r: sum(r["meetingCounts"].values()))
    assert final["meetingCounts"] == {"👍": 2, "🎉": 1}
    totals = json.loads(await ann.participant.rpc(bot, proto.RPC_REACTIONS, "{}"))
    assert totals == {"meeting": {"👍": 2, "🎉": 1}, "messages": {target: {"👍": 2}}}

    # Reactions to no message are refused; so is a flood (20 a burst, 5 a second).
    await react(bob, "r-bad", "👍", "no-such-message")
    await bob.notice(bot, "unknown_message")
    for i in range(60):
        await react(bob, f"flood-{i}", "🔥", None)
    await bob.notice(bot, "rate_limited")
    # A chat packet from bob after his flood is stored after every reaction of it that was
    # kept (one channel, and the bot stores in arrival order): once relayed, the count is
    # final.
    await bob.legacy({"id": "after-flood", "message": "done", "relay": True}, [bot])
    await ann.got("after-flood")
    counts = json.loads(await ann.participant.rpc(bot, proto.RPC_REACTIONS, "{}"))["meeting"]
    assert 10 <= counts["🔥"] < 60  # what was left of bob's burst of 20, and the refill


async def test_moderation_rules(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings(chat={"blockedWords": ["darn", "heck"]})
    host = await m.join(m.host, "Host")
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot

    # Size: over CHAT_MAX_MESSAGE_CHARS (2000) is refused, with a notice naming the limit.
    await ann.send(bot, "x" * 2001)
    assert "2000 characters" in (await ann.notice(bot, "too_large")).text
    # Blocked words (reject): a readable notice, nothing relayed, nothing stored.
    blocked = await ann.send(bot, "well DARN it")
    assert "darn" in (await ann.notice(bot, "blocked_word")).text
    # A stock client's broadcast that breaks a rule: clients are told to hide it.
    stock = await ann.participant.send_text("oh heck", topic=proto.TOPIC_CHAT)
    await until(
        lambda: [e for e in bob.data(proto.TOPIC_EVENT) if e == {
            "type": "rejected", "id": stock, "sender": ann.user}],
        10,
    )  # fmt: skip
    # Mute: a host mutes ann; her messages are refused until unmuted.
    with pytest.raises(rtc.RpcError) as not_host:
        await bob.participant.rpc(bot, proto.RPC_MUTE, json.dumps({"identity": ann.user}))
    assert not_host.value.code == proto.FORBIDDEN
    await host.participant.rpc(bot, proto.RPC_MUTE, json.dumps({"identity": ann.user}))
    await ann.send(bot, "am I muted?")
    await ann.notice(bot, "muted")
    await host.participant.rpc(
        bot, proto.RPC_MUTE, json.dumps({"identity": ann.user, "muted": False})
    )
    fine = await ann.send(bot, "back again")
    relayed = await bob.texts_from(bot, 1)
    assert [r.stream_id for r in relayed] == [fine]  # none of the refused ones
    stored = _by_id(await m.stored())
    assert fine in stored and blocked not in stored and stock not in stored

    # Rate: a burst of 10, then 2 a second; refused ones get (throttled) notices. The burst
    # goes a few at a time, each few acknowledged (``stored`` receipts) before the next:
    # the bot reads at most 4 of a sender's streams at once and drops the rest unread (a
    # flood), and on a busy machine 10 sent at once can outrun its reading.
    dan = await m.join(_uid("dan"), "Dan")
    sent: list[str] = []
    for start in range(0, 10, 4):
        batch = [await dan.send(bot, f"quick {i}") for i in range(start, min(start + 4, 10))]
        sent += batch

        def acknowledged(batch: list[str] = batch) -> bool:
            receipts = {
                e.get("id") for e in dan.data(proto.TOPIC_EVENT) if e.get("type") == "stored"
            }
            return set(batch) <= receipts

        await until(acknowledged, 20)
    more = [await dan.send(bot, f"more {i}") for i in range(20)]  # past the burst
    await dan.notice(bot, "rate_limited")  # not all of them kept...
    stored_now = _by_id(await m.stored())
    assert set(sent) <= set(stored_now)  # ...but the burst
    assert not set(more) <= set(stored_now)


async def test_blocked_words_can_be_masked(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings(chat={"blockedWords": ["darn"], "blockedAction": "mask"})
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    masked = await ann.send(m.bot, "Darn, that darning needle")
    [relayed] = await bob.texts_from(m.bot, 1)
    assert (relayed.stream_id, relayed.text) == (masked, "****, that darning needle")
    assert _by_id(await m.stored())[masked]["message"] == "****, that darning needle"
    # A broadcast one is stored masked, and clients get the masked text as an edit.
    stock = await ann.participant.send_text("darn it", topic=proto.TOPIC_CHAT)
    edit = await until(lambda: [e for e in bob.data(proto.TOPIC_EVENT) if e.get("id") == stock], 10)
    assert edit[0]["type"] == "edited" and edit[0]["message"] == "**** it"


async def test_bad_input_loses_no_valid_message(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings()
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    bot = m.bot
    await ann.legacy(b"\xff\xfe not utf-8", [bot])
    assert "UTF-8" in (await ann.notice(bot, "invalid")).text
    await bob.legacy(b'{"id": "x", "message": ', [bot])
    assert "JSON" in (await bob.notice(bot, "invalid")).text
    await bob.legacy({"id": "y", "message": 42}, [bot])
    await bob.notice(bot, "invalid", count=2)  # a message that is not a string
    # Oversized: a 15 kB data packet and a 100 kB text stream.
    await bob.legacy({"id": "big", "message": "é" * 7000, "relay": True}, [bot])
    await bob.participant.send_text(
        "y" * 100_000, topic=proto.TOPIC_CHAT, to=[bot], attributes={proto.ATTR_RELAY: "1"}
    )
    await bob.notice(bot, "too_large", count=2)
    # A flood: 1,000 messages in about a second from ann, while bob talks normally.
    valid: list[str] = []

    async def flood() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(1000):
            await ann.legacy({"id": f"flood-{i}", "message": f"f{i}", "relay": True}, [bot])
            if (ahead := started + i / 1000 - loop.time()) > 0:
                await asyncio.sleep(ahead)

    async def talk() -> None:
        for i in range(5):
            valid.append(await bob.send(bot, f"valid {i}"))
            await asyncio.sleep(0.2)

    await asyncio.gather(flood(), talk())
    await ann.notice(bot, "rate_limited")
    stored = await m.stored_where(lambda ms: set(valid) <= set(_by_id(ms)))
    flood_kept = [s for s in stored if s["id"].startswith("flood-")]
    assert 10 <= len(flood_kept) < 100
    assert "big" not in _by_id(stored)
    # And the bot still relays (bob: ann's bucket is empty after her flood).
    after = await bob.send(bot, "still there?")
    assert (await ann.got(after)).text == "still there?"


async def test_history_survives_a_bot_restart(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings()
    ann = await m.join(_uid("ann"), "Ann")
    bob = await m.join(_uid("bob"), "Bob")
    first = []
    for i in range(3):
        first.append(await ann.send(m.bot, f"before {i}"))
        await m.stored_where(lambda ms: first[-1] in _by_id(ms))
    old_bot = m.bot
    assert await m.server.remove(meeting_room_name(m.id), old_bot)
    await until(lambda: old_bot not in ann.participant.room.remote_participants or None, 20)
    await m.dispatch()

    # A bot greets those who join after it: wait for the new one (a busy machine starts
    # job processes slowly).
    async def new_bot() -> str | None:
        bot = await m.settled_bot()
        return bot if bot != old_bot else None

    await _eventually(new_bot, 150)
    carl = await m.join(_uid("carl"), "Carl")
    assert m.bot != old_bot

    def history_seen() -> list[TextMessage] | None:
        while not carl.texts.empty():
            carl.seen.append(carl.texts.get_nowait())
        kept = sorted(
            (t for t in carl.seen if t.attributes.get(proto.ATTR_KIND) == "history"),
            key=lambda t: t.opened_at,
        )
        return kept if len(kept) >= 3 else None

    history = await until(history_seen, 30)
    assert [h.stream_id for h in history] == first
    # Extra dispatches (the service's reconciler) settle on one bot: talk to that one.
    bot = await _eventually(m.settled_bot, 60)
    again = await ann.send(bot, "after the restart")
    await bob.got(again)
    stored = await m.stored()
    assert [s["id"] for s in stored] == [*first, again]  # nothing lost, nothing twice


async def test_a_message_sent_on_joining_keeps_its_name_and_is_not_echoed(
    meetings: Callable[..., Any],
) -> None:
    m: Meeting = await meetings()
    ann = await m.join(_uid("ann"), "Ann")
    bot = m.bot
    earlier = await ann.send(bot, "before carl")
    await m.stored_where(lambda ms: earlier in _by_id(ms))
    # Carl talks the moment he is connected, as a browser client may: his message can reach
    # the bot before the bot learns that he joined.
    carl = await m.connect(_uid("carl"), "Carl")
    first = await carl.send(bot, "hi, just in")

    relayed = await ann.got(first)
    assert relayed.attributes[proto.ATTR_KIND] == "message"
    assert relayed.attributes[proto.ATTR_SENDER] == carl.user
    assert relayed.attributes.get(proto.ATTR_SENDER_NAME) == "Carl"
    stored = await m.stored_where(lambda ms: first in _by_id(ms))
    assert _by_id(stored)[first]["senderName"] == "Carl"
    # His history holds what was said before he came, and not his own message. A message
    # relayed live after his history was sent marks the point by which an echo would have
    # arrived (the bot's packets to him arrive in the order it sends them).
    history = await carl.got(earlier)
    assert history.attributes[proto.ATTR_KIND] == "history"
    later = await ann.send(bot, "welcome, carl")
    assert (await carl.got(later)).attributes[proto.ATTR_KIND] == "message"
    assert first not in {t.stream_id for t in carl.seen}
    # Nor by the legacy form.
    assert first not in {p.get("id") for p in carl.data(proto.TOPIC_LEGACY_CHAT)}


async def test_no_chat_reaches_a_waiting_participant(meetings: Callable[..., Any]) -> None:
    m: Meeting = await meetings(waiting_room=True)
    host = await m.join(m.host, "Host")
    guest_id = _uid("guest")
    grant = await post_json(
        m.api, "/api/v1/livekit/token", m.auth(guest_id, "Guest"), {"meetingId": m.id}
    )
    assert grant["status"] == "waiting" and grant["room"] == f"meeting-{m.id}-lobby"
    waiting = SyntheticParticipant(
        ParticipantConfig(
            url=grant["wsUrl"], token=grant["token"], publish_audio=False, publish_video=False
        )
    )
    lobby_texts = waiting.listen_text(proto.TOPIC_CHAT)
    async with waiting:
        # Every way into the meeting's chat: through the bot, broadcast, legacy.
        via_bot = await host.send(m.bot, "secret plans")
        await m.stored_where(lambda ms: via_bot in _by_id(ms))
        stock = await host.participant.send_text("more secrets", topic=proto.TOPIC_CHAT)
        await m.stored_where(lambda ms: stock in _by_id(ms))
        await host.legacy({"id": "legacy-secret", "timestamp": 1, "message": "and more"})
        await m.stored_where(lambda ms: "legacy-secret" in _by_id(ms))
        # A host's message to the waiting room, sent after every secret, must arrive: by
        # then anything misdirected would have too.
        told = await m.api.post(
            f"/api/v1/meetings/{m.id}/waiting-room/message",
            json={"text": "nearly there"},
            headers=m.auth(m.host),
        )
        assert told.status_code == 200, told.text
        lobby_data: list[Any] = []

        def marker() -> bool:
            lobby_data.extend(_drain(waiting))
            return any(
                p.topic == waiting_proto.TOPIC_MESSAGE and b"nearly there" in p.payload
                for p in lobby_data
            )

        await until(marker, 20)
        got: list[TextMessage] = []
        while not lobby_texts.empty():
            got.append(lobby_texts.get_nowait())
        secrets = {"secret plans", "more secrets", "and more"}
        assert not [t for t in got if t.text in secrets]
        legacy = [m_ for m_ in lobby_data if m_.topic == proto.TOPIC_LEGACY_CHAT]
        assert not [p for p in legacy if b"secret" in p.payload or b"more" in p.payload]
        assert not [
            p
            for p in waiting.room.remote_participants.values()
            if p.attributes.get(AGENT_NAME_ATTRIBUTE) == CHAT_AGENT_NAME
        ]
        refused = await m.rest(guest_id)
        assert refused.status_code == 403  # nor over REST
    # Admitted, the same person joins the meeting and gets its history.
    admitted = await m.api.post(
        f"/api/v1/meetings/{m.id}/waiting-room/{guest_id}/admit", headers=m.auth(m.host)
    )
    assert admitted.status_code in (200, 204), admitted.text
    guest = await m.join(guest_id, "Guest")
    history = await guest.texts_from(m.bot, 3)
    assert [h.stream_id for h in history] == [via_bot, stock, "legacy-secret"]


def _drain(participant: SyntheticParticipant) -> list[Any]:
    drained = []
    while not participant.data.empty():
        drained.append(participant.data.get_nowait())
    return drained
