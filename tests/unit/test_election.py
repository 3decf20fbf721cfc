"""The duplicate-bot rule every bot applies: which of several bots of one kind stays."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from livekit import rtc

from talkplatform_agents.bots.election import Election, yield_to
from talkplatform_agents.lk.naming import ACTIVE_ATTRIBUTE, AGENT_NAME_ATTRIBUTE, CHAT_AGENT_NAME

CHAT = CHAT_AGENT_NAME
MODERATOR = "waiting-room"


def _attrs(agent_name: str = CHAT, *, active: bool = False) -> dict[str, str]:
    attributes = {AGENT_NAME_ATTRIBUTE: agent_name}
    if active:
        attributes[ACTIVE_ATTRIBUTE] = "1"
    return attributes


def test_alone_it_stays() -> None:
    assert yield_to(CHAT, "agent-b", False, {}) is None
    assert yield_to(CHAT, "agent-b", True, {}) is None


def test_starting_together_the_smallest_identity_stays() -> None:
    assert yield_to(CHAT, "agent-b", False, {"agent-a": _attrs()}) == "agent-a"
    assert yield_to(CHAT, "agent-a", False, {"agent-b": _attrs()}) is None


def test_an_active_bot_stays_whatever_its_identity() -> None:
    # The later duplicate has the smaller identity, yet the bot people talk to stays.
    assert yield_to(CHAT, "agent-a", False, {"agent-b": _attrs(active=True)}) == "agent-b"
    assert yield_to(CHAT, "agent-b", True, {"agent-a": _attrs()}) is None


def test_two_active_bots_keep_the_smallest_identity() -> None:
    assert yield_to(CHAT, "agent-b", True, {"agent-a": _attrs(active=True)}) == "agent-a"
    assert yield_to(CHAT, "agent-a", True, {"agent-b": _attrs(active=True)}) is None


def test_it_yields_to_the_smallest_active_one() -> None:
    others = {
        "agent-a": _attrs(),
        "agent-d": _attrs(active=True),
        "agent-c": _attrs(active=True),
    }
    assert yield_to(CHAT, "agent-b", False, others) == "agent-c"


def test_only_bots_of_the_same_agent_name_count() -> None:
    # A meeting room holds a moderator and a chat bot: neither is the other's duplicate.
    others = {"agent-a": _attrs(MODERATOR, active=True), "agent-0": _attrs(MODERATOR)}
    assert yield_to(CHAT, "agent-b", False, others) is None
    assert yield_to(CHAT, "agent-b", False, {"agent-a": {}}) is None  # no agent name at all
    assert yield_to(MODERATOR, "agent-b", False, others) == "agent-a"


def test_its_own_identity_among_the_others_is_ignored() -> None:
    assert yield_to(CHAT, "agent-b", False, {"agent-b": _attrs(active=True)}) is None


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_exactly_one_stays_whoever_is_active(size: int) -> None:
    identities = [f"agent-{i}" for i in range(size)]
    for flags in itertools.product([False, True], repeat=size):
        active = dict(zip(identities, flags, strict=True))
        attributes = {i: _attrs(active=a) for i, a in active.items()}
        stay = [
            me
            for me in identities
            if yield_to(CHAT, me, active[me], {i: a for i, a in attributes.items() if i != me})
            is None
        ]
        assert len(stay) == 1, (flags, stay)
        if any(flags):
            assert active[stay[0]]  # never an inactive one over an active one


# -- the helper, over a stand-in for the room -------------------------------------------


@dataclass
class FakeParticipant:
    identity: str
    attributes: dict[str, str] = field(default_factory=dict)
    kind: Any = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    published: list[dict[str, str]] = field(default_factory=list)
    # Run while set_attributes is on its way to the server; then it fails if ``refused``.
    meanwhile: Callable[[], None] | None = None
    refused: Exception | None = None

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        if self.meanwhile is not None:
            self.meanwhile()
        if self.refused is not None:
            raise self.refused
        self.published.append(attributes)
        self.attributes.update(attributes)


class FakeRoom:
    name = "meeting-0123abcd"

    def __init__(self, me: str) -> None:
        self.local_participant = FakeParticipant(me, _attrs())
        self.remote_participants: dict[str, FakeParticipant] = {}
        self.handlers: dict[str, list[Callable[..., None]]] = {}

    def on(self, event: str, handler: Callable[..., None]) -> None:
        self.handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Callable[..., None]) -> None:
        self.handlers[event].remove(handler)

    def arrive(self, participant: FakeParticipant) -> None:
        self.remote_participants[participant.identity] = participant
        for handler in list(self.handlers.get("participant_connected", [])):
            handler(participant)

    def change(self, identity: str, attributes: dict[str, str]) -> None:
        participant = self.remote_participants[identity]
        participant.attributes.update(attributes)
        for handler in list(self.handlers.get("participant_attributes_changed", [])):
            handler(attributes, participant)


def _election(room: FakeRoom, yielded: list[str]) -> Election:
    return Election(cast(rtc.Room, room), CHAT, yielded.append)


async def test_a_later_duplicate_yields_to_the_active_bot() -> None:
    room = FakeRoom("agent-b")
    yielded: list[str] = []
    election = _election(room, yielded)
    assert election.start()
    await election.mark_active()
    assert room.local_participant.published == [{ACTIVE_ATTRIBUTE: "1"}]
    room.arrive(FakeParticipant("agent-a", _attrs()))  # smaller, but not active: it yields
    room.arrive(FakeParticipant("human", kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD))
    assert yielded == [] and not election.yielded
    election.close()
    election.close()  # idempotent
    assert all(not handlers for handlers in room.handlers.values())


async def test_a_starting_bot_yields_once_another_becomes_active() -> None:
    room = FakeRoom("agent-a")
    room.remote_participants["agent-b"] = FakeParticipant("agent-b", _attrs())
    yielded: list[str] = []
    election = _election(room, yielded)
    assert election.start()  # smaller identity, nobody active: it stays for now
    room.change("agent-b", {ACTIVE_ATTRIBUTE: "1"})
    assert yielded == ["agent-b"] and election.yielded
    room.change("agent-b", {"other": "x"})
    assert yielded == ["agent-b"]  # once only
    await election.mark_active()
    assert room.local_participant.published == []  # a bot that yielded never claims the room


async def test_a_bot_that_could_not_mark_itself_active_decides_by_identity_again() -> None:
    room = FakeRoom("agent-b")
    yielded: list[str] = []
    election = _election(room, yielded)
    assert election.start()
    # A smaller duplicate arrives while the attribute is on its way: meanwhile this bot
    # counts itself active and stays; the duplicate, seeing no active bot, stays too.
    room.local_participant.meanwhile = lambda: room.arrive(FakeParticipant("agent-a", _attrs()))
    room.local_participant.refused = ConnectionError("signal lost")
    await election.mark_active()
    # Nobody ever saw it active: by the identity rule, the smaller one stays, this one leaves.
    assert yielded == ["agent-a"] and election.yielded
    assert room.local_participant.published == []


async def test_a_bot_that_could_not_mark_itself_active_stays_when_alone() -> None:
    room = FakeRoom("agent-b")
    room.local_participant.refused = ConnectionError("signal lost")
    yielded: list[str] = []
    election = _election(room, yielded)
    assert election.start()
    await election.mark_active()
    assert yielded == [] and not election.yielded
    # A larger duplicate yields to it by identity, as it would to an active bot.
    room.arrive(FakeParticipant("agent-c", _attrs()))
    assert yielded == []


def test_a_bot_that_finds_an_active_one_yields_at_once() -> None:
    room = FakeRoom("agent-a")
    room.remote_participants["agent-b"] = FakeParticipant("agent-b", _attrs(active=True))
    room.remote_participants["agent-0"] = FakeParticipant("agent-0", _attrs(MODERATOR))
    yielded: list[str] = []
    assert not _election(room, yielded).start()
    assert yielded == ["agent-b"]


def test_a_participant_who_only_claims_to_be_a_bot_is_ignored() -> None:
    room = FakeRoom("agent-b")
    impostor = FakeParticipant(
        "agent-a", _attrs(active=True), kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    )
    room.remote_participants["agent-a"] = impostor
    yielded: list[str] = []
    assert _election(room, yielded).start()
    assert yielded == []
