"""Meeting chat over HTTP: history pages and exports, read from the chat bot's store.

Who may read: the meeting's hosts and co-hosts, and anyone the chat bot has seen in the
meeting room (``chat_participants``). Waiting participants are in the lobby room, where the
chat bot never is, so they read nothing until admitted. Private messages are shown to their
sender and recipients, and to hosts when the meeting's policy lets hosts see them
(``settings.chat.hostsSeePrivate``, else ``CHAT_HOSTS_SEE_PRIVATE``). Exports are for hosts.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from talkplatform_agents.config import Settings
from talkplatform_agents.errors import Forbidden, NotFound
from talkplatform_agents.service.openapi import LOGIN, MEETING, STORE, errors
from talkplatform_agents.service.routes import NO_STORE, Context, User
from talkplatform_agents.store import MeetingView
from talkplatform_agents.store.chat import MAX_SEQ, ChatRepository, StoredMessage

__all__ = ["chat_router"]

_EXPORT_LIMIT = 100_000
# Both routes: 403 for a user who was never in the meeting (or, to export, is no host).
_ERRORS = errors(LOGIN, STORE, MEETING, 403)
_EXPORT_TYPES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The chat as JSON, or as text (format=text), as an attachment.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def chat_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    default_hosts_see_private = settings.chat_hosts_see_private

    async def access(ctx: Context, meeting_id: str, user_id: str) -> tuple[MeetingView, bool]:
        """The meeting and whether the user moderates it; ``Forbidden`` for outsiders."""
        meeting = await ctx.meetings.get(meeting_id)
        if meeting is None:
            raise NotFound("meeting not found", meetingId=meeting_id)
        if user_id in await ctx.meetings.moderators(meeting_id):
            return meeting, True
        if await ChatRepository(ctx.db).has_participated(meeting_id, user_id):
            return meeting, False
        raise Forbidden("only the meeting's participants may read its chat", meetingId=meeting_id)

    def hosts_see_private(meeting: MeetingView) -> bool:
        chat = meeting.settings.get("chat")
        value = chat.get("hostsSeePrivate") if isinstance(chat, dict) else None
        return value if isinstance(value, bool) else default_hosts_see_private

    @router.get("/api/v1/meetings/{meeting_id}/chat", responses=_ERRORS)
    async def chat_history(
        meeting_id: str,
        user: User,
        ctx: Context,
        response: Response,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_SEQ, description="A message's seq: older ones")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        """A page of history, oldest first; ``nextBefore`` fetches the page before it."""
        response.headers.update(NO_STORE)
        meeting, moderator = await access(ctx, meeting_id, user.user_id)
        messages = await ChatRepository(ctx.db).history(
            meeting_id,
            user.user_id,
            all_private=moderator and hosts_see_private(meeting),
            before=before,
            limit=limit,
        )
        return {
            "meetingId": meeting_id,
            "messages": [m.to_json() for m in messages],
            "nextBefore": messages[0].seq if len(messages) == limit else None,
        }

    @router.get(
        "/api/v1/meetings/{meeting_id}/chat/export",
        response_model=None,
        responses={**_EXPORT_TYPES, **_ERRORS},
    )
    async def chat_export(
        meeting_id: str,
        user: User,
        ctx: Context,
        response: Response,
        format: Annotated[Literal["json", "text"], Query()] = "json",
    ) -> dict[str, Any] | Response:
        meeting, moderator = await access(ctx, meeting_id, user.user_id)
        if not moderator:
            raise Forbidden("only the meeting's hosts may export its chat", meetingId=meeting_id)
        chat = ChatRepository(ctx.db)
        messages = await chat.history(
            meeting_id,
            user.user_id,
            all_private=hosts_see_private(meeting),
            limit=_EXPORT_LIMIT,
        )
        counts = await chat.reaction_counts(meeting_id)
        filename = f"chat-{meeting_id}.{'json' if format == 'json' else 'txt'}"
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'}
        if format == "text":
            body = _as_text(meeting, messages)
            return Response(body, media_type="text/plain; charset=utf-8", headers=headers)
        response.headers.update(headers)
        return {
            "meeting": {"id": meeting.id, "title": meeting.title},
            "exportedAt": dt.datetime.now(dt.UTC).isoformat(),
            "messages": [m.to_json() for m in messages],
            "reactions": {"meeting": counts.meeting, "messages": counts.messages},
        }

    return router


def _as_text(meeting: MeetingView, messages: list[StoredMessage]) -> str:
    lines = [f"Chat of {meeting.title} ({meeting.id})", ""]
    for m in messages:
        when = m.sent_at.strftime("%Y-%m-%d %H:%M:%S")
        who = f"{m.sender_name} ({m.sender})" if m.sender_name else m.sender
        private = f" [private to {', '.join(m.recipients)}]" if m.private else ""
        edited = " (edited)" if m.edited_at and not m.deleted else ""
        text = f"(deleted by {m.deleted_by})" if m.deleted else m.text
        # One line per message: a message's own line breaks are indented under it.
        text = text.replace("\r\n", "\n").replace("\n", "\n    ")
        lines.append(f"[{when} UTC] {who}{private}: {text}{edited}")
    return "\n".join(lines) + "\n"
