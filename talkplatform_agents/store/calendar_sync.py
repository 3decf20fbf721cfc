"""CalDAV sync state (UC-04): per user, the collection and its last sync token, and the
calendar objects the sync published there or imported from there.

Also two narrow reads the sync needs and ``ScheduleRepository`` does not offer: the
scheduled meetings a user hosts, cancelled ones included (a cancellation must reach the
calendar too), and whether a meeting exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select

from talkplatform_agents.roles import Role
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.meetings import MeetingView
from talkplatform_agents.store.models import (
    CalendarItem,
    CalendarSync,
    Meeting,
    MeetingMember,
    MeetingSchedule,
)
from talkplatform_agents.store.schedules import ScheduleView
from talkplatform_agents.store.timeutil import aware

__all__ = [
    "MAX_HOSTED",
    "MAX_HREF",
    "CalendarItemView",
    "CalendarSyncRepository",
    "CalendarSyncView",
    "Origin",
]

# Scheduled meetings one sync publishes at most (the most recently starting first).
MAX_HOSTED = 1000
# The length of calendar_items.href (models.CalendarItem): a longer href cannot be stored.
MAX_HREF = 512

Origin = Literal["published", "imported"]


@dataclass(frozen=True)
class CalendarSyncView:
    user_id: str
    collection_url: str
    sync_token: str | None
    ctag: str | None
    synced_at: dt.datetime | None


@dataclass(frozen=True)
class CalendarItemView:
    user_id: str
    href: str
    uid: str
    etag: str | None
    meeting_id: str | None
    origin: Origin
    sequence: int = 0


def _item(row: CalendarItem) -> CalendarItemView:
    origin: Origin = "published" if row.origin == "published" else "imported"
    return CalendarItemView(
        row.user_id, row.href, row.uid, row.etag, row.meeting_id, origin, row.sequence
    )


class CalendarSyncRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def state(self, user_id: str) -> CalendarSyncView | None:
        async with self._db.session() as session:
            row = await session.get(CalendarSync, user_id)
            if row is None:
                return None
            synced = aware(row.synced_at) if row.synced_at else None
            return CalendarSyncView(
                row.user_id, row.collection_url, row.sync_token, row.ctag, synced
            )

    async def save_state(
        self, user_id: str, collection_url: str, sync_token: str | None, ctag: str | None
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        async with self._db.session() as session:
            row = await session.get(CalendarSync, user_id, with_for_update=True)
            if row is None:
                row = CalendarSync(user_id=user_id, collection_url=collection_url)
                session.add(row)
            row.sync_token, row.ctag, row.synced_at = sync_token, ctag, now
            row.collection_url = collection_url

    async def items(self, user_id: str) -> list[CalendarItemView]:
        query = select(CalendarItem).where(CalendarItem.user_id == user_id)
        async with self._db.session() as session:
            return [_item(r) for r in (await session.execute(query)).scalars()]

    async def put_item(self, item: CalendarItemView) -> None:
        """Insert or replace the item at (user, href)."""
        async with self._db.session() as session:
            row = await session.get(CalendarItem, (item.user_id, item.href), with_for_update=True)
            if row is None:
                session.add(CalendarItem(user_id=item.user_id, href=item.href, uid=item.uid,
                                         etag=item.etag, meeting_id=item.meeting_id,
                                         origin=item.origin, sequence=item.sequence))  # fmt: skip
            else:
                row.uid, row.etag, row.meeting_id = item.uid, item.etag, item.meeting_id
                row.origin, row.sequence = item.origin, item.sequence

    async def forget_item(self, user_id: str, href: str) -> None:
        statement = delete(CalendarItem).where(
            (CalendarItem.user_id == user_id) & (CalendarItem.href == href)
        )
        async with self._db.session() as session:
            await session.execute(statement)

    async def hosted(self, user_id: str) -> list[tuple[MeetingView, ScheduleView]]:
        """The scheduled meetings ``user_id`` hosts, cancelled series included, at most
        ``MAX_HOSTED`` (latest start first)."""
        query = (
            select(Meeting, MeetingSchedule)
            .join(MeetingSchedule, MeetingSchedule.meeting_id == Meeting.id)
            .join(MeetingMember, MeetingMember.meeting_id == Meeting.id)
            .where(MeetingMember.user_id == user_id)
            .where(MeetingMember.role == Role.HOST)
            .order_by(MeetingSchedule.starts_at.desc(), Meeting.id)
            .limit(MAX_HOSTED)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
            return [(MeetingView.of(m), ScheduleView.of(s)) for m, s in rows]

    async def meeting_exists(self, meeting_id: str) -> bool:
        async with self._db.session() as session:
            return await session.get(Meeting, meeting_id) is not None
