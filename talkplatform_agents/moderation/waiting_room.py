"""The waiting room: who gets in, the hosts' decisions, and what the lobby bot reports."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from livekit import api

from talkplatform_agents.errors import Conflict, Forbidden, NotFound
from talkplatform_agents.lk.naming import lobby_room_name, meeting_room_name
from talkplatform_agents.lk.tokens import MintedToken
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.notify import Notifier, entry_document
from talkplatform_agents.moderation.policy import (
    Entry,
    MeetingSettings,
    admits_on_host_arrival,
    decide_entry,
)
from talkplatform_agents.roles import MODERATOR_ROLES, Role
from talkplatform_agents.store import MeetingSnapshot, WaitingStats, WaitingStatus, WaitingView
from talkplatform_agents.tasks import TaskSet

__all__ = ["EntryGranted", "WaitingRoom"]

logger = logging.getLogger(__name__)

SYSTEM = "system"  # decided_by for admissions no host made (a host's arrival)
_DENIED_GRACE_S = 1.0  # the "denied" message reaches the guest before the server drops them


@dataclass(frozen=True)
class EntryGranted:
    status: Literal["joined", "waiting"]  # a meeting token, or a lobby token
    minted: MintedToken
    # Seconds spent in each stage of the decision (store, server, policy, write, mint), in
    # order: what the token route reports in its Server-Timing header.
    timings: dict[str, float] = field(default_factory=dict)


class _Laps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._last
        self._last = now


class WaitingRoom:
    def __init__(self, deps: ModerationDeps) -> None:
        self._deps = deps
        self.notify = Notifier(deps)
        self._tasks = TaskSet("waiting-room")
        # Parsed settings of each cached snapshot (MeetingRepository.door): parsed once per
        # version of a meeting, and gone with the snapshot.
        self._settings: weakref.WeakKeyDictionary[MeetingSnapshot, MeetingSettings] = (
            weakref.WeakKeyDictionary()
        )

    # -- the door -----------------------------------------------------------------------

    async def request_entry(self, meeting_id: str, user_id: str, name: str) -> EntryGranted:
        """A token request: a meeting token, a lobby token, or a clear refusal. It reads
        the store once (the meeting's version and the user's standing) while the meeting
        is unchanged, and writes only a knock."""
        laps = _Laps()
        door = await self._deps.door(meeting_id, user_id)
        laps.lap("store")
        settings = self._settings_of(door.snapshot)
        is_moderator = door.role in MODERATOR_ROLES
        host_present = True
        if not is_moderator and not settings.join_before_host:
            host_present = bool(await self._present(meeting_id, door.snapshot.moderators()))
            laps.lap("server")
        decision = decide_entry(
            settings,
            user_id=user_id,
            is_moderator=is_moderator,
            # Sent back, even if gone from the lobby since: only a host lets them in.
            decision="waiting"
            if door.sent_back
            else door.standing.value
            if door.standing
            else None,
            host_present=host_present,
        )
        laps.lap("policy")
        if decision is Entry.WAIT:
            entry = await self._deps.waiting.knock(meeting_id, user_id, name)
            if entry.status is WaitingStatus.ADMITTED:  # admitted since we looked
                decision = Entry.JOIN
            elif entry.status is not WaitingStatus.WAITING:
                decision = Entry(entry.status.value)
            laps.lap("write")
        if decision is Entry.JOIN:
            role = door.role or Role.PARTICIPANT
            minted = self._deps.mint_meeting_token(meeting_id, user_id, name, role)
            laps.lap("mint")
            return EntryGranted("joined", minted, laps.timings)
        if decision is Entry.WAIT:
            logger.info("[%s] %s knocks", lobby_room_name(meeting_id), user_id)
            minted = self._deps.lobby_token(meeting_id, user_id, name)
            laps.lap("mint")
            return EntryGranted("waiting", minted, laps.timings)
        reasons = {
            Entry.LOCKED: "the meeting is locked",
            Entry.DENIED: "a host denied entry",
            Entry.REMOVED: "a host removed you from this meeting",
        }
        raise Forbidden(reasons[decision], meetingId=meeting_id, reason=decision.value)

    def _settings_of(self, snapshot: MeetingSnapshot) -> MeetingSettings:
        settings = self._settings.get(snapshot)
        if settings is None:
            settings = self._settings[snapshot] = MeetingSettings.of(snapshot.meeting.settings)
        return settings

    async def hosts_present(self, meeting_id: str) -> list[str]:
        """Hosts and co-hosts in the meeting room now, by the store's roles."""
        moderators = await self._deps.meetings.moderators(meeting_id)
        return await self._present(meeting_id, moderators)

    async def _present(self, meeting_id: str, moderators: Mapping[str, Role]) -> list[str]:
        present = await self._deps.server.participants(meeting_room_name(meeting_id))
        return [p.identity for p in present if p.identity in moderators]

    # -- the hosts' decisions -----------------------------------------------------------

    async def queue(self, meeting_id: str, caller: str) -> list[dict[str, Any]]:
        await self._deps.require_moderator(meeting_id, caller)
        return [entry_document(e) for e in await self._deps.waiting.waiting(meeting_id)]

    async def stats(self, meeting_id: str, caller: str) -> WaitingStats:
        await self._deps.require_moderator(meeting_id, caller)
        return await self._deps.waiting.stats(meeting_id)

    async def admit(self, meeting_id: str, caller: str, identity: str) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        outcome = await self._deps.waiting.admit(meeting_id, identity, by=caller)
        entry = outcome.entry
        if entry is None or entry.status is not WaitingStatus.ADMITTED:
            raise NotFound("nobody by that identity is waiting", identity=identity)
        if outcome.changed:
            await self._let_in(meeting_id, entry)
        return {"identity": identity, "status": "admitted", "changed": outcome.changed}

    async def admit_all(self, meeting_id: str, caller: str) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        admitted = await self._deps.waiting.admit_all(meeting_id, by=caller)
        await self._let_in_all(meeting_id, admitted)
        return {"admitted": [e.user_id for e in admitted]}

    async def admit_many(
        self, meeting_id: str, caller: str, identities: list[str]
    ) -> dict[str, Any]:
        """Admit a chosen few (Jitsi's admit-multiple); those not waiting are listed, not
        fatal, so one stale pick does not hold up the rest."""
        await self._deps.require_moderator(meeting_id, caller)
        admitted: list[WaitingView] = []
        not_waiting: list[str] = []
        for identity in dict.fromkeys(identities):
            outcome = await self._deps.waiting.admit(meeting_id, identity, by=caller)
            if outcome.changed and outcome.entry is not None:
                admitted.append(outcome.entry)
            elif outcome.entry is None or outcome.entry.status is not WaitingStatus.ADMITTED:
                not_waiting.append(identity)
        await self._let_in_all(meeting_id, admitted)
        return {"admitted": [e.user_id for e in admitted], "notWaiting": not_waiting}

    async def deny(
        self, meeting_id: str, caller: str, identity: str, reason: str | None
    ) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        outcome = await self._deps.waiting.deny(meeting_id, identity, by=caller, reason=reason)
        entry = outcome.entry
        if entry is None or entry.status is not WaitingStatus.DENIED:
            raise NotFound("nobody by that identity is waiting", identity=identity)
        if outcome.changed:
            message = {"status": "denied", **({"reason": reason} if reason else {})}
            await self.notify.status(meeting_id, message, [identity])
            self._later(self._drop_from_lobby(meeting_id, identity))
            await self.notify.queue(meeting_id, "denied", identity)
        return {"identity": identity, "status": "denied", "changed": outcome.changed}

    async def message(
        self, meeting_id: str, caller: str, text: str, identity: str | None
    ) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        if identity is not None:
            entry = await self._deps.waiting.get(meeting_id, identity)
            if entry is None or entry.status is not WaitingStatus.WAITING:
                raise NotFound("nobody by that identity is waiting", identity=identity)
        await self.notify.message(meeting_id, caller, text, [identity] if identity else None)
        return {"sent": True}

    async def note(self, meeting_id: str, caller: str, text: str) -> dict[str, Any]:
        """A waiting guest's note to the hosts (as the lobby bot relays one from the lobby
        room), answered with how many hosts it reached: a request that says whether it went,
        whichever bot serves the lobby, or none."""
        await self._deps.door(meeting_id, caller)  # an unknown or ended meeting says so
        entry = await self._deps.waiting.get(meeting_id, caller)
        if entry is None or entry.status is not WaitingStatus.WAITING:
            raise Conflict(
                "only someone waiting to be let in can send the hosts a note",
                meetingId=meeting_id,
                status=entry.status.value if entry else None,
            )
        reached = await self.notify.lobby_chat(
            meeting_id, caller, entry.display_name, text, strict=True
        )
        logger.info("[%s] a note from %s reached %d host(s)",
                    lobby_room_name(meeting_id), caller, reached)  # fmt: skip
        return {"sent": True, "hostsReached": reached}

    async def return_to_waiting(
        self, meeting_id: str, caller: str, identity: str
    ) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        if await self._deps.meetings.role(meeting_id, identity) in MODERATOR_ROLES:
            raise Conflict("hosts and co-hosts cannot be sent to the waiting room")
        room = meeting_room_name(meeting_id)
        present = await self._deps.server.participant(room, identity)
        if present is None:
            raise NotFound("nobody by that identity is in the meeting", identity=identity)
        entry = await self._deps.waiting.put_back(
            meeting_id, identity, present.name or identity, caller, WaitingStatus.WAITING
        )
        lobby = self._deps.lobby_token(meeting_id, identity, entry.display_name)
        await self.notify.in_meeting(
            meeting_id, self._deps.token_message("returned", lobby), identity
        )
        await asyncio.sleep(0.2)  # let the message land before the removal
        await self._deps.server.remove(room, identity)
        await self.notify.queue(meeting_id, "returned", identity)
        return {"identity": identity, "status": "waiting"}

    # -- what the bots see --------------------------------------------------------------

    async def knocker_arrived(self, meeting_id: str, identity: str) -> None:
        """Someone joined the lobby: tell them where they stand, and tell the hosts."""
        entry = await self._deps.waiting.get(meeting_id, identity)
        if entry is None or entry.status in (WaitingStatus.DENIED, WaitingStatus.REMOVED):
            # Lobby tokens come only from the door, which queues the user first.
            logger.warning("[%s] %s is in the lobby without a standing to wait",
                           lobby_room_name(meeting_id), identity)  # fmt: skip
            await self._drop_from_lobby(meeting_id, identity)
            return
        if entry.status is WaitingStatus.ADMITTED:  # admitted before they got here
            await self._send_admission(meeting_id, entry)
            return
        if entry.status is WaitingStatus.LEFT:
            entry = await self._deps.waiting.knock(meeting_id, identity, entry.display_name)
        hosts = await self.hosts_present(meeting_id)
        status = "waiting" if hosts else "waiting_for_host"
        await self.notify.status(meeting_id, {"status": status}, [identity])
        await self.notify.queue(meeting_id, "knock", identity)

    async def tell_standing(self, meeting_id: str, identity: str) -> None:
        """Say again to someone waiting in the lobby where they stand (nothing else
        changes; those no longer waiting are left to ``knocker_arrived``)."""
        entry = await self._deps.waiting.get(meeting_id, identity)
        if entry is None or entry.status is not WaitingStatus.WAITING:
            return
        status = "waiting" if await self.hosts_present(meeting_id) else "waiting_for_host"
        await self.notify.status(meeting_id, {"status": status}, [identity])

    async def knocker_left(self, meeting_id: str, identity: str) -> None:
        if (await self._deps.waiting.left(meeting_id, identity)).changed:
            await self.notify.queue(meeting_id, "left", identity)

    async def host_arrived(self, meeting_id: str, identity: str) -> None:
        """A host or co-host joined: show them the queue, tell those waiting, and let in
        those who were waiting only for a host (not those a host sent back: a moderator bot
        that rejoins the room sees every host arrive again)."""
        await self.notify.queue(meeting_id, "snapshot", to=[identity])
        await self.notify.status(meeting_id, {"status": "waiting"}, None)
        meeting = await self._deps.meeting(meeting_id)
        settings = MeetingSettings.of(meeting.settings)
        admitted = []
        for entry in await self._deps.waiting.waiting(meeting_id):
            if not entry.sent_back and admits_on_host_arrival(settings, entry.user_id):
                outcome = await self._deps.waiting.admit(meeting_id, entry.user_id, by=SYSTEM)
                if outcome.changed and outcome.entry is not None:
                    admitted.append(outcome.entry)
        await self._let_in_all(meeting_id, admitted)

    async def host_left(self, meeting_id: str) -> None:
        if not await self.hosts_present(meeting_id):
            await self.notify.status(meeting_id, {"status": "waiting_for_host"}, None)

    async def waiting_room_opened(self, meeting_id: str, caller: str) -> list[str]:
        """The waiting room was switched off: everyone waiting comes in (as Zoom does)."""
        admitted = await self._deps.waiting.admit_all(meeting_id, by=caller)
        await self._let_in_all(meeting_id, admitted)
        return [e.user_id for e in admitted]

    # -- plumbing -----------------------------------------------------------------------

    async def _let_in(self, meeting_id: str, entry: WaitingView) -> None:
        await self._send_admission(meeting_id, entry)
        await self.notify.queue(meeting_id, "admitted", entry.user_id)

    async def _let_in_all(self, meeting_id: str, admitted: list[WaitingView]) -> None:
        if not admitted:
            return
        await asyncio.gather(*(self._send_admission(meeting_id, e) for e in admitted))
        await self.notify.queue(meeting_id, "admitted")

    async def _send_admission(self, meeting_id: str, entry: WaitingView) -> None:
        minted = await self._deps.meeting_token(meeting_id, entry.user_id, entry.display_name)
        message = self._deps.token_message("admitted", minted)
        await self.notify.status(meeting_id, message, [entry.user_id])
        logger.info("[%s] %s admitted", meeting_room_name(meeting_id), entry.user_id)

    async def _drop_from_lobby(self, meeting_id: str, identity: str) -> None:
        await asyncio.sleep(_DENIED_GRACE_S)
        try:
            await self._deps.server.remove(lobby_room_name(meeting_id), identity)
        except api.TwirpError as exc:
            logger.warning("[%s] could not remove %s: %s", meeting_id, identity, exc)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(work, "later")

    async def aclose(self) -> None:
        await self._tasks.aclose()
