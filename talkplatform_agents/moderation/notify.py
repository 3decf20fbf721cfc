"""Messages to hosts (the queue) and to waiting participants (their status), sent through
the server API so that any process (the service, either bot) can send them."""

from __future__ import annotations

import logging
from typing import Any

from talkplatform_agents.lk.naming import lobby_room_name, meeting_room_name
from talkplatform_agents.lk.payloads import dumps
from talkplatform_agents.lk.waiting import TOPIC_CHAT, TOPIC_MESSAGE, TOPIC_QUEUE, TOPIC_STATUS
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.store import WaitingView

__all__ = ["Notifier", "entry_document"]

logger = logging.getLogger(__name__)


def entry_document(entry: WaitingView) -> dict[str, Any]:
    return {
        "identity": entry.user_id,
        "name": entry.display_name,
        "since": entry.knocked_at.isoformat(),
        "status": entry.status.value,
    }


class Notifier:
    def __init__(self, deps: ModerationDeps) -> None:
        self._deps = deps

    async def queue(
        self, meeting_id: str, event: str, identity: str | None = None, to: list[str] | None = None
    ) -> None:
        """The queue, with what just happened, to the meeting's hosts and co-hosts (``to``:
        only these)."""
        waiting = await self._deps.waiting.waiting(meeting_id)
        message: dict[str, Any] = {"event": event, "waiting": [entry_document(e) for e in waiting]}
        if identity is not None:
            message["identity"] = identity
        hosts = to if to is not None else list(await self._deps.meetings.moderators(meeting_id))
        if hosts:
            await self._send(meeting_room_name(meeting_id), TOPIC_QUEUE, message, hosts)

    async def status(self, meeting_id: str, message: dict[str, Any], to: list[str] | None) -> None:
        """A status to waiting participants in the lobby (``None``: all of them)."""
        await self._send(lobby_room_name(meeting_id), TOPIC_STATUS, message, to)

    async def in_meeting(self, meeting_id: str, message: dict[str, Any], to: str) -> None:
        await self._send(meeting_room_name(meeting_id), TOPIC_STATUS, message, [to])

    async def message(self, meeting_id: str, sender: str, text: str, to: list[str] | None) -> None:
        await self._send(
            lobby_room_name(meeting_id), TOPIC_MESSAGE, {"from": sender, "text": text}, to
        )

    async def lobby_chat(
        self, meeting_id: str, identity: str, name: str, text: str, *, strict: bool = False
    ) -> int:
        """A waiting participant's words to the hosts and co-hosts in the meeting room; how
        many of them it reached. ``strict``: a failed send raises, for a caller that must
        say so (the service's route), rather than being logged (the lobby bot)."""
        hosts = list(await self._deps.meetings.moderators(meeting_id))
        message = {"identity": identity, "name": name, "text": text}
        return await self._send(
            meeting_room_name(meeting_id), TOPIC_CHAT, message, hosts, strict=strict
        )

    async def _send(
        self,
        room: str,
        topic: str,
        message: dict[str, Any],
        to: list[str] | None,
        *,
        strict: bool = False,
    ) -> int:
        """Send to those of ``to`` (None: everyone) in ``room``; how many were there."""
        if to is not None and not to:
            return 0  # nobody to tell; an empty list would mean everyone
        # Best effort unless strict: the decision is already in the store, and a client that
        # missed the message learns its standing from the token endpoint. A failed send
        # must not turn a done admission into an error.
        try:
            # livekit-server answers data for a room that does not exist (a lobby nobody
            # has joined yet) with a 503, not a 404: ask first.
            present = {p.identity for p in await self._deps.server.participants(room)}
            targets = present if to is None else present & set(to)
            if targets:
                await self._deps.server.send_data(room, topic, dumps(message), to)
            return len(targets)
        except Exception as exc:
            if strict:
                raise
            logger.warning("[%s] could not send %s to %s: %r", room, topic, to or "all", exc)
            return 0
