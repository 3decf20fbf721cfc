"""The service's bot reconciler against an in-memory server: which bots it dispatches into a
room, when it looks again, and that closing it ends its pending checks."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from livekit import api

from talkplatform_agents.lk.naming import (
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    ECHO_AGENT_NAME,
    WAITING_ROOM_AGENT_NAME,
)
from talkplatform_agents.service.reconciler import BotReconciler, ReconcilerOptions

MEETING = "meeting-0123abcd"
LOBBY = "meeting-0123abcd-lobby"
NOW = ReconcilerOptions(grace_s=0, attempts=3, starting_s=0)


def _user(identity: str) -> api.ParticipantInfo:
    return api.ParticipantInfo(identity=identity, kind=api.ParticipantInfo.Kind.STANDARD)


def _bot(agent_name: str) -> api.ParticipantInfo:
    return api.ParticipantInfo(
        identity=f"agent-{agent_name}",
        kind=api.ParticipantInfo.Kind.AGENT,
        attributes={AGENT_NAME_ATTRIBUTE: agent_name},
    )


class FakeServer:
    """A room's participants and the server's pending jobs. A dispatch is lost (no job, no
    bot) as many times as ``lost`` says; after that its bot joins the room at once."""

    def __init__(self, *present: api.ParticipantInfo) -> None:
        self.present = list(present)
        self.in_flight: set[str] = set()
        self.lost = 0
        self.dispatched: list[tuple[str, str]] = []
        self.looked = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None  # when set: each look waits for it
        self.looking = asyncio.Event()  # a look has started
        self.interrupted = 0  # looks cancelled while waiting for the gate

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        self.looking.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.interrupted += 1
                raise
        self.looked += 1
        if self.fail is not None:
            raise self.fail
        return list(self.present)

    async def agents_in_flight(self, room: str) -> set[str]:
        return set(self.in_flight)

    async def dispatch(self, room: str, agent_name: str) -> str:
        self.dispatched.append((room, agent_name))
        if self.lost > 0:
            self.lost -= 1
        else:
            self.present.append(_bot(agent_name))
        return f"AD_{len(self.dispatched)}"


async def _run(reconciler: BotReconciler, room: str) -> None:
    task = reconciler.participant_joined(room, is_agent=False)
    assert task is not None
    await asyncio.wait_for(task, 30)


async def test_missing_bots_are_dispatched() -> None:
    server = FakeServer(_user("alice"))
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert sorted(server.dispatched) == sorted(
        [(MEETING, WAITING_ROOM_AGENT_NAME), (MEETING, CHAT_AGENT_NAME)]
    )
    await reconciler.aclose()


async def test_a_lobby_gets_only_its_moderator() -> None:
    server = FakeServer(_user("guest"))
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, LOBBY)
    assert server.dispatched == [(LOBBY, WAITING_ROOM_AGENT_NAME)]
    await reconciler.aclose()


async def test_a_present_bot_gets_no_twin() -> None:
    server = FakeServer(_user("alice"), _bot(WAITING_ROOM_AGENT_NAME), _bot(CHAT_AGENT_NAME))
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == []
    assert server.looked == 1  # all there: no second look


async def test_a_bot_on_its_way_gets_no_twin() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.in_flight = {WAITING_ROOM_AGENT_NAME}  # a worker took the job; still starting
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == []
    assert server.looked == NOW.attempts  # it kept looking, bounded


async def test_a_lost_dispatch_is_retried() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.lost = 1
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == [(MEETING, WAITING_ROOM_AGENT_NAME)] * 2
    assert server.looked == 3  # the third look finds the bot there, and ends the check


async def test_retries_are_bounded() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.lost = 1000  # no worker ever takes it
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == [(MEETING, WAITING_ROOM_AGENT_NAME)] * NOW.attempts


async def test_nothing_is_dispatched_once_the_users_left() -> None:
    server = FakeServer(_bot(CHAT_AGENT_NAME))
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == []


async def test_a_failed_look_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(_user("alice"))
    server.fail = ConnectionError("server is restarting")
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == []
    assert f"[{MEETING}] could not reconcile the bots" in caplog.text


async def test_agents_and_rooms_without_bots_start_no_check() -> None:
    server = FakeServer(_user("alice"))
    reconciler = BotReconciler(server, NOW)
    assert reconciler.participant_joined(MEETING, is_agent=True) is None
    assert reconciler.participant_joined("some-other-room", is_agent=False) is None
    await _run(reconciler, "greenroom-alice")
    assert server.dispatched == [("greenroom-alice", ECHO_AGENT_NAME)]
    await reconciler.aclose()


async def test_aclose_cancels_a_look_under_way() -> None:
    server = FakeServer(_user("alice"))
    server.gate = asyncio.Event()  # never set: the look never ends by itself
    reconciler = BotReconciler(server, NOW)
    check = reconciler.participant_joined(MEETING, is_agent=False)
    assert check is not None
    await asyncio.wait_for(server.looking.wait(), 30)  # the look is under way
    await reconciler.aclose()
    assert check.cancelled()
    assert server.interrupted == 1  # cancelled mid-look, not before it began
    assert server.looked == 0
    assert server.dispatched == []


async def test_one_check_per_room_at_a_time() -> None:
    server = FakeServer(_user("alice"))
    server.gate = asyncio.Event()
    reconciler = BotReconciler(server, NOW)
    first = reconciler.participant_joined(MEETING, is_agent=False)
    assert first is not None
    assert reconciler.participant_joined(MEETING, is_agent=False) is None
    server.gate.set()
    await asyncio.wait_for(first, 30)
    # Done: the next arrival looks again.
    again = reconciler.participant_joined(MEETING, is_agent=False)
    assert again is not None
    await asyncio.wait_for(again, 30)
    await reconciler.aclose()


async def test_aclose_cancels_pending_checks() -> None:
    server = FakeServer(_user("alice"))
    reconciler = BotReconciler(server, ReconcilerOptions(grace_s=3600))
    meeting = reconciler.participant_joined(MEETING, is_agent=False)
    lobby = reconciler.participant_joined(LOBBY, is_agent=False)
    assert meeting is not None and lobby is not None
    await reconciler.aclose()
    assert meeting.cancelled() and lobby.cancelled()
    assert server.dispatched == []
    await reconciler.aclose()  # idempotent
    # Closed: a later arrival starts nothing.
    assert reconciler.participant_joined(MEETING, is_agent=False) is None


def test_options_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="grace_s"):
        ReconcilerOptions(grace_s=-1)
    with pytest.raises(ValueError, match="attempts"):
        ReconcilerOptions(attempts=0)


async def test_a_slow_start_is_waited_for_beyond_the_attempts() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.in_flight = {WAITING_ROOM_AGENT_NAME}  # taken by a worker whose process is slow
    looks_before_arrival = NOW.attempts * 3

    async def participants(room: str) -> list[api.ParticipantInfo]:
        server.looked += 1
        if server.looked == looks_before_arrival:
            server.present.append(_bot(WAITING_ROOM_AGENT_NAME))
        return list(server.present)

    server.participants = participants  # type: ignore[method-assign]
    reconciler = BotReconciler(server, replace(NOW, starting_s=3600))
    await _run(reconciler, MEETING)
    assert server.dispatched == []  # no twin, and no giving up while it was on its way
    assert server.looked == looks_before_arrival
