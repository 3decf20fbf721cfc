"""Transcriptions over HTTP: hosts and co-hosts start, stop and list them; the transcript
(JSON, WebVTT, SRT or text) and the meeting's analytics (JSON, and a speaker timeline PNG)
are theirs to read, and the meeting's participants' too when its settings say
``transcription.participants_may_read``.

A participant, for reading, is someone who took part in the meeting room: who spoke in the
transcript, or attended it (livekit-server's webhooks), or was seen there by the chat bot.
Knowing a meeting's id is not enough. A meeting with no transcript reads as an empty one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from talkplatform_agents.errors import Forbidden
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.service.analytics import meeting_analytics, timeline_png
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.openapi import LOGIN, MEETING, STORE, errors
from talkplatform_agents.service.routes import NO_STORE, Context, User
from talkplatform_agents.service.run_routes import RunRoutes, add_run_routes, with_role
from talkplatform_agents.service.transcription import (
    TRANSCRIPTION,
    TranscriptSpan,
    transcript_span,
    transcription_settings,
)
from talkplatform_agents.service.transcripts import render_transcript
from talkplatform_agents.store import SegmentView, TranscriptionRepository
from talkplatform_agents.store.chat import ChatRepository

__all__ = ["FormatName", "transcription_router"]

_MEETING = "/api/v1/meetings/{meeting_id}"
_STRING = {"schema": {"type": "string"}}
_TRANSCRIPT_TYPES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcript: JSON (``format=json``, the default), WebVTT, SRT or "
        "plain text; times relative to the start of the meeting's first transcription.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["segments"],
                    "properties": {
                        "origin": {"type": "string"},
                        "segments": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
            "text/vtt": _STRING,
            "application/x-subrip": _STRING,
            "text/plain": _STRING,
        },
    }
}
_PNG_TYPES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A speaker timeline: one lane per participant, time across.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
}

# As service/transcripts.py FORMATS (a test holds them equal), spelt out for the schema.
FormatName = Literal["json", "vtt", "srt", "text"]


# The start and stop routes' descriptions, as their OpenAPI has said from the first.
_START_DOC = """\
Start transcribing the meeting room: the transcriber is on its way (``starting``); 409
while a transcription runs (its id as ``transcriptionId``); 410 once the meeting ended."""
_STOP_DOC = """\
Ask the transcription to stop: ``stopping`` until its transcriber has stored its last
segments (then ``complete``); ``aborted`` if no transcriber had begun. Stopping an ended
transcription changes nothing."""

# Every route: a login, the store, the meeting and the transcription (404), the right to
# act or to read (403).
transcription_router = APIRouter(responses=errors(LOGIN, STORE, MEETING, 403))


add_run_routes(
    transcription_router,
    RunRoutes(
        control=TRANSCRIPTION,
        repository=TranscriptionRepository,
        plural="transcriptions",
        start_doc=_START_DOC,
        stop_doc=_STOP_DOC,
    ),
)


@transcription_router.get(
    _MEETING + "/transcript", response_model=None, responses=_TRANSCRIPT_TYPES
)
async def transcript(
    meeting_id: str,
    user: User,
    ctx: Context,
    format: Annotated[
        FormatName,
        Query(description="json (the default), vtt (WebVTT), srt (SubRip) or text"),
    ] = "json",
) -> Response:
    """The meeting's transcript across its transcriptions, in the order spoken, with the
    speakers' names. No transcript: an empty document of the format."""
    found = await _readable(ctx, meeting_id, user.user_id)
    body, media_type = render_transcript(found.segments, format, found.span.origin_ms)
    return Response(body, media_type=media_type, headers=NO_STORE)


@transcription_router.get(_MEETING + "/analytics")
async def analytics(
    meeting_id: str, user: User, ctx: Context, response: Response
) -> dict[str, Any]:
    """Who spoke how much: per participant, talk time, turns, the longest monologue,
    interruptions made and suffered, and silence; for the meeting, its transcribed duration,
    speech, silence and its share, and overlap (all in ms)."""
    response.headers.update(NO_STORE)
    found = await _readable(ctx, meeting_id, user.user_id)
    return meeting_analytics(found.segments, found.span.origin_ms, found.end_ms)


@transcription_router.get(
    _MEETING + "/analytics/timeline.png", response_class=Response, responses=_PNG_TYPES
)
async def timeline(meeting_id: str, user: User, ctx: Context) -> Response:
    """The speaker timeline as a PNG chart."""
    found = await _readable(ctx, meeting_id, user.user_id)
    # Drawing takes tens of ms of CPU: off the event loop.
    png = await asyncio.to_thread(timeline_png, found.segments, found.span.origin_ms, found.end_ms)
    return Response(png, media_type="image/png", headers=NO_STORE)


@dataclass(frozen=True)
class _Transcript:
    segments: list[SegmentView]
    span: TranscriptSpan

    @property
    def end_ms(self) -> int:
        """The analytics span's end: the transcriptions' end, or the last word if later
        (a transcriber's clock a little ahead of the store's)."""
        return max([self.span.end_ms, *(s.end_ms for s in self.segments)])


async def _readable(ctx: ServiceContext, meeting_id: str, user_id: str) -> _Transcript:
    """The meeting's transcript, if the user may read it."""
    meeting, role = await with_role(ctx, meeting_id, user_id)
    moderator = role in MODERATOR_ROLES
    if not moderator and not transcription_settings(meeting).participants_may_read:
        raise Forbidden(
            "only a host or co-host may read this meeting's transcript "
            "(settings.transcription.participants_may_read is off)",
            meetingId=meeting_id,
            caller=user_id,
        )
    transcriptions = TranscriptionRepository(ctx.db)
    segments = await transcriptions.segments(meeting_id)
    if not moderator and not await _took_part(ctx, meeting_id, user_id, segments):
        raise Forbidden(
            "only the meeting's participants may read its transcript",
            meetingId=meeting_id,
            caller=user_id,
        )
    made = await transcriptions.of_meeting(meeting_id)
    return _Transcript(segments, transcript_span(meeting, made))


async def _took_part(
    ctx: ServiceContext, meeting_id: str, user_id: str, spoken: list[SegmentView]
) -> bool:
    """Whether the user was in the meeting room: spoke, attended, or was seen by the chat."""
    if any(s.speaker_identity == user_id for s in spoken):
        return True
    sessions = await ctx.attendance.of_meeting(meeting_id)
    if any(s.user_id == user_id and s.room == "meeting" for s in sessions):
        return True
    return await ChatRepository(ctx.db).has_participated(meeting_id, user_id)
