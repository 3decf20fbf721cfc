"""Who was in a meeting (or its lobby), from when to when: livekit-server's webhooks.

Webhooks can arrive twice or out of order, so each call is idempotent on the participant
session id, and a ``left`` for an unseen session records the whole session at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Attendance
from talkplatform_agents.store.timeutil import aware

__all__ = ["AttendanceRepository", "AttendanceView"]


@dataclass(frozen=True)
class AttendanceView:
    participant_sid: str
    meeting_id: str
    room: str
    user_id: str
    display_name: str | None
    joined_at: dt.datetime
    left_at: dt.datetime | None

    @classmethod
    def of(cls, row: Attendance) -> AttendanceView:
        return cls(
            participant_sid=row.participant_sid,
            meeting_id=row.meeting_id,
            room=row.room,
            user_id=row.user_id,
            display_name=row.display_name,
            joined_at=aware(row.joined_at),
            left_at=aware(row.left_at) if row.left_at else None,
        )


class AttendanceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def joined(self, session_of: AttendanceView) -> None:
        try:
            async with self._db.session() as session:
                if await session.get(Attendance, session_of.participant_sid) is None:
                    session.add(_row(session_of))
        except IntegrityError:
            pass  # the same webhook, delivered twice at once

    async def left(self, session_of: AttendanceView) -> None:
        statement = (
            update(Attendance)
            .where(Attendance.participant_sid == session_of.participant_sid)
            .where(Attendance.left_at.is_(None))
            .values(left_at=session_of.left_at)
        )
        async with self._db.session() as session:
            if await session.get(Attendance, session_of.participant_sid) is None:
                session.add(_row(session_of))
            else:
                await session.execute(statement)

    async def room_finished(self, meeting_id: str, room: str, at: dt.datetime) -> int:
        """Close the sessions a finished room leaves open (a lost participant_left)."""
        statement = (
            update(Attendance)
            .where(Attendance.meeting_id == meeting_id)
            .where(Attendance.room == room)
            .where(Attendance.left_at.is_(None))
            .values(left_at=at)
        )
        async with self._db.session() as session:
            result = await session.execute(statement)
            return int(getattr(result, "rowcount", 0))

    async def of_meeting(self, meeting_id: str) -> list[AttendanceView]:
        query = (
            select(Attendance)
            .where(Attendance.meeting_id == meeting_id)
            .order_by(Attendance.joined_at, Attendance.participant_sid)
        )
        async with self._db.session() as session:
            return [AttendanceView.of(row) for row in (await session.scalars(query)).all()]


def _row(view: AttendanceView) -> Attendance:
    return Attendance(
        participant_sid=view.participant_sid,
        meeting_id=view.meeting_id,
        room=view.room,
        user_id=view.user_id,
        display_name=view.display_name,
        joined_at=view.joined_at,
        left_at=view.left_at,
    )
