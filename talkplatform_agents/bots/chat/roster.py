"""Who is in the meeting room as the bot's SDK knows them, and what they are called.

A participant's first message can reach the bot before the SDK tells it that they joined:
the join comes over signalling, the message over the data channel, and the data channel
may win. Their name is in their token (the participant's name, and ``name`` in its
metadata), which the SDK reads once it knows them, so a message from someone the SDK
does not know yet waits for them, a bounded time, rather than being stored nameless.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass, field

from livekit import rtc

__all__ = ["DEFAULT_ARRIVAL_WAIT_S", "Roster", "StrictClock", "name_of"]

logger = logging.getLogger(__name__)

_AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
# How long a message waits for the SDK to learn of its sender. Far longer than the race
# it covers: the sender who never appears has left.
DEFAULT_ARRIVAL_WAIT_S = 10.0


def name_of(participant: rtc.RemoteParticipant) -> str | None:
    """The participant's display name, from their token: its name, else its metadata's."""
    if participant.name:
        return participant.name
    with contextlib.suppress(ValueError):
        metadata = json.loads(participant.metadata or "{}")
        if isinstance(metadata, dict) and isinstance(name := metadata.get("name"), str):
            return name or None
    return None


class StrictClock:
    """UTC time that never repeats or goes back, within this process.

    The bot compares two instants it takes itself: when it learnt of a participant, and
    when it stored a message (deciding then who gets it live). Equal or reordered instants
    would make a message both history and live, or neither.
    """

    def __init__(self) -> None:
        self._last = dt.datetime.min.replace(tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        now = dt.datetime.now(dt.UTC)
        if now <= self._last:
            now = self._last + dt.timedelta(microseconds=1)
        self._last = now
        return now


@dataclass
class _Arrival:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


class Roster:
    def __init__(self, room: rtc.Room, arrival_wait_s: float = DEFAULT_ARRIVAL_WAIT_S) -> None:
        self._room = room
        self._wait_s = arrival_wait_s
        self._arrivals: dict[str, _Arrival] = {}
        self._closed = False

    def humans(self) -> list[str]:
        return [p.identity for p in self._room.remote_participants.values() if p.kind != _AGENT]

    def is_agent(self, identity: str) -> bool:
        participant = self._room.remote_participants.get(identity)
        return participant is not None and participant.kind == _AGENT

    def here(self, identity: str) -> bool:
        return identity in self._room.remote_participants

    def arrived(self, participant: rtc.RemoteParticipant) -> None:
        """The SDK knows ``participant`` now: wake whoever waits for them."""
        if (arrival := self._arrivals.pop(participant.identity, None)) is not None:
            arrival.event.set()

    async def sender_name(self, identity: str) -> str | None:
        """The sender's name; waits (bounded) for a sender the SDK does not know yet."""
        participant = self._room.remote_participants.get(identity)
        if participant is None and not self._closed:
            await self._wait_for(identity)
            participant = self._room.remote_participants.get(identity)
        if participant is None:
            logger.warning(
                "[%s] %s never appeared in the room; their message is stored without a name",
                self._room.name,
                identity,
            )
            return None
        return name_of(participant)

    async def _wait_for(self, identity: str) -> None:
        logger.info("[%s] %s wrote before the SDK told of their arrival", self._room.name, identity)
        arrival = self._arrivals.setdefault(identity, _Arrival())
        arrival.waiters += 1
        try:
            async with asyncio.timeout(self._wait_s):
                await arrival.event.wait()
        except TimeoutError:
            pass
        finally:
            arrival.waiters -= 1
            if arrival.waiters == 0 and self._arrivals.get(identity) is arrival:
                del self._arrivals[identity]

    def close(self) -> None:
        """Stop waiting: each waiting message goes on with what is known now."""
        self._closed = True
        for arrival in self._arrivals.values():
            arrival.event.set()
        self._arrivals.clear()
