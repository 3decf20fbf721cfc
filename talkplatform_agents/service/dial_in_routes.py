"""Phones in meetings (UC-08): a meeting's dial-in numbers and PIN, and a host's call out.
Thin: the door and the SIP calls are ``moderation/dial_in.py``'s."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from talkplatform_agents.errors import Conflict
from talkplatform_agents.moderation.dial_in import DialIn
from talkplatform_agents.service.limits import charge_dial_out
from talkplatform_agents.service.openapi import BODY, LIVEKIT, LOGIN, MEETING, STORE, errors
from talkplatform_agents.service.routes import Context, User
from talkplatform_agents.service.schemas import Wire

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1", responses=errors(LOGIN, STORE, MEETING, LIVEKIT, 403, 409, 410)
)


class DialOutBody(Wire):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=32, description="E.164, such as +15550100200")


def _phones(dial_in: DialIn | None) -> DialIn:
    if dial_in is None:
        raise Conflict("phones are not set up on this service (SIP_DIAL_IN_NUMBERS, "
                       "SIP_OUTBOUND_ADDRESS)")  # fmt: skip
    return dial_in


@router.get("/meetings/{meeting_id}/dial-in")
async def dial_in(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
    """The numbers to call and the meeting's PIN (typed on the phone, then ``#``);
    ``open`` says whether callers get in now, ``closedBecause`` why not (``locked``,
    ``waiting-room``, ``ended``)."""
    return await _phones(ctx.dial_in).details(meeting_id, user.user_id)


@router.post("/meetings/{meeting_id}/dial-out", responses=errors(BODY, 422, 429))
async def dial_out(
    meeting_id: str, body: DialOutBody, user: User, ctx: Context, request: Request
) -> dict[str, Any]:
    """Hosts and co-hosts call a phone into the meeting; the answer comes once it is
    answered. Busy, declined, unreachable or unanswered: a 409 whose ``reason`` says which,
    with the SIP status."""
    phones = _phones(ctx.dial_in)
    charge_dial_out(request, user.user_id)
    return await phones.dial_out(meeting_id, user.user_id, body.number)
