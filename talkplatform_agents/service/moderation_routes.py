"""REST for the waiting room and host controls. Thin: each route authenticates the app
user and calls the same moderation code the bot's RPCs call; the checks (host or not,
waiting or not) live there, once."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from talkplatform_agents.errors import Forbidden, Invalid, NotFound
from talkplatform_agents.lk.waiting import MAX_TEXT
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.service.limits import charge_note
from talkplatform_agents.service.metrics import Metrics
from talkplatform_agents.service.openapi import BODY, LIVEKIT, LOGIN, MEETING, STORE, errors
from talkplatform_agents.service.routes import Context, User
from talkplatform_agents.service.schemas import (
    Wire,
    check_recording_settings,
    check_transcription_settings,
)

__all__ = ["router"]

# Every route: a login, the store, the meeting, a host's (or co-host's) right to act (403),
# and a meeting that has not ended (410: all but the attendance report, which hosts read
# after the end too; a router's responses cannot leave one route out).
router = APIRouter(prefix="/api/v1", responses=errors(LOGIN, STORE, MEETING, 403, 410))
# Routes that ask livekit-server who is in the room, or act there; 409 for who may not be
# acted on that way (the host, oneself, a moderator already).
_LIVEKIT = errors(LIVEKIT)
_ON_SOMEONE = errors(LIVEKIT, 409)
_BODY = errors(BODY)
_MEETING = "/meetings/{meeting_id}"
_WAITING = _MEETING + "/waiting-room"
_PARTICIPANT = _MEETING + "/participants/{identity}"


class _Body(Wire):
    model_config = ConfigDict(extra="forbid")


class SettingsPatch(_Body):
    settings: dict[str, Any]


class DenyBody(_Body):
    reason: str | None = Field(default=None, max_length=500)


class MessageBody(_Body):
    text: str = Field(min_length=1, max_length=2000)
    identity: str | None = Field(default=None, min_length=1, max_length=128)


class MuteBody(_Body):
    track_sid: str | None = Field(default=None, max_length=64)
    source: Literal["microphone", "camera", "screen_share", "screen_share_audio"] = "microphone"


class IdentitiesBody(_Body):
    identities: list[str] = Field(min_length=1, max_length=500)


class IdentityBody(_Body):
    identity: str = Field(min_length=1, max_length=128)


@router.patch("/public-meetings/{meeting_id}", responses=errors(BODY, 400))  # and settings
async def patch_settings(
    meeting_id: str, body: SettingsPatch, user: User, ctx: Context
) -> dict[str, Any]:
    try:
        check_recording_settings(body.settings)
        check_transcription_settings(body.settings)
    except ValueError as exc:
        raise Invalid(str(exc), meetingId=meeting_id) from exc
    settings = await ctx.controls.update_settings(meeting_id, user.user_id, body.settings)
    return {"id": meeting_id, "settings": settings}


@router.get(_WAITING)
async def waiting_list(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    return {"waiting": await ctx.waiting_room.queue(meeting_id, user.user_id)}


@router.get(_WAITING + "/stats")
async def waiting_stats(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    stats = await ctx.waiting_room.stats(meeting_id, user.user_id)
    return {
        "counts": stats.counts,
        "averageWaitSeconds": stats.average_wait_s,
        "longestWaitSeconds": stats.longest_wait_s,
        "averageAdmittedWaitSeconds": stats.average_admitted_wait_s,
    }


@router.post(_WAITING + "/admit-all")
async def admit_all(meeting_id: str, user: User, ctx: Context, metrics: Metrics) -> dict[str, Any]:
    result = await ctx.waiting_room.admit_all(meeting_id, user.user_id)
    metrics.admitted(len(result["admitted"]))
    return result


@router.post(_WAITING + "/admit", responses=_BODY)
async def admit_many(
    meeting_id: str, body: IdentitiesBody, user: User, ctx: Context, metrics: Metrics
) -> dict[str, Any]:
    result = await ctx.waiting_room.admit_many(meeting_id, user.user_id, body.identities)
    metrics.admitted(len(result["admitted"]))
    return result


@router.post(_WAITING + "/message", responses=_BODY)
async def message_waiting(
    meeting_id: str, body: MessageBody, user: User, ctx: Context
) -> dict[str, Any]:
    return await ctx.waiting_room.message(meeting_id, user.user_id, body.text, body.identity)


class NoteBody(_Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT)  # as the lobby bot takes it


@router.post(_WAITING + "/note", responses=errors(BODY, LIVEKIT, 409, 429))
async def note_to_hosts(
    meeting_id: str, body: NoteBody, user: User, ctx: Context, request: Request
) -> dict[str, Any]:
    """A guest waiting in the lobby writes to the hosts and co-hosts in the meeting
    (``tp.waiting.chat``). The answer says how many it reached: none while no host is in."""
    charge_note(request, user.user_id)
    return await ctx.waiting_room.note(meeting_id, user.user_id, body.text)


@router.post(_WAITING + "/{identity}/admit")
async def admit(
    meeting_id: str, identity: str, user: User, ctx: Context, metrics: Metrics
) -> dict[str, Any]:
    result = await ctx.waiting_room.admit(meeting_id, user.user_id, identity)
    metrics.admitted(1 if result["changed"] else 0)
    return result


@router.post(_WAITING + "/{identity}/deny", responses=_BODY)
async def deny(
    meeting_id: str, identity: str, user: User, ctx: Context, body: DenyBody | None = None
) -> dict[str, Any]:
    reason = body.reason if body else None
    return await ctx.waiting_room.deny(meeting_id, user.user_id, identity, reason)


@router.post(_PARTICIPANT + "/return-to-waiting", responses=_ON_SOMEONE)
async def return_to_waiting(
    meeting_id: str, identity: str, user: User, ctx: Context
) -> dict[str, Any]:
    return await ctx.waiting_room.return_to_waiting(meeting_id, user.user_id, identity)


@router.post(_PARTICIPANT + "/mute", responses=errors(LIVEKIT, BODY))
async def mute(
    meeting_id: str, identity: str, user: User, ctx: Context, body: MuteBody | None = None
) -> dict[str, Any]:
    body = body or MuteBody()
    return await ctx.controls.mute(meeting_id, user.user_id, identity, body.track_sid, body.source)


@router.post(_MEETING + "/mute-all", responses=_LIVEKIT)
async def mute_all(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    return await ctx.controls.mute_all(meeting_id, user.user_id)


@router.post(_PARTICIPANT + "/remove", responses=_ON_SOMEONE)
async def remove(meeting_id: str, identity: str, user: User, ctx: Context) -> dict[str, Any]:
    return await ctx.controls.remove(meeting_id, user.user_id, identity)


@router.post(_MEETING + "/host", responses=errors(LIVEKIT, 409, BODY))
async def pass_host(
    meeting_id: str, body: IdentityBody, user: User, ctx: Context
) -> dict[str, Any]:
    return await ctx.controls.pass_host(meeting_id, user.user_id, body.identity)


@router.post(_MEETING + "/cohosts", responses=errors(LIVEKIT, 409, BODY))
async def add_cohost(
    meeting_id: str, body: IdentityBody, user: User, ctx: Context
) -> dict[str, Any]:
    return await ctx.controls.add_cohost(meeting_id, user.user_id, body.identity)


@router.post(_MEETING + "/lock")
async def lock(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    return await ctx.controls.set_lock(meeting_id, user.user_id, True)


@router.post(_MEETING + "/unlock")
async def unlock(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    return await ctx.controls.set_lock(meeting_id, user.user_id, False)


@router.post(_MEETING + "/end", responses=_LIVEKIT)
async def end(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    return await ctx.controls.end(meeting_id, user.user_id)


@router.get(_MEETING + "/attendance")
async def attendance(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    """Who was in the meeting room and the lobby, when: for hosts and co-hosts, during the
    meeting and after it has ended (when the report is wanted most)."""
    found = await ctx.meetings.with_role(meeting_id, user.user_id)
    if found is None:
        raise NotFound("meeting not found", meetingId=meeting_id)
    if found[1] not in MODERATOR_ROLES:
        raise Forbidden(
            "only a host or co-host may do this", meetingId=meeting_id, caller=user.user_id
        )
    rows = await ctx.attendance.of_meeting(meeting_id)
    return {
        "attendance": [
            {
                "identity": r.user_id,
                "name": r.display_name,
                "room": r.room,
                "joinedAt": r.joined_at.isoformat(),
                "leftAt": r.left_at.isoformat() if r.left_at else None,
            }
            for r in rows
        ]
    }
