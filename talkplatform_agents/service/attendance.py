"""livekit-server's webhooks into the store: the meeting room's lifecycle and attendance.

Meeting and lobby rooms only; bots are not attendees. A webhook for a room whose meeting
the store does not know is logged and acknowledged: retrying it would never succeed.
"""

from __future__ import annotations

import datetime as dt
import logging

from livekit import api

from talkplatform_agents.lk.naming import RoomKind, parse_room
from talkplatform_agents.store import AttendanceRepository, AttendanceView, MeetingRepository

__all__ = ["record_webhook"]

logger = logging.getLogger(__name__)

_ROOM_KINDS = {RoomKind.MEETING: "meeting", RoomKind.LOBBY: "lobby"}


async def record_webhook(
    meetings: MeetingRepository, attendance: AttendanceRepository, event: api.WebhookEvent
) -> None:
    ref = parse_room(event.room.name)
    room = _ROOM_KINDS.get(ref.kind)
    if room is None:
        return
    at = _at(event.created_at)
    if event.event in ("room_started", "room_finished"):
        started = event.event == "room_started"
        if room == "meeting" and not await meetings.room_event(ref.key, started=started, at=at):
            logger.warning("[%s] webhook for an unknown meeting", event.room.name)
        if not started:
            await attendance.room_finished(ref.key, room, at)
        return
    if event.event not in ("participant_joined", "participant_left"):
        return
    participant = event.participant
    if participant.kind == api.ParticipantInfo.Kind.AGENT:
        return
    if await meetings.get(ref.key) is None:
        logger.warning("[%s] webhook for an unknown meeting", event.room.name)
        return
    joined_at = _at(participant.joined_at) if participant.joined_at else at
    session = AttendanceView(
        participant_sid=participant.sid,
        meeting_id=ref.key,
        room=room,
        user_id=participant.identity,
        display_name=participant.name or None,
        joined_at=joined_at,
        left_at=at if event.event == "participant_left" else None,
    )
    if event.event == "participant_joined":
        await attendance.joined(session)
    else:
        await attendance.left(session)


def _at(unix_s: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC) if unix_s else dt.datetime.now(dt.UTC)
