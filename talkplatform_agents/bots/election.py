"""Which of two (or more) bots of one kind stays in a room: one rule for every bot.

The service re-dispatches a bot that seems missing (``service/reconciler.py``), and a
dispatch it thought lost may land after all, so a room can get a second bot of a kind, even
long after the first. Exactly one must stay, and it should be the one people already talk
to. The rule, which every bot of the kind applies to the same facts and so agrees on:

- a bot compares itself only with agents of its own agent name (``lk.agent.name``, which
  livekit-agents sets): a meeting room holds a chat bot and a moderator side by side;
- a bot marks itself active (``ACTIVE_ATTRIBUTE``) once it serves the room; an active bot
  stays, and a bot not yet active yields to any active one;
- among bots alike in that, the smallest identity stays.

A bot yields by leaving the room (its job then ends). It runs the rule when it joins, when
another participant arrives, and when one's attributes change (another bot becoming active).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from livekit import rtc

from talkplatform_agents.lk.naming import ACTIVE_ATTRIBUTE, AGENT_NAME_ATTRIBUTE

__all__ = ["Election", "yield_to"]

logger = logging.getLogger(__name__)

_ACTIVE = "1"  # the value of ACTIVE_ATTRIBUTE on a bot that serves its room


def yield_to(
    agent_name: str, me: str, active: bool, others: Mapping[str, Mapping[str, str]]
) -> str | None:
    """The bot this one (identity ``me``, running ``agent_name``, ``active`` or not) should
    leave the room to, or None to stay. ``others``: the other agents in the room, by
    identity, with their attributes."""
    rivals = {
        identity: attributes.get(ACTIVE_ATTRIBUTE) == _ACTIVE
        for identity, attributes in others.items()
        if identity != me and attributes.get(AGENT_NAME_ATTRIBUTE) == agent_name
    }
    running = sorted(identity for identity, is_active in rivals.items() if is_active)
    if running and not active:
        return running[0]
    # Alike in activity (all active, or none): the smallest identity stays.
    alike = running if active else sorted(rivals)
    return alike[0] if alike and alike[0] < me else None


class Election:
    """One bot's side of the rule in its room. ``on_yield`` gets the identity of the bot
    this one leaves to, once; it should end the job (``ctx.shutdown``)."""

    def __init__(self, room: rtc.Room, agent_name: str, on_yield: Callable[[str], None]) -> None:
        self._room = room
        self._agent_name = agent_name
        self._on_yield = on_yield
        self._active = False
        self._yielded_to: str | None = None
        self._watching = False

    @property
    def yielded(self) -> bool:
        return self._yielded_to is not None

    def start(self) -> bool:
        """Watch the room for rivals and decide now: False when this bot yields already
        (and so must not start serving)."""
        if not self._watching:
            self._watching = True
            self._room.on("participant_connected", self._check)
            self._room.on("participant_attributes_changed", self._check)
        self._check()
        return not self.yielded

    async def mark_active(self) -> None:
        """Say that this bot serves the room, so that later duplicates yield to it. Call it
        once the bot has started; a bot that yielded meanwhile stays silent."""
        if self.yielded:
            return
        # Active in this bot's own decisions while the others learn it: a rival arriving
        # meanwhile must not make it yield.
        self._active = True
        try:
            await self._room.local_participant.set_attributes({ACTIVE_ATTRIBUTE: _ACTIVE})
        except Exception as exc:
            # The others never saw it active: were it to keep counting itself active, it
            # and a not-yet-active rival with a smaller identity would both stay. Back to
            # the identity rule, decided again now.
            self._active = False
            logger.warning(
                "[%s] could not mark the %s bot active (%r); deciding by identity",
                self._room.name,
                self._agent_name,
                exc,
            )
            self._check()

    def close(self) -> None:
        """Stop watching the room. Idempotent."""
        if self._watching:
            self._watching = False
            self._room.off("participant_connected", self._check)
            self._room.off("participant_attributes_changed", self._check)

    def _check(self, *_: object) -> None:
        if self.yielded:
            return
        others = {
            p.identity: dict(p.attributes)
            for p in self._room.remote_participants.values()
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        }
        me = self._room.local_participant.identity
        other = yield_to(self._agent_name, me, self._active, others)
        if other is None:
            return
        self._yielded_to = other
        logger.info(
            "[%s] %s bot %s is here (and stays); %s leaves",
            self._room.name,
            self._agent_name,
            other,
            me,
        )
        self._on_yield(other)
