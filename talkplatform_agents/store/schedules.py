"""Scheduled meetings (UC-04): a meeting's time, zone, recurrence, its cancelled and moved
occurrences, its attendees, and the SEQUENCE its invitations carry.

The store keeps what the calendar core (``talkplatform_agents.calendar``) checked, as text:
wall-clock times in the meeting's zone (so DST is applied when read, by the zone's rules of
that day), JSON lists for the rest. It checks nothing about time itself and imports nothing
above it; the caller also hands it the UTC bounds of every occurrence (``starts_at``,
``ends_at``), which is how a listing reads only the rows that may overlap its window.

Every change raises ``sequence`` under a conditional update on the sequence the caller read
(``if_sequence``): two edits at once cannot both win, the loser is a ``Conflict``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_, select, update

from talkplatform_agents.errors import Conflict, Gone, NotFound
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.meetings import MeetingView, new_meeting
from talkplatform_agents.store.models import Meeting, MeetingMember, MeetingSchedule
from talkplatform_agents.store.timeutil import aware

__all__ = ["MAX_LISTED", "ScheduleRecord", "ScheduleRepository", "ScheduleView"]

# Meetings one listing reads at most (each expanded by the caller).
MAX_LISTED = 1000


@dataclass(frozen=True)
class ScheduleRecord:
    """A schedule as the caller writes it. ``overrides`` are JSON objects (the caller's
    format); ``starts_at``/``ends_at`` bound every occurrence in UTC (``ends_at`` None: an
    open series)."""

    timezone: str
    start_local: str
    end_local: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    rrule: str | None = None
    exdates: tuple[str, ...] = ()
    overrides: tuple[dict[str, Any], ...] = ()
    attendees: tuple[str, ...] = ()
    organizer_email: str | None = None


@dataclass(frozen=True)
class ScheduleView:
    """A stored schedule, detached from any session."""

    meeting_id: str
    record: ScheduleRecord
    sequence: int
    cancelled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: MeetingSchedule) -> ScheduleView:
        record = ScheduleRecord(
            timezone=row.timezone,
            start_local=row.start_local,
            end_local=row.end_local,
            starts_at=aware(row.starts_at),
            ends_at=aware(row.ends_at) if row.ends_at else None,
            rrule=row.rrule,
            exdates=tuple(json.loads(row.exdates)),
            overrides=tuple(json.loads(row.overrides)),
            attendees=tuple(json.loads(row.attendees)),
            organizer_email=row.organizer_email,
        )
        return cls(
            meeting_id=row.meeting_id,
            record=record,
            sequence=row.sequence,
            cancelled_at=aware(row.cancelled_at) if row.cancelled_at else None,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )


def _columns(record: ScheduleRecord) -> dict[str, Any]:
    return {
        "timezone": record.timezone,
        "start_local": record.start_local,
        "end_local": record.end_local,
        "rrule": record.rrule,
        "exdates": json.dumps(list(record.exdates)),
        "overrides": json.dumps(list(record.overrides)),
        "attendees": json.dumps(list(record.attendees)),
        "organizer_email": record.organizer_email,
        "starts_at": record.starts_at.astimezone(dt.UTC),
        "ends_at": record.ends_at.astimezone(dt.UTC) if record.ends_at else None,
    }


def _like(value: str) -> str:
    """A LIKE pattern for ``value`` as one JSON string in a JSON list (``!`` escapes)."""
    quoted = json.dumps(value)
    return "%" + quoted.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        title: str,
        settings: dict[str, Any],
        host_user_id: str,
        host_name: str | None,
        record: ScheduleRecord,
    ) -> tuple[MeetingView, ScheduleView]:
        """A meeting hosted by its creator and its schedule, in one transaction: both or
        neither."""
        now = dt.datetime.now(dt.UTC)
        meeting = new_meeting(title, settings, host_user_id, host_name, now)
        row = MeetingSchedule(
            meeting_id=meeting.id, sequence=0, created_at=now, updated_at=now, **_columns(record)
        )
        async with self._db.session() as session:
            session.add(meeting)
            await session.flush()  # the meeting first: the schedule's foreign key needs it
            session.add(row)
        return MeetingView.of(meeting), ScheduleView.of(row)

    async def get(self, meeting_id: str) -> ScheduleView | None:
        async with self._db.session() as session:
            row = await session.get(MeetingSchedule, meeting_id)
            return ScheduleView.of(row) if row else None

    async def update(
        self, meeting_id: str, record: ScheduleRecord, *, if_sequence: int
    ) -> ScheduleView:
        """Replace the schedule (the series, or its cancelled and moved occurrences) and
        raise its sequence. ``NotFound`` without a schedule, ``Gone`` once the series is
        cancelled, ``Conflict`` when its sequence is no longer ``if_sequence``."""
        now = dt.datetime.now(dt.UTC)
        statement = (
            update(MeetingSchedule)
            .where(MeetingSchedule.meeting_id == meeting_id)
            .where(MeetingSchedule.sequence == if_sequence)
            .where(MeetingSchedule.cancelled_at.is_(None))
            .values(**_columns(record), sequence=MeetingSchedule.sequence + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        async with self._db.session() as session:
            result = await session.execute(statement)
            row = await session.get(MeetingSchedule, meeting_id, populate_existing=True)
            if not getattr(result, "rowcount", 0):
                _refuse(meeting_id, row)
            assert row is not None
            return ScheduleView.of(row)

    async def cancel(self, meeting_id: str) -> ScheduleView:
        """Cancel the whole series (its sequence raised once); cancelling it again keeps
        the first time and sequence. ``NotFound`` without a schedule."""
        async with self._db.session() as session:
            row = await session.get(MeetingSchedule, meeting_id, with_for_update=True)
            if row is None:
                raise NotFound("the meeting has no schedule", meetingId=meeting_id)
            if row.cancelled_at is None:
                now = dt.datetime.now(dt.UTC)
                row.cancelled_at = now
                row.updated_at = now
                row.sequence += 1
            await session.flush()
            return ScheduleView.of(row)

    async def overlapping(
        self,
        window_start: dt.datetime,
        window_end: dt.datetime,
        *,
        people: Collection[str],
    ) -> list[tuple[MeetingView, ScheduleView]]:
        """The scheduled meetings, not cancelled, whose occurrences may overlap the window
        (by their stored bounds) and in which one of ``people`` (a user id, an email) is a
        member with a standing role or an attendee; at most ``MAX_LISTED``, by start."""
        names = sorted({p for p in people if p})
        if not names:
            return []
        member = exists().where(
            (MeetingMember.meeting_id == MeetingSchedule.meeting_id)
            & MeetingMember.user_id.in_(names)
        )
        attendee = or_(*(MeetingSchedule.attendees.like(_like(n), escape="!") for n in names))
        query = (
            select(Meeting, MeetingSchedule, member.label("is_member"))
            .join(MeetingSchedule, MeetingSchedule.meeting_id == Meeting.id)
            .where(MeetingSchedule.cancelled_at.is_(None))
            .where(MeetingSchedule.starts_at < window_end.astimezone(dt.UTC))
            .where(
                or_(
                    MeetingSchedule.ends_at.is_(None),
                    MeetingSchedule.ends_at > window_start.astimezone(dt.UTC),
                )
            )
            .where(or_(member, attendee))
            .order_by(MeetingSchedule.starts_at, Meeting.id)
            .limit(MAX_LISTED)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
            found = [(MeetingView.of(m), ScheduleView.of(s), bool(ok)) for m, s, ok in rows]
        wanted = set(names)
        # LIKE finds candidates; an attendee counts only as a whole entry of the list.
        return [(m, s) for m, s, ok in found if ok or wanted & set(s.record.attendees)]


def _refuse(meeting_id: str, row: MeetingSchedule | None) -> None:
    if row is None:
        raise NotFound("the meeting has no schedule", meetingId=meeting_id)
    if row.cancelled_at is not None:
        raise Gone("the meeting's series is cancelled", meetingId=meeting_id)
    raise Conflict(
        "the schedule changed meanwhile: read it again", meetingId=meeting_id, sequence=row.sequence
    )
