"""The chat bot's pure logic: token buckets, the word filter, moderation order, notice
throttling, both wire forms' parsing, a meeting's chat policy, what a newcomer gets as
history, the roster that waits for a sender the SDK does not know yet, what a closing
pipeline does with late items, and how the RPCs answer failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

import pytest
from livekit import rtc

from talkplatform_agents.bots.chat.bot import due_history
from talkplatform_agents.bots.chat.context import ChatContext
from talkplatform_agents.bots.chat.inbound import from_legacy, from_text_stream
from talkplatform_agents.bots.chat.moderation import Code, Moderator
from talkplatform_agents.bots.chat.notices import NoticeThrottle
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.chat.pipeline import Accepted, ChatPipeline, Reaction
from talkplatform_agents.bots.chat.roster import Roster, StrictClock, name_of
from talkplatform_agents.bots.chat.rpc import ChatRpc
from talkplatform_agents.bots.chat.wordfilter import WordFilter
from talkplatform_agents.bots.ratelimit import RateLimiter, TokenBucket
from talkplatform_agents.errors import Unavailable
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.store.chat import StoredMessage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_token_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0)


def test_rate_limiter_is_per_sender() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")


def test_flood_of_1000_a_second_lets_through_burst_plus_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 10, clock)
    accepted = 0
    for _ in range(1000):
        clock.now += 0.001
        accepted += limiter.allow("flooder")
    assert 10 + 1 <= accepted <= 10 + 2  # the burst, then 2 a second over one second


def test_word_filter_whole_words_any_case_and_masking() -> None:
    words = WordFilter(["darn", "heck", "a.b"])
    assert words.check("Well DARN it").found == ("darn",)
    assert words.check("Well DARN it").text == "Well **** it"
    assert words.check("darning and checkers").found == ()  # not inside other words
    assert words.check("a.b but not axb").text == "*** but not axb"  # escaped, literal
    assert words.check("heck, darn! heck").found == ("heck", "darn")
    assert WordFilter([]).check("anything").found == ()


def test_moderation_order_and_codes() -> None:
    clock = Clock()
    options = ChatOptions(max_message_chars=10, message_burst=2, blocked_words=("darn",))
    mod = Moderator(options, clock)
    assert mod.message("a", "hi", muted=True).refused is Code.MUTED
    assert mod.message("a", "   ", muted=False).refused is Code.EMPTY
    too_long = mod.message("a", "x" * 11, muted=False)
    assert too_long.refused is Code.TOO_LARGE and "10 characters" in too_long.detail
    assert mod.message("a", "darn", muted=False).refused is Code.BLOCKED_WORD
    assert mod.message("a", "fine", muted=False).refused is None
    assert mod.message("a", "fine", muted=False).refused is Code.RATE_LIMITED
    masking = Moderator(ChatOptions(blocked_words=("darn",), blocked_action="mask"), clock)
    verdict = masking.message("b", "oh darn", muted=False)
    assert verdict.refused is None and verdict.masked and verdict.text == "oh ****"


def test_reactions_have_their_own_rate() -> None:
    clock = Clock()
    mod = Moderator(ChatOptions(reactions_per_second=1, reaction_burst=2), clock)
    assert [mod.reaction("a", muted=False) for _ in range(3)] == [None, None, Code.RATE_LIMITED]
    assert mod.reaction("b", muted=True) is Code.MUTED


def test_notice_throttle_counts_what_it_holds_back() -> None:
    clock = Clock()
    throttle = NoticeThrottle(rate=1.0, burst=1, clock=clock)
    assert throttle.admit("a", "no") == "no"
    assert throttle.admit("a", "no") is None
    assert throttle.admit("a", "no") is None
    clock.now += 1
    assert throttle.admit("a", "no") == "no (2 more of your messages were refused meanwhile.)"


def test_text_stream_forms() -> None:
    plain = from_text_stream("s1", "ann", "hi", {})
    assert (plain.relay, plain.to, plain.legacy) == (False, (), False)
    relayed = from_text_stream("s2", "ann", "hi", {proto.ATTR_RELAY: "1", "unknown": "x"})
    assert relayed.relay
    private = from_text_stream("s3", "ann", "psst", {proto.ATTR_TO: "bob, carl,bob"})
    assert private.relay and private.private and private.to == ("bob", "carl")
    with pytest.raises(proto.BadPayload, match="identity"):
        from_text_stream("s4", "ann", "x", {proto.ATTR_TO: "bad identity!"})
    with pytest.raises(proto.BadPayload, match="stream id"):
        from_text_stream("x" * 200, "ann", "x", None)


def test_legacy_form() -> None:
    body = {"id": "m1", "timestamp": 1, "message": "hi", "from": {"x": 1}, "editTimestamp": 2}
    message = from_legacy("ann", json.dumps(body).encode())
    assert message is not None and (message.id, message.text, message.relay) == ("m1", "hi", False)
    copy = {"id": "m1", "timestamp": 1, "message": "hi", "ignoreLegacy": True}
    assert from_legacy("ann", json.dumps(copy).encode()) is None
    private = {"id": "m2", "message": "psst", "to": ["bob"], "replyTo": "m1"}
    parsed = from_legacy("ann", json.dumps(private).encode())
    assert parsed is not None and parsed.to == ("bob",) and parsed.reply_to == "m1"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff\xfe{", "UTF-8"),
        (b"{not json", "JSON"),
        (b"", "empty"),
        (b'{"id": "m", "message": 5}', "message"),
        (b'{"message": "no id"}', "id"),
        (b'{"id": "", "message": "x"}', "id"),
        (b"[1, 2]", "payload"),
    ],
)
def test_legacy_bad_input_is_a_readable_error(payload: bytes, why: str) -> None:
    with pytest.raises(proto.BadPayload, match=why):
        from_legacy("ann", payload)


def test_reaction_payload() -> None:
    reaction = proto.parse_lenient(
        proto.ReactionIn, b'{"id":"r","emoji":"x","messageId":"m","z":1}'
    )
    assert (reaction.emoji, reaction.message_id) == ("x", "m")
    with pytest.raises(proto.BadPayload, match="emoji"):
        proto.parse_lenient(proto.ReactionIn, b'{"id":"r","emoji":""}')


def test_meeting_policy_overrides_and_errors() -> None:
    base = ChatOptions()
    assert base.for_meeting({}) is base
    policy = {"hostsSeePrivate": True, "blockedWords": ["x"], "blockedAction": "mask"}
    custom = base.for_meeting({"chat": {**policy, "historySize": 3}})
    assert custom.hosts_see_private and custom.blocked_words == ("x",)
    assert (custom.blocked_action, custom.history_size) == ("mask", 3)
    for bad in ({"chat": []}, {"chat": {"historySize": "3"}}, {"chat": {"historySize": 501}}):
        with pytest.raises(ValueError, match="chat"):
            base.for_meeting(bad)
    with pytest.raises(ValueError, match="blank"):
        ChatOptions(blocked_words=(" ",))


T0 = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _stored(message_id: str, sender: str, at: float) -> StoredMessage:
    return StoredMessage(
        seq=0, meeting_id="m", id=message_id, sender=sender, sender_name=None, sent_at=_at(at),
        text="t", reply_to=None, private=False, recipients=(), edited_at=None, edit_count=0,
        deleted_at=None, deleted_by=None,
    )  # fmt: skip


def test_history_stops_when_the_bot_learns_of_the_newcomer() -> None:
    history = [_stored("a", "ann", 1), _stored("b", "bob", 5), _stored("c", "ann", 10)]
    due = due_history(history, "carl", joined=_at(6), session_start=_at(4))
    assert [m.id for m in due] == ["a", "b"]  # "c" reached carl live


def test_history_never_holds_the_newcomers_own_messages_of_this_session() -> None:
    # Carl wrote at 5, after joining (4) but before the bot learnt of him (6); his message
    # from an earlier visit (2) is history like anyone's.
    history = [_stored("old", "carl", 2), _stored("a", "ann", 3), _stored("mine", "carl", 5)]
    due = due_history(history, "carl", joined=_at(6), session_start=_at(4))
    assert [m.id for m in due] == ["old", "a"]
    # Without the server's join time, the bot's own instant is the bound.
    due = due_history(history, "carl", joined=_at(6), session_start=None)
    assert [m.id for m in due] == ["old", "a", "mine"]


def test_strict_clock_never_repeats() -> None:
    clock = StrictClock()
    stamps = [clock.now() for _ in range(1000)]
    assert all(a < b for a, b in itertools.pairwise(stamps))


@dataclass
class FakeParticipant:
    identity: str
    name: str = ""
    metadata: str = ""
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD


@dataclass
class FakeRoom:
    name: str = "meeting-x"
    remote_participants: dict[str, FakeParticipant] = field(default_factory=dict)

    def join(self, participant: FakeParticipant) -> rtc.RemoteParticipant:
        self.remote_participants[participant.identity] = participant
        return cast(rtc.RemoteParticipant, participant)


def _roster(room: FakeRoom, wait_s: float = 10) -> Roster:
    return Roster(cast(rtc.Room, room), wait_s)


def test_a_name_comes_from_the_token() -> None:
    assert name_of(cast(rtc.RemoteParticipant, FakeParticipant("a", name="Ann"))) == "Ann"
    from_metadata = FakeParticipant("a", metadata='{"role":"participant","name":"Ann"}')
    assert name_of(cast(rtc.RemoteParticipant, from_metadata)) == "Ann"
    for metadata in ("", "not json", "[]", '{"name": 3}'):
        assert name_of(cast(rtc.RemoteParticipant, FakeParticipant("a", metadata=metadata))) is None


async def test_a_message_waits_for_its_sender_to_be_known() -> None:
    room = FakeRoom()
    roster = _roster(room)
    waiting = [asyncio.create_task(roster.sender_name("carl")) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiting)
    roster.arrived(room.join(FakeParticipant("carl", name="Carl")))
    assert await asyncio.gather(*waiting) == ["Carl", "Carl"]
    assert await roster.sender_name("carl") == "Carl"  # known: no wait at all
    assert roster.humans() == ["carl"] and roster.here("carl")


async def test_a_sender_who_never_appears_is_waited_for_a_bounded_time() -> None:
    room = FakeRoom()
    roster = _roster(room, wait_s=0.05)
    assert await roster.sender_name("ghost") is None
    # Stopping wakes whoever still waits, and nobody waits after that.
    roster = _roster(room)
    waiting = asyncio.create_task(roster.sender_name("ghost"))
    await asyncio.sleep(0)
    roster.close()
    assert await waiting is None
    assert await roster.sender_name("other") is None


def test_agents_are_not_people() -> None:
    room = FakeRoom()
    room.join(FakeParticipant("bot", kind=rtc.ParticipantKind.PARTICIPANT_KIND_AGENT))
    room.join(FakeParticipant("ann"))
    roster = _roster(room)
    assert roster.humans() == ["ann"]
    assert roster.is_agent("bot") and not roster.is_agent("ann") and not roster.is_agent("x")


# -- closing, and failures an RPC caller sees -------------------------------------------


def _closing_context(chat: object = None) -> ChatContext:
    # Only what the pipeline's refusal and the RPCs read: the tag, the meeting, the store.
    fake = SimpleNamespace(tag="meeting-0123", meeting_id="0123", store=SimpleNamespace(chat=chat))
    return cast(ChatContext, fake)


async def test_a_closed_pipeline_refuses_what_comes_late_instead_of_dropping_it() -> None:
    pipeline = ChatPipeline(_closing_context())
    await pipeline.aclose()
    late = from_legacy("ann", json.dumps({"id": "m1", "message": "hi"}).encode())
    assert late is not None
    verdict = Moderator(ChatOptions()).message("ann", late.text, muted=False)
    # Refused, so the bot tells the sender (Code.UNAVAILABLE) rather than losing it.
    assert not pipeline.put(Accepted(late, verdict, "Ann"))
    reaction = proto.parse_lenient(proto.ReactionIn, b'{"id": "r1", "emoji": "+1"}')
    assert not pipeline.put(Reaction("ann", reaction))
    await pipeline.aclose()  # idempotent


class _LocalParticipant:
    def __init__(self) -> None:
        self.methods: dict[str, Callable[[rtc.RpcInvocationData], Awaitable[str]]] = {}

    def register_rpc_method(
        self, name: str, handler: Callable[[rtc.RpcInvocationData], Awaitable[str]]
    ) -> None:
        self.methods[name] = handler


class _FailingChatStore:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def reaction_counts(self, meeting_id: str) -> None:
        raise self.error


async def _call_reactions(error: Exception, payload: str = "{}") -> rtc.RpcError:
    local = _LocalParticipant()
    ChatRpc(_closing_context(_FailingChatStore(error))).register(cast(rtc.LocalParticipant, local))
    call = rtc.RpcInvocationData("req-1", "ann", payload, 5.0, proto.RPC_REACTIONS)
    with pytest.raises(rtc.RpcError) as raised:
        await local.methods[proto.RPC_REACTIONS](call)
    return raised.value


async def test_chat_rpcs_answer_failures_as_the_rest_api_would() -> None:
    # The store unreachable: 2000 + 503, with the reason, as the moderator answers it.
    unavailable = await _call_reactions(Unavailable("the database is unreachable"))
    assert (unavailable.code, unavailable.message) == (2503, "the database is unreachable")
    # The method's own error stays as it is.
    assert (await _call_reactions(RuntimeError("x"), "[]")).code == proto.INVALID_PAYLOAD
    # A bug: an internal error, never its details.
    bug = await _call_reactions(RuntimeError("secret detail"))
    assert (bug.code, bug.message) == (2500, "internal error")
