"""What moderation needs, and the checks every action starts with."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from talkplatform_agents.errors import Forbidden, Gone, NotFound
from talkplatform_agents.lk.grants import lobby_grants
from talkplatform_agents.lk.naming import (
    LOBBY_AGENTS,
    MEETING_AGENTS,
    lobby_room_name,
    meeting_room_name,
)
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials, MintedToken, mint_token
from talkplatform_agents.roles import MODERATOR_ROLES, Role
from talkplatform_agents.store import (
    DoorView,
    MeetingRepository,
    MeetingView,
    ScheduleRepository,
    WaitingRepository,
)

__all__ = ["ModerationDeps"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModerationDeps:
    meetings: MeetingRepository
    waiting: WaitingRepository
    server: ServerApi
    credentials: Credentials
    ws_url: str  # as clients reach livekit-server: it goes into "admitted" messages
    token_ttl: dt.timedelta
    # Scheduled meetings: a host's End on a recurring one with occurrences to come closes
    # this occurrence's rooms and leaves the series (None: no calendar, End ends).
    schedules: ScheduleRepository | None = None
    # Told of each change of the door (lock, settings, end): the phone dial-in keeps its
    # SIP rule in step (``moderation/dial_in.py``; None: no phones here).
    on_door_change: Callable[[str], Awaitable[object]] | None = None

    async def door_changed(self, meeting_id: str) -> None:
        """Tell ``on_door_change``; its failure is logged, never the change's (the next
        look at the dial-in, and the room's end, bring it in step again)."""
        if self.on_door_change is None:
            return
        try:
            await self.on_door_change(meeting_id)
        except Exception as exc:
            logger.warning("[%s] dial-in not brought in step: %r",
                           meeting_room_name(meeting_id), exc)  # fmt: skip

    async def meeting(self, meeting_id: str) -> MeetingView:
        meeting = await self.meetings.get(meeting_id)
        if meeting is None:
            raise NotFound("meeting not found", meetingId=meeting_id)
        if meeting.ended_at is not None:
            raise Gone("meeting has ended", meetingId=meeting_id)
        return meeting

    async def door(self, meeting_id: str, user_id: str) -> DoorView:
        """The meeting as it stands now, and the user's role and waiting-room status in it
        (one statement while the meeting is unchanged: ``MeetingRepository.door``)."""
        door = await self.meetings.door(meeting_id, user_id)
        if door is None:
            raise NotFound("meeting not found", meetingId=meeting_id)
        if door.snapshot.meeting.ended_at is not None:
            raise Gone("meeting has ended", meetingId=meeting_id)
        return door

    async def require_moderator(
        self, meeting_id: str, caller: str, *, host_only: bool = False
    ) -> MeetingView:
        """The meeting, if ``caller`` may moderate it, by the store's roles (never by
        anything a client says about itself)."""
        door = await self.door(meeting_id, caller)
        allowed = {Role.HOST} if host_only else MODERATOR_ROLES
        if door.role not in allowed:
            need = "the host" if host_only else "a host or co-host"
            raise Forbidden(f"only {need} may do this", meetingId=meeting_id, caller=caller)
        return door.snapshot.meeting

    async def meeting_token(self, meeting_id: str, identity: str, name: str) -> MintedToken:
        role = await self.meetings.role(meeting_id, identity) or Role.PARTICIPANT
        return self.mint_meeting_token(meeting_id, identity, name, role)

    def mint_meeting_token(
        self, meeting_id: str, identity: str, name: str, role: Role
    ) -> MintedToken:
        return mint_token(
            self.credentials,
            identity=identity,
            name=name,
            room=meeting_room_name(meeting_id),
            role=role,
            ttl=self.token_ttl,
            dispatch_agents=MEETING_AGENTS,
        )

    def lobby_token(self, meeting_id: str, identity: str, name: str) -> MintedToken:
        room = lobby_room_name(meeting_id)
        return mint_token(
            self.credentials,
            identity=identity,
            name=name,
            room=room,
            role=Role.PARTICIPANT,
            ttl=self.token_ttl,
            dispatch_agents=LOBBY_AGENTS,
            grants=lobby_grants(room),
        )

    def token_message(self, status: str, minted: MintedToken) -> dict[str, str]:
        return {"status": status, "token": minted.jwt, "wsUrl": self.ws_url, "room": minted.room}
