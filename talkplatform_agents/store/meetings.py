"""Meetings and the standing roles of their members.

The door (a token request) reads a meeting on every request. It gets it in one cheap
statement: the meeting's version and the user's waiting-room status. The meeting itself
(its settings, its members' roles) comes from a snapshot cached in this process, which is
used only while its version is the stored one. Every change to a meeting or its roles bumps
the version in the same transaction, whichever process makes it (the service, or the
moderator bot answering a host's RPC). So a change is seen by the very next token request
in every process: staleness is not bounded by a TTL but absent, at the price of that one
statement per request. This holds as long as every writer goes through this repository: a
process still running code from before the version (migration 0004), or a hand-made
UPDATE, leaves other processes' snapshots stale until the next bump.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from talkplatform_agents.roles import MODERATOR_ROLES, Role
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Meeting, MeetingMember, WaitingEntry
from talkplatform_agents.store.timeutil import aware
from talkplatform_agents.store.waiting import WaitingStatus

__all__ = ["DoorView", "MeetingRepository", "MeetingSnapshot", "MeetingView", "new_meeting"]

# Meetings whose snapshot a process keeps (least recently used go first). A snapshot is
# the meeting row (settings up to 16 KiB, mostly far less) and its members with a role.
SNAPSHOT_CAPACITY = 10_000


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
    version: int = 1

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
            version=row.version,
        )


@dataclass(frozen=True, eq=False)
class MeetingSnapshot:
    """A meeting and its members' standing roles as of ``meeting.version``. Shared by every
    request that finds that version stored: nothing may change it (it is compared, and
    weakly referenced, by identity)."""

    meeting: MeetingView
    roles: Mapping[str, Role]  # the members with a row: hosts and co-hosts

    @property
    def version(self) -> int:
        return self.meeting.version

    def moderators(self) -> dict[str, Role]:
        return {user: role for user, role in self.roles.items() if role in MODERATOR_ROLES}


@dataclass(frozen=True)
class DoorView:
    """What the door decides a token request on: the meeting (current as of the request),
    the user's standing role, and their waiting-room status (None: never knocked)."""

    snapshot: MeetingSnapshot
    role: Role | None
    standing: WaitingStatus | None
    # Sent back to the lobby by a host, and not let in since (``WaitingView.sent_back``).
    sent_back: bool = False


# Built once: composing a statement costs more than SQLite takes to run it.
_DOOR = (
    select(Meeting.version, WaitingEntry.status, WaitingEntry.decided_by)
    .outerjoin(
        WaitingEntry,
        (WaitingEntry.meeting_id == Meeting.id) & (WaitingEntry.user_id == bindparam("user_id")),
    )
    .where(Meeting.id == bindparam("meeting_id"))
)


def new_meeting(
    title: str, settings: dict[str, Any], host_user_id: str, host_name: str | None, now: dt.datetime
) -> Meeting:
    """A new meeting row whose creator is its host (not yet added to a session)."""
    meeting = Meeting(
        id=uuid.uuid4().hex,
        title=title,
        settings=settings,
        created_by=host_user_id,
        created_at=now,
        version=1,
    )
    meeting.members.append(
        MeetingMember(user_id=host_user_id, role=Role.HOST, display_name=host_name, created_at=now)
    )
    return meeting


class MeetingRepository:
    def __init__(self, db: Database, *, snapshot_capacity: int = SNAPSHOT_CAPACITY) -> None:
        self._db = db
        self._snapshots = _Snapshots(db, snapshot_capacity)

    async def door(self, meeting_id: str, user_id: str) -> DoorView | None:
        """The meeting and the user's standing in it, current as of this call: one
        statement, plus a reload of the meeting when its version moved (see the module)."""
        async with self._db.read() as connection:
            params = {"meeting_id": meeting_id, "user_id": user_id}
            row = (await connection.execute(_DOOR, params)).first()
        if row is None:
            return None
        version, standing, decider = row
        snapshot = await self._snapshots.at_least(meeting_id, version)
        if snapshot is None:
            return None
        status = WaitingStatus(standing) if standing is not None else None
        sent_back = status in (WaitingStatus.WAITING, WaitingStatus.LEFT) and decider is not None
        return DoorView(snapshot, snapshot.roles.get(user_id), status, sent_back)

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
        meeting = new_meeting(title, settings, host_user_id, host_name, now)
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
        """The meeting and the user's standing role in it, in one query."""
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
            await _bump(session, meeting_id)
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
            await _bump(session, meeting_id)
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
            row.version += 1
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
                row.version += 1
            await session.flush()
            return MeetingView.of(row)

    async def room_event(self, meeting_id: str, *, started: bool, at: dt.datetime) -> bool:
        """Record the meeting room's start or finish; False when there is no such meeting."""
        values = {"room_started_at": at} if started else {"room_finished_at": at}
        statement = (
            update(Meeting)
            .where(Meeting.id == meeting_id)
            .values(**values, version=Meeting.version + 1)
        )
        async with self._db.session() as session:
            result = await session.execute(statement)
            return bool(getattr(result, "rowcount", 0))


async def _bump(session: AsyncSession, meeting_id: str) -> None:
    """A new version for a change to the meeting's members. First in its transaction, so
    that every writer locks the meeting row before its members (one lock order)."""
    statement = update(Meeting).where(Meeting.id == meeting_id).values(version=Meeting.version + 1)
    await session.execute(statement.execution_options(synchronize_session=False))


@dataclass
class _Gate:
    """One load of a meeting at a time: a burst of requests for a meeting whose version
    moved waits for one reload rather than each making its own."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class _Snapshots:
    """Meetings as last loaded, least recently used first; each trusted only for the
    version the caller just read from the store."""

    def __init__(self, db: Database, capacity: int) -> None:
        self._db = db
        self._capacity = capacity
        self._cached: OrderedDict[str, MeetingSnapshot] = OrderedDict()
        self._gates: dict[str, _Gate] = {}

    async def at_least(self, meeting_id: str, version: int) -> MeetingSnapshot | None:
        """A snapshot of ``version`` or newer; None if the meeting no longer exists."""
        snapshot = self._fresh(meeting_id, version)
        if snapshot is not None:
            return snapshot
        gate = self._gates.setdefault(meeting_id, _Gate())
        gate.users += 1
        try:
            async with gate.lock:
                snapshot = self._fresh(meeting_id, version)  # loaded while we waited
                if snapshot is None:
                    snapshot = await self._load(meeting_id)
                    if snapshot is not None:
                        self._keep(snapshot)
                return snapshot
        finally:
            gate.users -= 1
            if not gate.users:
                del self._gates[meeting_id]

    def _fresh(self, meeting_id: str, version: int) -> MeetingSnapshot | None:
        snapshot = self._cached.get(meeting_id)
        if snapshot is None or snapshot.version < version:
            return None
        self._cached.move_to_end(meeting_id)
        return snapshot

    def _keep(self, snapshot: MeetingSnapshot) -> None:
        meeting_id = snapshot.meeting.id
        cached = self._cached.get(meeting_id)
        if cached is not None and cached.version > snapshot.version:
            return
        self._cached[meeting_id] = snapshot
        self._cached.move_to_end(meeting_id)
        while len(self._cached) > self._capacity:
            self._cached.popitem(last=False)

    async def _load(self, meeting_id: str) -> MeetingSnapshot | None:
        # One statement, so the row and its members are of one moment on every backend
        # (SQLite reads outside a transaction; two statements could straddle a change).
        query = (
            select(Meeting, MeetingMember.user_id, MeetingMember.role)
            .outerjoin(MeetingMember, MeetingMember.meeting_id == Meeting.id)
            .where(Meeting.id == meeting_id)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
            if not rows:
                return None
            roles = {user: Role.stored(role) for _, user, role in rows if user is not None}
            return MeetingSnapshot(MeetingView.of(rows[0][0]), MappingProxyType(roles))
