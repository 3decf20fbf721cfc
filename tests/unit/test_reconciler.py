"""The service's bot reconciler against an in-memory server: which bots it dispatches into a
room, when it looks again, how it tells the hosts of a missing bot, and that closing it ends
its pending checks."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from livekit import api

from talkplatform_agents.lk.bot_status import TOPIC_BOTS_MISSING, BotsMissing
from talkplatform_agents.lk.naming import (
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    ECHO_AGENT_NAME,
    ROLE_ATTRIBUTE,
    WAITING_ROOM_AGENT_NAME,
)
from talkplatform_agents.service.reconciler import BotReconciler, ReconcilerOptions

MEETING = "meeting-0123abcd"
LOBBY = "meeting-0123abcd-lobby"
NOW = ReconcilerOptions(grace_s=0, starting_s=0, warn_after_s=3600)
WARN_AT_ONCE = replace(NOW, warn_after_s=0)


def _user(identity: str, role: str = "participant") -> api.ParticipantInfo:
    return api.ParticipantInfo(
        identity=identity,
        kind=api.ParticipantInfo.Kind.STANDARD,
        attributes={ROLE_ATTRIBUTE: role},
    )


def _bot(agent_name: str) -> api.ParticipantInfo:
    return api.ParticipantInfo(
        identity=f"agent-{agent_name}",
        kind=api.ParticipantInfo.Kind.AGENT,
        attributes={AGENT_NAME_ATTRIBUTE: agent_name},
    )


class FakeServer:
    """A room's participants and the server's pending jobs. A dispatch is lost (no job, no
    bot) as many times as ``lost`` says; after that its bot joins the room at once. The
    users leave after ``users_stay`` looks, when set. Other rooms' people are in ``others``."""

    def __init__(self, *present: api.ParticipantInfo) -> None:
        self.present = list(present)
        self.others: dict[str, list[api.ParticipantInfo]] = {}
        self.in_flight: set[str] = set()
        self.lost = 0
        self.users_stay: int | None = None
        self.dispatched: list[tuple[str, str]] = []
        self.sent: list[tuple[str, str, BotsMissing, list[str]]] = []
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
        if room in self.others:
            return list(self.others[room])
        self.looked += 1
        if self.fail is not None:
            raise self.fail
        if self.users_stay is not None and self.looked > self.users_stay:
            self.present = [p for p in self.present if p.kind == api.ParticipantInfo.Kind.AGENT]
        return list(self.present)

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None:
        assert topic == TOPIC_BOTS_MISSING
        self.sent.append((room, topic, BotsMissing.from_json(payload), list(destinations or [])))

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
    server.users_stay = 3
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == []
    assert server.looked == 4  # it kept looking until the users left


async def test_a_lost_dispatch_is_retried() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.lost = 1
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == [(MEETING, WAITING_ROOM_AGENT_NAME)] * 2
    assert server.looked == 3  # the third look finds the bot there, and ends the check


async def test_it_keeps_trying_for_as_long_as_the_room_has_users() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.lost = 1000  # no worker ever takes it
    server.users_stay = 12
    reconciler = BotReconciler(server, NOW)
    await _run(reconciler, MEETING)
    assert server.dispatched == [(MEETING, WAITING_ROOM_AGENT_NAME)] * 12
    assert reconciler.missing() == {}  # nobody left to serve: no longer counted missing


def test_looks_back_off_to_a_bound() -> None:
    options = ReconcilerOptions(grace_s=4, max_interval_s=30)
    assert [options.interval(n) for n in range(6)] == [4, 8, 16, 30, 30, 30]
    with pytest.raises(ValueError, match="grace_s"):
        ReconcilerOptions(grace_s=-1)


async def test_the_hosts_hear_of_a_missing_bot_until_it_arrives() -> None:
    host, cohost, guest = _user("h", "host"), _user("c", "cohost"), _user("g")
    server = FakeServer(host, cohost, guest, _bot(CHAT_AGENT_NAME))
    server.lost = 2  # two dispatches are lost; the third brings the bot
    reconciler = BotReconciler(server, WARN_AT_ONCE)
    await _run(reconciler, MEETING)
    warnings = [(room, body, to) for room, _, body, to in server.sent]
    assert [w[1].missing for w in warnings] == [(WAITING_ROOM_AGENT_NAME,)] * 3 + [()]
    assert all(room == MEETING and sorted(to) == ["c", "h"] for room, _, to in warnings)
    assert [w[1].looks for w in warnings[:3]] == [1, 2, 3]
    assert reconciler.stats.warnings == 3
    assert reconciler.missing() == {}


async def test_a_lobby_missing_its_moderator_tells_the_hosts_in_the_meeting() -> None:
    server = FakeServer(_user("guest"))
    server.others[MEETING] = [_user("h", "host"), _user("p")]
    server.lost = 1
    reconciler = BotReconciler(server, WARN_AT_ONCE)
    await _run(reconciler, LOBBY)
    assert [(room, body.room, body.missing, to) for room, _, body, to in server.sent] == [
        (MEETING, LOBBY, (WAITING_ROOM_AGENT_NAME,), ["h"]),  # the lost dispatch
        (MEETING, LOBBY, (WAITING_ROOM_AGENT_NAME,), ["h"]),  # the one that brings it
        (MEETING, LOBBY, (), ["h"]),  # the all-clear
    ]


async def test_missing_bots_are_counted_while_missing() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.lost = 1000
    dispatched = asyncio.Event()
    dispatch = server.dispatch

    async def dispatch_then_hold(room: str, agent_name: str) -> str:
        server.gate = asyncio.Event()  # the next look waits: the count is read meanwhile
        dispatched.set()
        return await dispatch(room, agent_name)

    server.dispatch = dispatch_then_hold  # type: ignore[method-assign]
    reconciler = BotReconciler(server, NOW)
    check = reconciler.participant_joined(MEETING, is_agent=False)
    assert check is not None
    await asyncio.wait_for(dispatched.wait(), 30)
    assert list(reconciler.missing()) == [(MEETING, WAITING_ROOM_AGENT_NAME)]
    await reconciler.aclose()
    assert reconciler.missing() == {}


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
    assert server.looked == NOW.failures  # then it gives up; the next arrival tries again


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
    with pytest.raises(ValueError, match="failures"):
        ReconcilerOptions(failures=0)


async def test_a_slow_start_is_waited_for() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))
    server.in_flight = {WAITING_ROOM_AGENT_NAME}  # taken by a worker whose process is slow
    looks_before_arrival = 9

    async def participants(room: str) -> list[api.ParticipantInfo]:
        server.looked += 1
        if server.looked == looks_before_arrival:
            server.present.append(_bot(WAITING_ROOM_AGENT_NAME))
        return list(server.present)

    server.participants = participants  # type: ignore[method-assign]
    reconciler = BotReconciler(server, replace(NOW, starting_s=3600))
    await _run(reconciler, MEETING)
    assert server.dispatched == []  # no twin while it was on its way
    assert server.looked == looks_before_arrival


async def test_a_bot_that_left_is_dispatched_again() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME))  # the moderator just left
    options = replace(NOW, grace_s=3600, left_grace_s=0, max_interval_s=0)
    reconciler = BotReconciler(server, options)
    check = reconciler.bot_left(MEETING)  # soon: not after the long grace of a join
    assert check is not None
    await asyncio.wait_for(check, 30)
    assert server.dispatched == [(MEETING, WAITING_ROOM_AGENT_NAME)]
    await reconciler.aclose()


async def test_a_finished_check_makes_way_for_the_next() -> None:
    server = FakeServer(_user("alice"), _bot(CHAT_AGENT_NAME), _bot(WAITING_ROOM_AGENT_NAME))
    reconciler = BotReconciler(server, NOW)
    first = reconciler.participant_joined(MEETING, is_agent=False)
    assert first is not None
    await asyncio.wait_for(first, 30)
    second = reconciler.bot_left(MEETING)  # right after: the finished one is no obstacle
    assert second is not None
    await asyncio.wait_for(second, 30)
    assert server.looked == 2
    await reconciler.aclose()
