"""Meetings and the standing roles of their members."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Meeting, MeetingMember

__all__ = ["MeetingRepository", "MeetingView"]

# Roles are stored as plain strings: the store knows nothing of LiveKit's grants.
HOST_ROLE = "host"


@dataclass(frozen=True)
class MeetingView:
    """A meeting as read from the store, detached from any session."""

    id: str
    title: str
    settings: dict[str, Any]
    created_by: str
    created_at: dt.datetime
    ended_at: dt.datetime | None

    @classmethod
    def of(cls, row: Meeting) -> MeetingView:
        return cls(
            id=row.id,
            title=row.title,
            settings=dict(row.settings or {}),
            created_by=row.created_by,
            created_at=_aware(row.created_at),
            ended_at=_aware(row.ended_at) if row.ended_at else None,
        )


class MeetingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        title: str,
        settings: dict[str, Any],
        host_user_id: str,
        host_name: str | None,
    ) -> MeetingView:
        """Create a meeting whose creator is its host, in one transaction."""
        now = dt.datetime.now(dt.UTC)
        meeting = Meeting(
            id=uuid.uuid4().hex,
            title=title,
            settings=settings,
            created_by=host_user_id,
            created_at=now,
        )
        meeting.members.append(
            MeetingMember(
                user_id=host_user_id, role=HOST_ROLE, display_name=host_name, created_at=now
            )
        )
        async with self._db.session() as session:
            session.add(meeting)
        return MeetingView.of(meeting)

    async def get(self, meeting_id: str) -> MeetingView | None:
        async with self._db.session() as session:
            row = await session.get(Meeting, meeting_id)
            return MeetingView.of(row) if row else None

    async def with_role(
        self, meeting_id: str, user_id: str
    ) -> tuple[MeetingView, str | None] | None:
        """The meeting and the user's standing role in it, in one query (the token path)."""
        query = (
            select(Meeting, MeetingMember.role)
            .outerjoin(
                MeetingMember,
                (MeetingMember.meeting_id == Meeting.id) & (MeetingMember.user_id == user_id),
            )
            .where(Meeting.id == meeting_id)
        )
        async with self._db.session() as session:
            row = (await session.execute(query)).first()
            if row is None:
                return None
            return MeetingView.of(row[0]), row[1]


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite and MariaDB hand back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
