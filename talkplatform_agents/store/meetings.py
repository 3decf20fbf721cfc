"""Meetings and the standing roles of their members."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from talkplatform_agents.roles import MODERATOR_ROLES, Role
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Meeting, MeetingMember
from talkplatform_agents.store.timeutil import aware

__all__ = ["MeetingRepository", "MeetingView"]


@dataclass(frozen=True)
class MeetingView:
    """A meeting as read from the store, detached from any session."""

    id: str
    title: str
    settings: dict[str, Any]
    created_by: str
    created_at: dt.datetime
    ended_at: dt.datetime | None
    room_started_at: dt.datetime | None = None
    room_finished_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Meeting) -> MeetingView:
        return cls(
            id=row.id,
            title=row.title,
            settings=dict(row.settings or {}),
            created_by=row.created_by,
            created_at=aware(row.created_at),
            ended_at=aware(row.ended_at) if row.ended_at else None,
            room_started_at=aware(row.room_started_at) if row.room_started_at else None,
            room_finished_at=aware(row.room_finished_at) if row.room_finished_at else None,
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
                user_id=host_user_id, role=Role.HOST, display_name=host_name, created_at=now
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
    ) -> tuple[MeetingView, Role | None] | None:
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
            return MeetingView.of(row[0]), Role.stored(row[1]) if row[1] else None

    async def role(self, meeting_id: str, user_id: str) -> Role | None:
        """The user's standing role; None for someone with none (a participant)."""
        async with self._db.session() as session:
            member = await session.get(MeetingMember, (meeting_id, user_id))
            return Role.stored(member.role) if member else None

    async def moderators(self, meeting_id: str) -> dict[str, Role]:
        """Hosts and co-hosts: user id → role."""
        query = (
            select(MeetingMember.user_id, MeetingMember.role)
            .where(MeetingMember.meeting_id == meeting_id)
            .where(MeetingMember.role.in_(MODERATOR_ROLES))
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
            return {user: Role.stored(role) for user, role in rows}

    async def set_role(
        self, meeting_id: str, user_id: str, role: Role, display_name: str | None = None
    ) -> None:
        async with self._db.session() as session:
            member = await session.get(MeetingMember, (meeting_id, user_id), with_for_update=True)
            if member is None:
                session.add(
                    MeetingMember(
                        meeting_id=meeting_id,
                        user_id=user_id,
                        role=role,
                        display_name=display_name,
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
            else:
                member.role = role

    async def pass_host(self, meeting_id: str, from_user: str, to_user: str) -> None:
        """The new host and the old host's demotion to co-host, in one transaction."""
        async with self._db.session() as session:
            old = await session.get(MeetingMember, (meeting_id, from_user), with_for_update=True)
            new = await session.get(MeetingMember, (meeting_id, to_user), with_for_update=True)
            if new is None:
                now = dt.datetime.now(dt.UTC)
                session.add(
                    MeetingMember(
                        meeting_id=meeting_id, user_id=to_user, role=Role.HOST, created_at=now
                    )
                )
            else:
                new.role = Role.HOST
            if old is not None:
                old.role = Role.COHOST

    async def update_settings(self, meeting_id: str, changes: dict[str, Any]) -> MeetingView | None:
        """Merge ``changes`` into the settings, under a row lock (no lost update)."""
        async with self._db.session() as session:
            row = await session.get(Meeting, meeting_id, with_for_update=True)
            if row is None:
                return None
            row.settings = {**(row.settings or {}), **changes}
            await session.flush()
            return MeetingView.of(row)

    async def end(self, meeting_id: str) -> MeetingView | None:
        """Mark the meeting ended; ending it again keeps the first time."""
        async with self._db.session() as session:
            row = await session.get(Meeting, meeting_id, with_for_update=True)
            if row is None:
                return None
            if row.ended_at is None:
                row.ended_at = dt.datetime.now(dt.UTC)
            await session.flush()
            return MeetingView.of(row)

    async def room_event(self, meeting_id: str, *, started: bool, at: dt.datetime) -> bool:
        """Record the meeting room's start or finish; False when there is no such meeting."""
        values = {"room_started_at": at} if started else {"room_finished_at": at}
        statement = update(Meeting).where(Meeting.id == meeting_id).values(**values)
        async with self._db.session() as session:
            result = await session.execute(statement)
            return bool(getattr(result, "rowcount", 0))
