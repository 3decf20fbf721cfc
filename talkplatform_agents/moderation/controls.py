"""Host controls (UC-09): mute, mute all, remove, pass host, co-hosts, lock, end, settings.

Everything goes through livekit-server's API with the service's admin credentials; no
client token ever carries ``room_admin``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from livekit import api

from talkplatform_agents.calendar.stored import goes_on, schedule_of
from talkplatform_agents.errors import Conflict, NotFound
from talkplatform_agents.lk.grants import participant_permission
from talkplatform_agents.lk.naming import ROLE_ATTRIBUTE, lobby_room_name, meeting_room_name
from talkplatform_agents.lk.tokens import role_metadata
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.policy import MeetingSettings
from talkplatform_agents.moderation.waiting_room import WaitingRoom
from talkplatform_agents.roles import Role
from talkplatform_agents.store import WaitingStatus

__all__ = ["HostControls"]

logger = logging.getLogger(__name__)

_SOURCES = {
    "microphone": api.TrackSource.MICROPHONE,
    "camera": api.TrackSource.CAMERA,
    "screen_share": api.TrackSource.SCREEN_SHARE,
    "screen_share_audio": api.TrackSource.SCREEN_SHARE_AUDIO,
}


class HostControls:
    def __init__(self, deps: ModerationDeps, waiting_room: WaitingRoom) -> None:
        self._deps = deps
        self._waiting_room = waiting_room

    async def mute(
        self, meeting_id: str, caller: str, identity: str, track_sid: str | None, source: str
    ) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        room = meeting_room_name(meeting_id)
        participant = await self._present(room, identity)
        tracks = [
            t
            for t in participant.tracks
            if (t.sid == track_sid if track_sid else t.source == _SOURCES[source])
        ]
        if not tracks:
            what = f"track {track_sid}" if track_sid else f"{source} track"
            raise NotFound(f"{identity} publishes no {what}", identity=identity)
        for track in tracks:
            await self._deps.server.mute_track(room, identity, track.sid)
        logger.info("[%s] %s muted %s (%d tracks)", room, caller, identity, len(tracks))
        return {"identity": identity, "muted": [t.sid for t in tracks]}

    async def mute_all(self, meeting_id: str, caller: str) -> dict[str, Any]:
        """Every microphone but the hosts' and co-hosts'."""
        await self._deps.require_moderator(meeting_id, caller)
        room = meeting_room_name(meeting_id)
        moderators = await self._deps.meetings.moderators(meeting_id)
        muted: list[str] = []
        for participant in await self._deps.server.participants(room):
            if participant.identity in moderators or _is_agent(participant):
                continue
            for track in participant.tracks:
                if track.source == api.TrackSource.MICROPHONE and not track.muted:
                    await self._deps.server.mute_track(room, participant.identity, track.sid)
                    muted.append(participant.identity)
        return {"muted": sorted(set(muted))}

    async def remove(self, meeting_id: str, caller: str, identity: str) -> dict[str, Any]:
        """Out of the meeting, and barred from coming back."""
        await self._deps.require_moderator(meeting_id, caller)
        if identity == caller:
            raise Conflict("you cannot remove yourself; leave instead")
        if await self._deps.meetings.role(meeting_id, identity) is Role.HOST:
            raise Conflict("the host cannot be removed; pass host first")
        room = meeting_room_name(meeting_id)
        present = await self._present(room, identity)
        await self._deps.waiting.put_back(
            meeting_id, identity, present.name or identity, caller, WaitingStatus.REMOVED
        )
        await self._deps.server.remove(room, identity)
        logger.info("[%s] %s removed %s", room, caller, identity)
        return {"identity": identity, "removed": True}

    async def pass_host(self, meeting_id: str, caller: str, identity: str) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller, host_only=True)
        if identity == caller:
            raise Conflict("you are the host already")
        room = meeting_room_name(meeting_id)
        await self._present(room, identity)  # hand the meeting only to someone in it
        await self._deps.meetings.pass_host(meeting_id, caller, identity)
        await self._apply_role(room, identity, Role.HOST)
        await self._apply_role(room, caller, Role.COHOST)
        return {"host": identity, "previousHost": caller}

    async def add_cohost(self, meeting_id: str, caller: str, identity: str) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller, host_only=True)
        role = await self._deps.meetings.role(meeting_id, identity)
        if role is Role.HOST:
            raise Conflict("the host is already a moderator")
        room = meeting_room_name(meeting_id)
        present = await self._present(room, identity)
        await self._deps.meetings.set_role(meeting_id, identity, Role.COHOST, present.name)
        await self._apply_role(room, identity, Role.COHOST)
        return {"identity": identity, "role": Role.COHOST.value}

    async def set_lock(self, meeting_id: str, caller: str, locked: bool) -> dict[str, Any]:
        await self._deps.require_moderator(meeting_id, caller)
        await self._deps.meetings.update_settings(meeting_id, {"locked": locked})
        await self._deps.door_changed(meeting_id)
        return {"locked": locked}

    async def update_settings(
        self, meeting_id: str, caller: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        meeting = await self._deps.require_moderator(meeting_id, caller, host_only=True)
        merged = MeetingSettings.of({**meeting.settings, **changes})  # validates the whole
        updated = await self._deps.meetings.update_settings(
            meeting_id, merged.model_dump(include=set(changes))
        )
        if updated is None:
            raise NotFound("meeting not found", meetingId=meeting_id)
        was = MeetingSettings.of(meeting.settings)
        if was.waiting_room and not merged.waiting_room:
            await self._waiting_room.waiting_room_opened(meeting_id, caller)
        await self._deps.door_changed(meeting_id)
        return updated.settings

    async def end(self, meeting_id: str, caller: str) -> dict[str, Any]:
        """End for all: record it, tell those waiting, close both rooms. A meeting whose
        recurring schedule has later occurrences is not ended (that would end the series):
        this occurrence's rooms close, and the meeting stays for the next one."""
        await self._deps.require_moderator(meeting_id, caller, host_only=True)
        if await self._series_goes_on(meeting_id):
            await self._deps.server.delete_room(meeting_room_name(meeting_id))
            await self._deps.server.delete_room(lobby_room_name(meeting_id))
            logger.info("[%s] occurrence closed by %s; the series goes on",
                        meeting_room_name(meeting_id), caller)  # fmt: skip
            return {"endedAt": None, "seriesGoesOn": True}
        ended = await self._deps.meetings.end(meeting_id)
        if ended is None or ended.ended_at is None:
            raise NotFound("meeting not found", meetingId=meeting_id)
        # The phone line first: a room that fails to close must not leave it open.
        await self._deps.door_changed(meeting_id)
        await self._waiting_room.notify.status(meeting_id, {"status": "ended"}, None)
        await self._deps.server.delete_room(meeting_room_name(meeting_id))
        await self._deps.server.delete_room(lobby_room_name(meeting_id))
        logger.info("[%s] ended by %s", meeting_room_name(meeting_id), caller)
        return {"endedAt": ended.ended_at.isoformat()}

    async def _series_goes_on(self, meeting_id: str) -> bool:
        """Whether the meeting has a recurring schedule, not cancelled, with an occurrence
        starting after now."""
        if self._deps.schedules is None:
            return False
        view = await self._deps.schedules.get(meeting_id)
        if view is None or view.cancelled_at is not None or view.record.rrule is None:
            return False
        try:
            schedule = schedule_of(view)
        except (ValueError, KeyError) as exc:
            logger.warning("[%s] stored schedule unreadable: %s",
                           meeting_room_name(meeting_id), exc)  # fmt: skip
            return False
        return goes_on(schedule, dt.datetime.now(dt.UTC))

    async def _present(self, room: str, identity: str) -> api.ParticipantInfo:
        participant = await self._deps.server.participant(room, identity)
        if participant is None or _is_agent(participant):
            raise NotFound("nobody by that identity is in the meeting", identity=identity)
        return participant

    async def _apply_role(self, room: str, identity: str, role: Role) -> None:
        """The role in the participant's attributes, metadata and permissions, live."""
        present = await self._deps.server.participant(room, identity)
        if present is None:
            return  # the store has it; their next token carries it
        await self._deps.server.update_role(
            room,
            identity,
            {ROLE_ATTRIBUTE: role.value},
            role_metadata(role, present.name or identity),
            participant_permission(role),
        )


def _is_agent(participant: api.ParticipantInfo) -> bool:
    return participant.kind == api.ParticipantInfo.Kind.AGENT
