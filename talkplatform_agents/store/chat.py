"""Meeting chat: messages, their edits and deletions, private recipients, reactions, mutes,
and who has been in the meeting room."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import (
    ChatMessage,
    ChatMute,
    ChatParticipant,
    ChatReaction,
    ChatRecipient,
    Meeting,
)

__all__ = [
    "MAX_SEQ",
    "ChatRepository",
    "NewMessage",
    "ReactionCounts",
    "SaveOutcome",
    "StoredMessage",
]

# The largest message seq: a signed 64-bit column. The drivers refuse a bigger bound.
MAX_SEQ = 2**63 - 1


class SaveOutcome(enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # the same id and text again: a redelivery
    EDITED = "edited"
    NOT_OWNER = "not_owner"  # the id belongs to someone else's message
    DELETED = "deleted"  # an edit of a message that a host deleted


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    meeting_id: str
    id: str
    sender: str
    sender_name: str | None
    sent_at: dt.datetime
    text: str
    reply_to: str | None
    private: bool
    recipients: tuple[str, ...]
    edited_at: dt.datetime | None
    edit_count: int
    deleted_at: dt.datetime | None
    deleted_by: str | None

    @classmethod
    def of(cls, row: ChatMessage) -> StoredMessage:
        return cls(
            seq=row.seq,
            meeting_id=row.meeting_id,
            id=row.message_id,
            sender=row.sender_identity,
            sender_name=row.sender_name,
            sent_at=_aware(row.sent_at),
            text=row.text,
            reply_to=row.reply_to,
            private=row.private,
            recipients=tuple(sorted(r.identity for r in row.recipients)),
            edited_at=_aware(row.edited_at) if row.edited_at else None,
            edit_count=row.edit_count,
            deleted_at=_aware(row.deleted_at) if row.deleted_at else None,
            deleted_by=row.deleted_by,
        )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def visible_to(self, identity: str, *, all_private: bool) -> bool:
        return (
            not self.private
            or all_private
            or identity == self.sender
            or identity in self.recipients
        )

    def to_json(self) -> dict[str, Any]:
        """The REST form; a deleted message keeps its place but not its text."""
        return {
            "seq": self.seq,
            "id": self.id,
            "sender": self.sender,
            "senderName": self.sender_name,
            "timestamp": _ms(self.sent_at),
            "message": None if self.deleted else self.text,
            "replyTo": self.reply_to,
            "private": self.private,
            "recipients": list(self.recipients) if self.private else [],
            "editTimestamp": _ms(self.edited_at) if self.edited_at else None,
            "deleted": self.deleted,
            "deletedBy": self.deleted_by,
        }


@dataclass(frozen=True)
class NewMessage:
    """A message as received, to store (or to apply as an edit)."""

    id: str
    sender: str
    sender_name: str | None
    text: str
    sent_at: dt.datetime
    reply_to: str | None = None
    recipients: Sequence[str] = ()


@dataclass(frozen=True)
class ReactionCounts:
    meeting: dict[str, int]  # emoji -> count
    messages: dict[str, dict[str, int]]  # message id -> emoji -> count


class ChatRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def meeting_exists(self, meeting_id: str) -> bool:
        async with self._db.session() as session:
            return await session.get(Meeting, meeting_id) is not None

    async def save(
        self,
        meeting_id: str,
        message_id: str,
        *,
        sender: str,
        sender_name: str | None,
        text: str,
        sent_at: dt.datetime,
        reply_to: str | None = None,
        recipients: Sequence[str] = (),
    ) -> tuple[SaveOutcome, StoredMessage]:
        """Store a new message, or apply an edit: the same id from the same sender. A
        redelivery (same id, same text) changes nothing, so delivery may be at least once."""
        message = NewMessage(message_id, sender, sender_name, text, sent_at, reply_to, recipients)
        [result] = await self.save_many(meeting_id, [message])
        return result

    async def save_many(
        self, meeting_id: str, messages: Sequence[NewMessage]
    ) -> list[tuple[SaveOutcome, StoredMessage]]:
        """``save`` for each message in order, in one transaction (one commit is most of a
        message's cost). Should the batch collide with another writer, each is retried alone."""
        for attempt in range(3):
            try:
                async with self._db.session() as session:
                    return [await self._apply(session, meeting_id, m) for m in messages]
            except IntegrityError:
                if len(messages) > 1:
                    return [r for m in messages for r in await self.save_many(meeting_id, [m])]
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _apply(
        self, session: AsyncSession, meeting_id: str, message: NewMessage
    ) -> tuple[SaveOutcome, StoredMessage]:
        row = await self._find(session, meeting_id, message.id)
        if row is None:
            row = ChatMessage(
                meeting_id=meeting_id,
                message_id=message.id,
                sender_identity=message.sender,
                sender_name=message.sender_name,
                sent_at=message.sent_at,
                text=message.text,
                reply_to=message.reply_to,
                private=bool(message.recipients),
                edit_count=0,
                recipients=[ChatRecipient(identity=r) for r in dict.fromkeys(message.recipients)],
            )
            session.add(row)
            await session.flush()
            return SaveOutcome.CREATED, StoredMessage.of(row)
        if row.sender_identity != message.sender:
            return SaveOutcome.NOT_OWNER, StoredMessage.of(row)
        if row.deleted_at is not None:
            return SaveOutcome.DELETED, StoredMessage.of(row)
        if row.text == message.text:
            return SaveOutcome.DUPLICATE, StoredMessage.of(row)
        row.text = message.text
        row.edited_at = dt.datetime.now(dt.UTC)
        row.edit_count += 1
        await session.flush()
        return SaveOutcome.EDITED, StoredMessage.of(row)

    async def get(self, meeting_id: str, message_id: str) -> StoredMessage | None:
        async with self._db.session() as session:
            row = await self._find(session, meeting_id, message_id)
            return StoredMessage.of(row) if row else None

    async def delete(self, meeting_id: str, message_id: str, *, by: str) -> StoredMessage | None:
        """Mark a message deleted (idempotent: the first deletion's author stays)."""
        async with self._db.session() as session:
            row = await self._find(session, meeting_id, message_id)
            if row is None:
                return None
            if row.deleted_at is None:
                row.deleted_at = dt.datetime.now(dt.UTC)
                row.deleted_by = by
                await session.flush()
            return StoredMessage.of(row)

    async def history(
        self,
        meeting_id: str,
        viewer: str | None,
        *,
        all_private: bool = False,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """The last ``limit`` messages ``viewer`` may see (``None``: everything), before
        ``seq`` ``before``, oldest first."""
        query = select(ChatMessage).where(ChatMessage.meeting_id == meeting_id)
        if before is not None and before <= MAX_SEQ:  # beyond it: before every message
            query = query.where(ChatMessage.seq < before)
        if viewer is not None and not all_private:
            addressed = exists().where(
                (ChatRecipient.message_seq == ChatMessage.seq) & (ChatRecipient.identity == viewer)
            )
            query = query.where(
                or_(
                    ChatMessage.private.is_(False),
                    ChatMessage.sender_identity == viewer,
                    addressed,
                )
            )
        query = query.order_by(ChatMessage.seq.desc()).limit(limit)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
            return [StoredMessage.of(row) for row in reversed(rows)]

    async def add_reaction(
        self,
        meeting_id: str,
        reaction_id: str,
        *,
        sender: str,
        emoji: str,
        target: str | None,
        sent_at: dt.datetime,
    ) -> bool:
        """Store a reaction; ``False`` when this id was already stored (a redelivery)."""
        try:
            async with self._db.session() as session:
                session.add(
                    ChatReaction(
                        meeting_id=meeting_id,
                        reaction_id=reaction_id,
                        sender_identity=sender,
                        emoji=emoji,
                        target_message_id=target,
                        sent_at=sent_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def reaction_counts(self, meeting_id: str) -> ReactionCounts:
        query = (
            select(ChatReaction.target_message_id, ChatReaction.emoji, func.count())
            .where(ChatReaction.meeting_id == meeting_id)
            .group_by(ChatReaction.target_message_id, ChatReaction.emoji)
        )
        meeting: dict[str, int] = {}
        messages: dict[str, dict[str, int]] = {}
        async with self._db.session() as session:
            for target, emoji, count in (await session.execute(query)).all():
                meeting[emoji] = meeting.get(emoji, 0) + count
                if target is not None:
                    messages.setdefault(target, {})[emoji] = count
        return ReactionCounts(meeting, messages)

    async def set_muted(self, meeting_id: str, identity: str, *, muted: bool, by: str) -> None:
        async with self._db.session() as session:
            row = await session.get(ChatMute, (meeting_id, identity))
            if muted and row is None:
                session.add(
                    ChatMute(
                        meeting_id=meeting_id,
                        identity=identity,
                        muted_by=by,
                        muted_at=dt.datetime.now(dt.UTC),
                    )
                )
            elif not muted and row is not None:
                await session.delete(row)

    async def muted(self, meeting_id: str) -> set[str]:
        query = select(ChatMute.identity).where(ChatMute.meeting_id == meeting_id)
        async with self._db.session() as session:
            return set((await session.scalars(query)).all())

    async def record_participants(self, meeting_id: str, identities: Iterable[str]) -> None:
        """Note who has been in the meeting room (idempotent)."""
        wanted = set(identities)
        if not wanted:
            return
        query = select(ChatParticipant.identity).where(
            (ChatParticipant.meeting_id == meeting_id) & ChatParticipant.identity.in_(wanted)
        )
        try:
            async with self._db.session() as session:
                known = set((await session.scalars(query)).all())
                now = dt.datetime.now(dt.UTC)
                session.add_all(
                    ChatParticipant(meeting_id=meeting_id, identity=i, first_seen_at=now)
                    for i in wanted - known
                )
        except IntegrityError:
            pass  # another writer recorded them first: the same outcome

    async def has_participated(self, meeting_id: str, identity: str) -> bool:
        async with self._db.session() as session:
            return await session.get(ChatParticipant, (meeting_id, identity)) is not None

    @staticmethod
    async def _find(session: AsyncSession, meeting_id: str, message_id: str) -> ChatMessage | None:
        query = select(ChatMessage).where(
            (ChatMessage.meeting_id == meeting_id) & (ChatMessage.message_id == message_id)
        )
        row: ChatMessage | None = (await session.scalars(query)).first()
        return row


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite and MariaDB hand back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)
