"""What the chat bot's parts share: one meeting's room, store and policy, who may see
what, the replies to a sender, and the state that changes during the meeting."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from talkplatform_agents.bots.chat.moderation import Code, notice_text
from talkplatform_agents.bots.chat.notices import NoticeThrottle
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.chat.outbox import Outbox
from talkplatform_agents.bots.chat.roster import Roster, StrictClock
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.store import Database
from talkplatform_agents.store.chat import ChatRepository, StoredMessage
from talkplatform_agents.store.meetings import MeetingRepository

__all__ = ["ChatContext", "ChatStore"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatStore:
    """The repositories the bot uses: its chat, and the meeting's roles."""

    chat: ChatRepository
    meetings: MeetingRepository

    @classmethod
    def of(cls, db: Database) -> ChatStore:
        return cls(ChatRepository(db), MeetingRepository(db))


@dataclass
class ChatContext:
    room: rtc.Room
    meeting_id: str
    store: ChatStore
    options: ChatOptions
    roster: Roster
    outbox: Outbox
    clock: StrictClock = field(default_factory=StrictClock)
    throttle: NoticeThrottle = field(default_factory=NoticeThrottle)
    # Who may not chat, and who moderates; read from the store at start, then kept up to
    # date by the host controls and by each arrival.
    muted: set[str] = field(default_factory=set)
    moderators: set[str] = field(default_factory=set)

    @property
    def tag(self) -> str:
        return self.room.name

    async def load_moderators(self) -> set[str]:
        """The meeting's hosts and co-hosts as the store says now (never as clients claim)."""
        self.moderators = set(await self.store.meetings.moderators(self.meeting_id))
        return self.moderators

    def audience(
        self, message: StoredMessage, people: list[str], *, exclude: str | None
    ) -> list[str]:
        """Who of ``people`` may see ``message`` (never ``[]`` for everyone: an empty list
        means nobody here)."""
        people = [i for i in people if i != exclude]
        if not message.private:
            return people
        allowed = {message.sender, *message.recipients}
        if self.options.hosts_see_private:
            allowed |= self.moderators
        return [i for i in people if i in allowed]

    async def refuse(
        self,
        sender: str,
        code: Code,
        ref: str | None,
        *,
        text: str = "",
        detail: str = "",
    ) -> None:
        """Tell ``sender`` why something of theirs was refused (throttled: a flood of
        refusals must not become a flood of notices)."""
        if (notice := self.refusal(sender, code, ref, text=text, detail=detail)) is not None:
            await notice

    def refusal(
        self,
        sender: str,
        code: Code,
        ref: str | None,
        *,
        text: str = "",
        detail: str = "",
    ) -> Coroutine[Any, Any, None] | None:
        """The notice ``refuse`` sends, to run later; ``None`` when the throttle holds it
        back (counted, and said in the next). For callers that cannot await."""
        body = text or notice_text(
            code, limit=self.options.max_message_chars, detail=detail, words=""
        )
        message = self.throttle.admit(sender, body)
        if message is None:
            return None
        return self._notice(sender, code, message, ref)

    async def _notice(self, sender: str, code: Code, message: str, ref: str | None) -> None:
        # Sent even to a sender the SDK does not know: they may have joined a moment ago
        # (the server routes by identity), or have left (then nobody gets it).
        try:
            await self.outbox.notice(sender, code, message, ref)
        except Exception as exc:
            logger.info("[%s] notice to %s failed: %s", self.tag, sender, exc)

    async def event(self, body: dict[str, Any]) -> None:
        try:
            await self.outbox.data(proto.TOPIC_EVENT, body, None)
        except Exception as exc:
            logger.warning("[%s] event %s not sent: %s", self.tag, body.get("type"), exc)
