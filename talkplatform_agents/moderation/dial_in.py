"""Phones in meetings (UC-08): callers meet the same door as everyone, and hosts call out.

A meeting's dial-in is the service's numbers and a PIN of its own (``store/dial_ins.py``).
Its SIP dispatch rule (``lk/sip.py``) exists only while the door would let a caller in:
- an ended meeting has none, so its PIN is a wrong PIN (the caller hears so, and is hung up
  on); and so has a locked one;
- a meeting with a waiting room has none either: a caller cannot wait in the lobby and be
  let in later, since livekit-server 1.13 (open source) cannot move a participant between
  rooms (``MoveParticipant`` answers "not implemented"), and a SIP caller cannot take a new
  token. ``details`` says why the line is closed.
``sync`` brings the rule in step with the meeting; the service runs it on every change of
the door it makes and when a meeting's room closes, and the moderator bot removes a caller
the door would refuse (``refuses_caller``) whatever the rule said.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from typing import Any

from talkplatform_agents.errors import ApiError, Conflict, Forbidden
from talkplatform_agents.lk.naming import RoomKind, meeting_room_name, parse_room
from talkplatform_agents.lk.sip import DIALED_BY_ATTRIBUTE, SipApi, check_e164, masked_number
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.policy import MeetingSettings
from talkplatform_agents.store import DialInRepository, DialInView, MeetingView, WaitingStatus
from talkplatform_agents.tasks import TaskSet

__all__ = ["DialIn", "refuses_caller"]

logger = logging.getLogger(__name__)

SWEEP_S = 60.0


def refuses_caller(meeting: MeetingView | None) -> str | None:
    """Why the door turns a phone caller away now (None: it lets them in)."""
    if meeting is None or meeting.ended_at is not None:
        return "ended"
    settings = MeetingSettings.of(meeting.settings)
    if settings.locked:
        return "locked"
    if settings.waiting_room:
        return "waiting-room"
    return None


class DialIn:
    def __init__(self, deps: ModerationDeps, sip: SipApi, dial_ins: DialInRepository) -> None:
        self._deps = deps
        self._sip = sip
        self._dial_ins = dial_ins
        # One sync of a meeting at a time in this process: two at once would both make a
        # rule (two processes at once: the later sync keeps one). A lock lives while some
        # sync holds or awaits it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks = TaskSet("dial-in")

    async def details(self, meeting_id: str, caller: str) -> dict[str, Any]:
        """The numbers and the PIN, for anyone the door would not refuse outright."""
        door = await self._deps.door(meeting_id, caller)  # 404, 410
        if door.standing in (WaitingStatus.DENIED, WaitingStatus.REMOVED):
            raise Forbidden("you may not join this meeting", meetingId=meeting_id)
        if not self._sip.options.dial_in:
            raise Conflict("dial-in is not set up on this service (SIP_DIAL_IN_NUMBERS)")
        view = await self._dial_ins.get_or_create(meeting_id)
        closed = await self.sync(meeting_id)
        return {
            "numbers": list(self._sip.options.dial_in_numbers),
            "pin": view.pin,
            "open": closed is None,
            "closedBecause": closed,
        }

    async def line(self, meeting_id: str) -> tuple[tuple[str, ...], str] | None:
        """The numbers and the PIN for an invitation (None: no dial-in here), its rule
        opened if the door allows. An invitation is never refused for the SIP side: a
        failure to open the rule is logged, and the next look opens it."""
        if not self._sip.options.dial_in:
            return None
        view = await self._dial_ins.get_or_create(meeting_id)
        try:
            await self.sync(meeting_id)
        except ApiError as exc:
            logger.warning("[%s] dial-in not opened for the invitation: %s",
                           meeting_room_name(meeting_id), exc)  # fmt: skip
        return self._sip.options.dial_in_numbers, view.pin

    async def sync(self, meeting_id: str) -> str | None:
        """Make the meeting's rule match its door; why callers are refused, or None."""
        lock = self._locks.get(meeting_id)
        if lock is None:
            lock = self._locks[meeting_id] = asyncio.Lock()
        async with lock:
            return await self._sync(meeting_id)

    async def _sync(self, meeting_id: str) -> str | None:
        view = await self._dial_ins.get(meeting_id)
        refused = refuses_caller(await self._deps.meetings.get(meeting_id))
        if view is None:  # nobody asked for this meeting's dial-in: no rule to keep
            return refused
        rules, stale = await self._sip.rules_of(meeting_id)
        for rule_id in stale:  # on a trunk gone since
            await self._sip.delete_rule(rule_id)
        if refused is not None:
            await self._close(meeting_id, rules, view, refused)
            return refused
        keep = view.rule_id if view.rule_id in rules else (rules[0] if rules else None)
        if keep is None:
            keep = await self._sip.open_rule(meeting_id, meeting_room_name(meeting_id), view.pin)
            logger.info("[%s] dial-in open (rule %s)", meeting_room_name(meeting_id), keep)
            rules = [keep, *rules]
        if keep != view.rule_id:
            await self._dial_ins.set_rule(meeting_id, keep)
        for rule_id in rules:
            if rule_id != keep:  # another process's, made at the same time
                await self._sip.delete_rule(rule_id)
        # Ended or locked while the rule was being made (by another process, say): close.
        refused = refuses_caller(await self._deps.meetings.get(meeting_id))
        if refused is not None:
            await self._close(meeting_id, [keep], view, refused)
        return refused

    async def _close(self, meeting_id: str, rules: list[str], view: DialInView, why: str) -> None:
        for rule_id in rules:
            await self._sip.delete_rule(rule_id)
        if view.rule_id is not None:
            await self._dial_ins.set_rule(meeting_id, None)
        if rules:
            logger.info("[%s] dial-in closed: %s", meeting_room_name(meeting_id), why)

    # -- the sweep ----------------------------------------------------------------------

    def start(self, every_s: float = SWEEP_S) -> None:
        """Look at every meeting with a rule every ``every_s``: a rule whose meeting ended
        or was locked where no sync ran (a host's RPC to the bot, a SIP API that was down,
        a process that died midway) is closed within one period."""
        self._tasks.spawn(self._sweep(every_s), "dial-in sweep")

    async def _sweep(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                meetings = await self._sip.meetings_with_rules()
            except ApiError as exc:
                logger.warning("dial-in sweep: %s", exc)
                continue
            for meeting_id in meetings:
                try:
                    await self.sync(meeting_id)
                except Exception as exc:  # one meeting's trouble must not stop the sweep
                    logger.warning("[%s] dial-in sweep: %r", meeting_room_name(meeting_id), exc)

    async def aclose(self) -> None:
        await self._tasks.aclose()

    async def room_finished(self, room: str) -> None:
        """A meeting's room closed (ended, or emptied): bring its dial-in in step. Never
        fails the webhook that says so: a SIP service that is down is logged."""
        ref = parse_room(room)
        if ref.kind is not RoomKind.MEETING:
            return
        try:
            await self.sync(ref.key)
        except ApiError as exc:
            logger.warning("[%s] dial-in not brought in step: %s", room, exc)

    async def dial_out(self, meeting_id: str, caller: str, number: str) -> dict[str, Any]:
        """A host calls a phone into the meeting and waits for the answer."""
        await self._deps.require_moderator(meeting_id, caller)
        check_e164(number)
        options = self._sip.options
        if not options.dial_out:
            raise Conflict("dial-out is not set up on this service (SIP_OUTBOUND_ADDRESS "
                           "and SIP_OUTBOUND_NUMBER)")  # fmt: skip
        if options.outbound_prefixes and not number.startswith(options.outbound_prefixes):
            raise Forbidden("calls to that number are not allowed from this service",
                            allowed=list(options.outbound_prefixes))  # fmt: skip
        identity = f"phone-{secrets.token_hex(4)}"
        room = meeting_room_name(meeting_id)
        logger.info("[%s] %s calls %s", room, caller, masked_number(number))
        result = await self._sip.dial(room, number, identity, {DIALED_BY_ATTRIBUTE: caller})
        return {"status": "answered", "identity": result.identity, "sipCallId": result.sip_call_id}
