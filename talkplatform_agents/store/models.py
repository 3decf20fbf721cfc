"""SQLAlchemy models. Each change to them comes with an Alembic migration."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

__all__ = [
    "Attendance",
    "Base",
    "BotLease",
    "BotRun",
    "CalendarItem",
    "CalendarSync",
    "DialIn",
    "Meeting",
    "MeetingMember",
    "MeetingSchedule",
    "Recording",
    "ScheduleAction",
    "TranscriptSegment",
    "Transcription",
    "WaitingEntry",
    "WebhookEvent",
]


# MySQL/MariaDB DATETIME drops fractions of a second unless told otherwise; keep
# microseconds so a value reads back as it was written, on every backend.
Timestamp = (
    DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


class Base(DeclarativeBase):
    pass


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # The meeting room's last start and finish, from livekit-server's webhooks.
    room_started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    room_finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # Bumped by every change to this row or to its members' roles (MeetingRepository does
    # it in the same transaction): a cached copy of the meeting is current while its
    # version is the stored one, whichever process made the change.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    members: Mapped[list[MeetingMember]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan"
    )


class MeetingMember(Base):
    """A user's standing role in a meeting. Users without a row join as participants."""

    __tablename__ = "meeting_members"

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())

    meeting: Mapped[Meeting] = relationship(back_populates="members")


class WaitingEntry(Base):
    """A user's place at the door of a meeting: one row per meeting and user, whose status
    moves waiting → admitted | denied | left | removed, and back to waiting on a new knock
    or when a host returns an admitted user to the waiting room."""

    __tablename__ = "waiting_entries"

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    knocked_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    decided_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(500))
    # Bumped on every status change: a conditional update on it is how two hosts acting at
    # once cannot both win (admit twice, admit and deny).
    version: Mapped[int] = mapped_column(Integer, default=1)


class Attendance(Base):
    """One participant session in a meeting or its lobby, from livekit-server's webhooks."""

    __tablename__ = "attendance"

    participant_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    room: Mapped[str] = mapped_column(String(16))  # "meeting" or "lobby"
    user_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str | None] = mapped_column(String(200))
    joined_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    left_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


# SQLite only autoincrements an INTEGER PRIMARY KEY; MariaDB gets a 64-bit key.
Seq = BigInteger().with_variant(Integer(), "sqlite")


class ChatMessage(Base):
    """A meeting chat message as last edited; ``seq`` is the store's order of arrival."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("meeting_id", "message_id", name="uq_chat_messages_meeting_message"),
        Index("ix_chat_messages_meeting_seq", "meeting_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(String(128))
    sender_identity: Mapped[str] = mapped_column(String(128))
    sender_name: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    text: Mapped[str] = mapped_column(Text)
    reply_to: Mapped[str | None] = mapped_column(String(128))
    private: Mapped[bool] = mapped_column(Boolean, server_default=false())
    edited_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    edit_count: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    deleted_by: Mapped[str | None] = mapped_column(String(128))

    recipients: Mapped[list[ChatRecipient]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class ChatRecipient(Base):
    """One destination of a private message."""

    __tablename__ = "chat_recipients"

    message_seq: Mapped[int] = mapped_column(
        Seq, ForeignKey("chat_messages.seq", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class ChatReaction(Base):
    __tablename__ = "chat_reactions"
    __table_args__ = (
        UniqueConstraint("meeting_id", "reaction_id", name="uq_chat_reactions_meeting_reaction"),
        Index("ix_chat_reactions_meeting_target", "meeting_id", "target_message_id"),
    )

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    reaction_id: Mapped[str] = mapped_column(String(128))
    sender_identity: Mapped[str] = mapped_column(String(128))
    emoji: Mapped[str] = mapped_column(String(64))
    target_message_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class ChatMute(Base):
    """A participant a host muted in a meeting's chat; survives the bot."""

    __tablename__ = "chat_mutes"

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(128), primary_key=True)
    muted_by: Mapped[str] = mapped_column(String(128))
    muted_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class ChatParticipant(Base):
    """Someone the chat bot saw in the meeting room: a reader of its history. Waiting
    participants are in the lobby room, where the chat bot never is."""

    __tablename__ = "chat_participants"

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class BotLease(Base):
    """Who may dispatch a missing bot into a room, until when: the service processes that
    see the same bot missing (a sweep each, a webhook to one) dispatch it once between
    them."""

    __tablename__ = "bot_leases"

    room: Mapped[str] = mapped_column(String(128), primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Indexed: renewals go by holder, sweeps by expiry (migration 0008).
    holder: Mapped[str] = mapped_column(String(128), index=True)
    # The bot's participant identity while a bot holds it; "" while a service's dispatch
    # holds it (the bot is on its way).
    identity: Mapped[str] = mapped_column(String(128), default="", server_default="")
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp, index=True)
    dispatches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebhookEvent(Base):
    """A livekit-server webhook already handled, by its event id: a replay is ignored."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    received_at: Mapped[dt.datetime] = mapped_column(Timestamp, index=True)


class BotRun(Base):
    """A bot's service to a meeting room that the store tracks, whichever bot process does
    it (a recording, a transcription). Its status moves starting → active → stopping →
    complete | failed (or starting → aborted: stopped before a bot began); ``version`` is
    bumped by each change, for conditional updates. Each subclass is a table of its own."""

    __abstract__ = True

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = f"uq_{cls.__tablename__}_running_meeting"
        return (UniqueConstraint("running_meeting", name=name),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # When a bot last checked in: a run whose bot went silent can be ended.
    seen_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    error: Mapped[str | None] = mapped_column(String(1000))
    # Bot sessions so far (a bot that died and was replaced makes two).
    parts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The meeting's id while the run is on (starting, active, stopping), NULL after:
    # unique, so a meeting has at most one running at a time, whichever process starts it
    # (NULLs never collide, on SQLite and MariaDB alike).
    running_meeting: Mapped[str | None] = mapped_column(String(64))


class Recording(BotRun):
    """A recording of a meeting room, made by the recorder bot (one file set per part)."""

    __tablename__ = "recordings"


class Transcription(BotRun):
    """A transcription of a meeting room, made by the transcriber bot; its final captions
    are ``TranscriptSegment`` rows."""

    __tablename__ = "transcriptions"


# Long enough for any segment's words as JSON: up to 500 of them (store/transcriptions.py).
LongText = (
    Text().with_variant(mysql.MEDIUMTEXT(), "mysql").with_variant(mysql.MEDIUMTEXT(), "mariadb")
)


class TranscriptSegment(Base):
    """One final caption: who said what, when (Unix ms). Keyed by the transcriber's own
    segment id within its transcription, so that storing one twice stores it once."""

    __tablename__ = "transcript_segments"
    __table_args__ = (Index("ix_transcript_segments_meeting_start", "meeting_id", "start_ms"),)

    transcription_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("transcriptions.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    speaker_identity: Mapped[str] = mapped_column(String(128))
    speaker_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    track_sid: Mapped[str] = mapped_column(String(64), default="", server_default="")
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[str] = mapped_column(LongText)  # JSON: [{"word", "start_ms", "end_ms"}]
    confidence: Mapped[float] = mapped_column(Float)


class MeetingSchedule(Base):
    """When a scheduled meeting happens (UC-04): one row per meeting that has a schedule.

    ``start_local`` and ``end_local`` are wall-clock ISO times in ``timezone`` (IANA), as
    calendars keep them: the zone's rules (DST) are applied when the schedule is read,
    never frozen into an offset here. ``exdates`` (cancelled occurrences' original starts),
    ``overrides`` (moved occurrences) and ``attendees`` are JSON text. ``starts_at`` and
    ``ends_at`` (UTC; ``ends_at`` NULL while a series has no known end) bound every
    occurrence, so a listing reads only the rows that may overlap its window. ``sequence``
    is the invitations' SEQUENCE: raised by every change."""

    __tablename__ = "meeting_schedules"
    __table_args__ = (Index("ix_meeting_schedules_span", "starts_at", "ends_at"),)

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    start_local: Mapped[str] = mapped_column(String(32))
    end_local: Mapped[str] = mapped_column(String(32))
    rrule: Mapped[str | None] = mapped_column(String(1000))
    exdates: Mapped[str] = mapped_column(Text)
    overrides: Mapped[str] = mapped_column(Text)
    attendees: Mapped[str] = mapped_column(Text)
    organizer_email: Mapped[str | None] = mapped_column(String(320))
    starts_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    ends_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp)


# --- CalDAV sync (UC-04 item 3; calendar/sync.py, store/calendar_sync.py) ---------------


class CalendarSync(Base):
    """Where one user's calendar is (a CalDAV collection) and how far it was read: the
    ``sync_token`` (RFC 6578) of the last listing, and the collection's ``ctag``."""

    __tablename__ = "calendar_sync"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    collection_url: Mapped[str] = mapped_column(String(1000))
    sync_token: Mapped[str | None] = mapped_column(String(1000))
    ctag: Mapped[str | None] = mapped_column(String(255))
    synced_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class CalendarItem(Base):
    """One calendar object the sync knows in a user's collection: ``published`` (a meeting
    the sync put there) or ``imported`` (an event that became, or names, a meeting).
    ``etag`` is the object as last written or read; ``sequence`` the meeting's SEQUENCE
    it carries (published) or the event's (imported)."""

    __tablename__ = "calendar_items"
    __table_args__ = (Index("ix_calendar_items_meeting", "meeting_id"),)

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    href: Mapped[str] = mapped_column(String(512), primary_key=True)
    uid: Mapped[str] = mapped_column(String(255))
    etag: Mapped[str | None] = mapped_column(String(255))
    meeting_id: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))  # "published" or "imported"
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ScheduleAction(Base):
    """One action of the scheduler on one occurrence of a meeting. ``occurrence_at`` is the
    occurrence's start in UTC; ``action`` is "open", "record", "transcribe" or "end".
    ``status`` is "pending" (claimed, or failed and to be retried once ``lease_until`` has
    passed), "done" or "failed" (it gave up). ``holder`` is the scheduler that holds (or
    last held) it, until ``lease_until``; ``attempts`` counts the claims."""

    __tablename__ = "schedule_actions"
    # A pass's ``settled`` filters by occurrence and status (migration 0012).
    __table_args__ = (Index("ix_schedule_actions_occurrence_status", "occurrence_at", "status"),)

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    occurrence_at: Mapped[dt.datetime] = mapped_column(Timestamp, primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    done_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


# --- Phone dial-in (UC-08; moderation/dial_in.py, store/dial_ins.py) ---------------------


class DialIn(Base):
    """A meeting's phone dial-in: its PIN, unique among meetings (callers of every meeting
    share the dial-in numbers), and the SIP dispatch rule that now lets callers with it in
    (None while they are refused: the meeting locked or ended, or the rule not made yet)."""

    __tablename__ = "dial_ins"

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    pin: Mapped[str] = mapped_column(String(16), unique=True)
    rule_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp)
