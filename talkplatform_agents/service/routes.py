"""HTTP routes. Thin: authenticate, ask the store, mint through lk/, answer."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from livekit import api

from talkplatform_agents.lk.grants import Role, permissions_document
from talkplatform_agents.lk.naming import (
    ECHO_AGENT_NAME,
    greenroom_room_name,
    meeting_room_name,
)
from talkplatform_agents.lk.tokens import MintedToken, mint_token
from talkplatform_agents.service.auth import AppUser
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.errors import Gone, NotFound, Unauthorized
from talkplatform_agents.service.schemas import (
    ConnectionInfo,
    CreateMeeting,
    IceServer,
    MeetingOut,
    TokenMetadata,
    TokenRequest,
    TokenResponse,
)
from talkplatform_agents.store import MeetingView

__all__ = ["router"]

logger = logging.getLogger(__name__)
router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context


async def _user(request: Request, authorization: Annotated[str | None, Header()] = None) -> AppUser:
    context: ServiceContext = request.app.state.context
    return context.verifier.verify_header(authorization)


Context = Annotated[ServiceContext, Depends(_context)]
User = Annotated[AppUser, Depends(_user)]


@router.get("/healthz")
async def healthz(ctx: Context, response: Response) -> dict[str, str]:
    try:
        await ctx.db.ping()
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "unavailable", "database": "unreachable"}
    return {"status": "ok", "database": "ok"}


@router.post("/api/v1/meetings", status_code=status.HTTP_201_CREATED)
async def create_meeting(body: CreateMeeting, user: User, ctx: Context) -> MeetingOut:
    meeting = await ctx.meetings.create(
        title=body.title, settings=body.settings, host_user_id=user.user_id, host_name=user.name
    )
    logger.info("meeting %s created by %s", meeting.id, user.user_id)
    return _meeting_out(meeting)


@router.get("/api/v1/meetings/{meeting_id}")
async def get_meeting(meeting_id: str, _user: User, ctx: Context) -> MeetingOut:
    return _meeting_out(await _existing_meeting(ctx, meeting_id))


@router.post("/api/v1/livekit/token")
async def meeting_token(
    body: TokenRequest, user: User, ctx: Context, response: Response
) -> TokenResponse:
    response.headers.update(NO_STORE)
    found = await ctx.meetings.with_role(body.meeting_id, user.user_id)
    if found is None:
        raise NotFound("meeting not found", meetingId=body.meeting_id)
    meeting, stored = found
    if meeting.ended_at is not None:
        raise Gone("meeting has ended", meetingId=meeting.id)
    role = _role(stored, meeting.id, user.user_id)
    minted = mint_token(
        ctx.credentials,
        identity=user.user_id,
        name=user.name,
        room=meeting_room_name(meeting.id),
        role=role,
        ttl=ctx.token_ttl,
    )
    logger.info("token for %s in %s as %s", user.user_id, minted.room, role.value)
    return _token_out(ctx, minted)


@router.post("/api/v1/greenroom/token")
async def greenroom_token(user: User, ctx: Context, response: Response) -> TokenResponse:
    """A token for the user's own green room, which dispatches the echo bot into it."""
    response.headers.update(NO_STORE)
    minted = mint_token(
        ctx.credentials,
        identity=user.user_id,
        name=user.name,
        room=greenroom_room_name(user.user_id),
        role=Role.PARTICIPANT,
        ttl=ctx.token_ttl,
        dispatch_agents=(ECHO_AGENT_NAME,),
    )
    return _token_out(ctx, minted)


@router.get("/api/v1/livekit/connection-info")
async def connection_info(_user: User, ctx: Context) -> ConnectionInfo:
    """Signed-in users only: the answer carries TURN credentials."""
    server, detail = await _livekit_health(ctx)
    return ConnectionInfo(
        ws_url=ctx.ws_url,
        ice_servers=[IceServer(**s.model_dump()) for s in ctx.ice_servers],
        server=server,
        server_detail=detail,
    )


@router.post("/api/v1/livekit/webhook")
async def livekit_webhook(
    request: Request, ctx: Context, authorization: Annotated[str | None, Header()] = None
) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        event = ctx.webhooks.receive(body, authorization or "")
    except Exception as exc:
        raise Unauthorized(f"webhook rejected: {exc}") from exc
    logger.info("webhook %s room=%s", event.event, event.room.name or "-")
    if event.event == "participant_joined":
        is_agent = event.participant.kind == api.ParticipantInfo.Kind.AGENT
        ctx.reconciler.participant_joined(event.room.name, is_agent)
    return {"status": "ok"}


def _role(stored: str | None, meeting_id: str, user_id: str) -> Role:
    if stored is None:
        return Role.PARTICIPANT
    try:
        return Role(stored)
    except ValueError:
        # Least privilege for a role this version does not know.
        logger.warning("meeting %s: unknown role %r for %s", meeting_id, stored, user_id)
        return Role.PARTICIPANT


async def _existing_meeting(ctx: ServiceContext, meeting_id: str) -> MeetingView:
    meeting = await ctx.meetings.get(meeting_id)
    if meeting is None:
        raise NotFound("meeting not found", meetingId=meeting_id)
    return meeting


async def _livekit_health(ctx: ServiceContext) -> tuple[str, str]:
    try:
        reply = await ctx.http.get(ctx.livekit_http_url + "/")
    except Exception as exc:
        return "unreachable", f"{type(exc).__name__}: {exc}"
    if reply.status_code == 200:
        return "ok", reply.text.strip()
    return "degraded", f"HTTP {reply.status_code}"


def _meeting_out(meeting: MeetingView) -> MeetingOut:
    return MeetingOut(
        id=meeting.id,
        title=meeting.title,
        settings=meeting.settings,
        host_id=meeting.created_by,
        room=meeting_room_name(meeting.id),
        created_at=meeting.created_at,
        ended_at=meeting.ended_at,
    )


def _token_out(ctx: ServiceContext, minted: MintedToken) -> TokenResponse:
    return TokenResponse(
        token=minted.jwt,
        ws_url=ctx.ws_url,
        identity=minted.identity,
        name=minted.metadata["name"],
        room=minted.room,
        expires_at=minted.expires_at,
        metadata=TokenMetadata(
            role=minted.role.value, permissions=permissions_document(minted.grants)
        ),
    )
