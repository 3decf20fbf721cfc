"""HTTP routes. Thin: authenticate, ask the store, mint through lk/, answer."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request, Response, status
from livekit import api

from talkplatform_agents.errors import NotFound, Unauthorized
from talkplatform_agents.lk.grants import permissions_document
from talkplatform_agents.lk.naming import (
    ECHO_AGENT_NAME,
    greenroom_room_name,
    meeting_room_name,
)
from talkplatform_agents.lk.tokens import MintedToken, mint_token
from talkplatform_agents.roles import Role
from talkplatform_agents.service.attendance import record_webhook
from talkplatform_agents.service.auth import AppUser
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.limits import charge_token_request
from talkplatform_agents.service.metrics import Metrics
from talkplatform_agents.service.openapi import (
    BODY,
    LIVEKIT,
    LOGIN,
    MEETING,
    STORE,
    TOKEN,
    errors,
)
from talkplatform_agents.service.recording import auto_record
from talkplatform_agents.service.scheduling import (
    Invitations,
    create_scheduled,
    phone_line,
    schedule_out,
    sees_attendees,
)
from talkplatform_agents.service.schemas import (
    ConnectionInfo,
    CreateMeeting,
    Health,
    MeetingOut,
    ScheduleOut,
    TokenMetadata,
    TokenRequest,
    TokenResponse,
)
from talkplatform_agents.service.security import WebhookGate
from talkplatform_agents.service.transcription import auto_transcribe
from talkplatform_agents.store import (
    MeetingView,
    RecordingRepository,
    ScheduleRepository,
    TranscriptionRepository,
)

__all__ = ["router"]

logger = logging.getLogger(__name__)
router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context


async def _user(request: Request, authorization: Annotated[str | None, Header()] = None) -> AppUser:
    context: ServiceContext = request.app.state.context
    started = time.perf_counter()
    user = context.verifier.verify_header(authorization)
    request.state.auth_s = time.perf_counter() - started
    return user


Context = Annotated[ServiceContext, Depends(_context)]
User = Annotated[AppUser, Depends(_user)]


async def _token_quota(request: Request, user: User) -> None:
    charge_token_request(request, user.user_id)  # 429 past RATE_LIMIT_TOKEN_PER_*


@router.get("/healthz", responses={503: {"model": Health, "description": "No database."}})
async def healthz(ctx: Context, response: Response) -> Health:
    try:
        await ctx.db.ping()
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", database="unreachable")
    return Health(status="ok", database="ok")


@router.post(
    "/api/v1/meetings", status_code=status.HTTP_201_CREATED, responses=errors(LOGIN, STORE, BODY)
)
async def create_meeting(
    body: CreateMeeting, user: User, ctx: Context, request: Request, tasks: BackgroundTasks
) -> MeetingOut:
    """A meeting hosted by the caller; with ``start``, ``end`` and ``timezone`` a scheduled
    one (maybe recurring), its schedule checked (a 422 says what is wrong) and stored with
    the meeting in one transaction (service/calendar_routes.py has the rest)."""
    if body.scheduled:
        meeting, schedule = await create_scheduled(ctx.db, body, user)
        logger.info("meeting %s scheduled by %s", meeting.id, user.user_id)
        invitations: Invitations = request.app.state.invitations
        phone = await phone_line(ctx.dial_in, meeting.id) if invitations.smtp else None
        invitations.mail(tasks, meeting, schedule, "REQUEST", phone=phone)  # with SMTP_URL
        return _meeting_out(meeting, schedule_out(schedule))
    meeting = await ctx.meetings.create(
        title=body.title, settings=body.settings, host_user_id=user.user_id, host_name=user.name
    )
    logger.info("meeting %s created by %s", meeting.id, user.user_id)
    return _meeting_out(meeting)


@router.get("/api/v1/meetings/{meeting_id}", responses=errors(LOGIN, STORE, MEETING))
async def get_meeting(meeting_id: str, user: User, ctx: Context) -> MeetingOut:
    """The meeting; its schedule's attendees and organiser's email only for its hosts,
    co-hosts and attendees (anyone with the id reads the rest)."""
    meeting = await _existing_meeting(ctx, meeting_id)
    schedule = await ScheduleRepository(ctx.db).get(meeting_id)
    if schedule is None:
        return _meeting_out(meeting)
    role = await ctx.meetings.role(meeting_id, user.user_id)
    return _meeting_out(
        meeting, schedule_out(schedule, private=sees_attendees(role, user, schedule))
    )


@router.post(
    "/api/v1/livekit/token",
    dependencies=[Depends(_token_quota)],
    responses=errors(LOGIN, STORE, TOKEN, LIVEKIT),
)
async def meeting_token(
    body: TokenRequest,
    user: User,
    ctx: Context,
    request: Request,
    response: Response,
    metrics: Metrics,
) -> TokenResponse:
    """A meeting token, or a lobby token when the waiting room (or a missing host) holds the
    user at the door; a locked meeting, a denial or a removal is a 403 that says which.
    ``Server-Timing`` says where the time went (auth, store, server, policy, write, mint)."""
    response.headers.update(NO_STORE)
    granted = await ctx.waiting_room.request_entry(body.meeting_id, user.user_id, user.name)
    timings = {"auth": getattr(request.state, "auth_s", 0.0), **granted.timings}
    response.headers["Server-Timing"] = ", ".join(
        f"{stage};dur={seconds * 1000:.3f}" for stage, seconds in timings.items()
    )
    minted = granted.minted
    logger.info("[%s] token for %s as %s (%s)", minted.room, user.user_id, minted.role.value,
                granted.status)  # fmt: skip
    metrics.token("meeting", granted.status)
    return _token_out(ctx, minted, granted.status)


@router.post(
    "/api/v1/greenroom/token", dependencies=[Depends(_token_quota)], responses=errors(LOGIN)
)
async def greenroom_token(
    user: User, ctx: Context, response: Response, metrics: Metrics
) -> TokenResponse:
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
    metrics.token("greenroom", "joined")
    return _token_out(ctx, minted)


@router.get("/api/v1/livekit/connection-info", responses=errors(LOGIN))
async def connection_info(_user: User, ctx: Context) -> ConnectionInfo:
    """Signed-in users only: the answer carries TURN credentials."""
    server, detail = await _livekit_health(ctx)
    return ConnectionInfo(
        ws_url=ctx.ws_url,
        ice_servers=ctx.ice_servers,
        server=server,
        server_detail=detail,
    )


@router.post("/api/v1/livekit/webhook", responses=errors(400, 401, 422, STORE))
async def livekit_webhook(
    request: Request,
    ctx: Context,
    metrics: Metrics,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """Verified, then acted on once: a stale event is a 400, a replay (its event id seen
    before, by any service process on the database) is acknowledged and ignored."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        event = ctx.webhooks.receive(body, authorization or "")
    except Exception as exc:
        raise Unauthorized(f"webhook rejected: {exc}") from exc
    room = event.room.name or "-"
    gate: WebhookGate = request.app.state.webhook_gate
    if not await gate.first_seen(event):
        logger.info("[%s] webhook %s (%s) seen before: ignored", room, event.event, event.id)
        metrics.webhook(event.event, "duplicate")
        return {"status": "duplicate"}
    logger.info("[%s] webhook %s (%s)", room, event.event, event.id)
    try:
        is_agent = event.participant.kind == api.ParticipantInfo.Kind.AGENT
        if event.event == "participant_joined":
            ctx.reconciler.participant_joined(event.room.name, is_agent)
        elif event.event == "participant_left" and is_agent:
            ctx.reconciler.bot_left(event.room.name)
        await record_webhook(ctx.meetings, ctx.attendance, event)
        if event.event == "room_finished" and ctx.dial_in is not None:
            await ctx.dial_in.room_finished(event.room.name)
        await auto_record(ctx.meetings, RecordingRepository(ctx.db), ctx.server, event)
        await auto_transcribe(ctx.meetings, TranscriptionRepository(ctx.db), ctx.server, event)
    except Exception:
        await gate.forget(event)  # so that livekit-server's retry is acted on, not ignored
        raise
    metrics.webhook(event.event, "acted")
    return {"status": "ok"}


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


def _meeting_out(meeting: MeetingView, schedule: ScheduleOut | None = None) -> MeetingOut:
    return MeetingOut(
        id=meeting.id,
        title=meeting.title,
        settings=meeting.settings,
        host_id=meeting.created_by,
        room=meeting_room_name(meeting.id),
        created_at=meeting.created_at,
        ended_at=meeting.ended_at,
        schedule=schedule,
    )


def _token_out(
    ctx: ServiceContext, minted: MintedToken, status: Literal["joined", "waiting"] = "joined"
) -> TokenResponse:
    return TokenResponse(
        status=status,
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
