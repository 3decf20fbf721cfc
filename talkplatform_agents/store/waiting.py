"""The waiting room's queue. It lives here, not in a bot, so a bot restart loses nothing.

Every status change is a conditional update (``WHERE status IN (...)``): two hosts acting
at once, or an admit-all racing new knocks, can never admit anyone twice or lose anyone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import Conflict
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import WaitingEntry
from talkplatform_agents.store.timeutil import aware

__all__ = ["Transition", "WaitingRepository", "WaitingStats", "WaitingStatus", "WaitingView"]


class WaitingStatus(enum.StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    DENIED = "denied"
    LEFT = "left"  # gave up: left the lobby while waiting
    REMOVED = "removed"  # removed from the meeting by a host; may not come back


@dataclass(frozen=True)
class WaitingView:
    meeting_id: str
    user_id: str
    display_name: str
    status: WaitingStatus
    knocked_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    reason: str | None

    @property
    def sent_back(self) -> bool:
        """Waiting (or gone from the lobby) because a host sent them back (``put_back``),
        not because they knocked: only a host lets them in again, never a host's arrival,
        an auto-admit list, or the door of a meeting without a waiting room."""
        return (
            self.status in (WaitingStatus.WAITING, WaitingStatus.LEFT)
            and self.decided_by is not None
        )

    @classmethod
    def of(cls, row: WaitingEntry) -> WaitingView:
        return cls(
            meeting_id=row.meeting_id,
            user_id=row.user_id,
            display_name=row.display_name,
            status=WaitingStatus(row.status),
            knocked_at=aware(row.knocked_at),
            decided_at=aware(row.decided_at) if row.decided_at else None,
            decided_by=row.decided_by,
            reason=row.reason,
        )


@dataclass(frozen=True)
class Transition:
    """The outcome of a status change: ``changed`` is False when the entry was already in
    the target status (an idempotent repeat) or in a status the change does not apply to."""

    entry: WaitingView | None  # None: the user never knocked
    changed: bool


@dataclass(frozen=True)
class WaitingStats:
    counts: dict[str, int]
    average_wait_s: float | None  # of those waiting now
    longest_wait_s: float | None
    average_admitted_wait_s: float | None  # knock to admission, of those admitted


@dataclass(frozen=True)
class _Knock:
    meeting_id: str
    user_id: str
    name: str
    at: dt.datetime


class _Keep:
    """``_transition``'s ``by`` for a change that keeps who decided (leaving the lobby)."""


KEEP_DECIDER = _Keep()

# At most this many knocks in one transaction (an IN list of their user ids).
KNOCK_BATCH = 500


class WaitingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Group commit of knocks: whoever holds the turn writes every knock queued by then
        # in one transaction, so a crowd at the door costs a transaction per batch, not
        # per knock (SQLite has one writer: one transaction per knock made them queue).
        self._knocks: list[tuple[_Knock, asyncio.Future[WaitingView]]] = []
        self._knock_turn = asyncio.Lock()

    async def knock(
        self, meeting_id: str, user_id: str, name: str, now: dt.datetime | None = None
    ) -> WaitingView:
        """Put the user in the queue, unless a decision about them stands (admitted, denied,
        removed): the caller reads the returned status. Knocking again keeps one's place.
        Returns once the knock is committed (with others made meanwhile)."""
        knock = _Knock(meeting_id, user_id, name, now or _now())
        done: asyncio.Future[WaitingView] = asyncio.get_running_loop().create_future()
        self._knocks.append((knock, done))
        try:
            while not done.done():
                async with self._knock_turn:
                    if not done.done():
                        await self._write_queued()
        except asyncio.CancelledError:
            done.cancel()  # not written if not begun; harmless if it was (idempotent)
            raise
        return done.result()

    async def _write_queued(self) -> None:
        batch = [(k, f) for k, f in self._knocks[:KNOCK_BATCH] if not f.done()]
        del self._knocks[:KNOCK_BATCH]
        if not batch:
            return
        try:
            views = await self._knock_all([knock for knock, _ in batch])
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:
            # The writer's own request was cancelled: whether or not the transaction
            # committed, the others' knocks go back in line for the next writer (a knock
            # written twice is the same knock).
            self._knocks[:0] = [(k, f) for k, f in batch if not f.done()]
            raise
        for (_, future), view in zip(batch, views, strict=True):
            if not future.done():
                future.set_result(view)

    async def _knock_all(self, knocks: list[_Knock]) -> list[WaitingView]:
        for _ in range(2):  # another process's first knock of the same user wins an insert
            try:
                return await self._knock_once(knocks)
            except IntegrityError:
                continue
        raise Conflict("the knock kept conflicting with another; try again")

    async def _knock_once(self, knocks: list[_Knock]) -> list[WaitingView]:
        async with self._db.session() as session:
            rows: dict[tuple[str, str], WaitingEntry] = {}
            by_meeting: dict[str, set[str]] = {}
            for knock in knocks:
                by_meeting.setdefault(knock.meeting_id, set()).add(knock.user_id)
            for meeting_id, users in by_meeting.items():
                query = (
                    select(WaitingEntry)
                    .where(WaitingEntry.meeting_id == meeting_id)
                    .where(WaitingEntry.user_id.in_(users))
                    .with_for_update()
                )
                for found in (await session.scalars(query)).all():
                    rows[(found.meeting_id, found.user_id)] = found
            views = []
            for knock in knocks:  # in order: a second knock of the same user keeps the first
                row = rows.get((knock.meeting_id, knock.user_id))
                if row is None:
                    row = rows[(knock.meeting_id, knock.user_id)] = WaitingEntry(
                        meeting_id=knock.meeting_id,
                        user_id=knock.user_id,
                        display_name=knock.name,
                        status=WaitingStatus.WAITING.value,
                        knocked_at=knock.at,
                        version=1,
                    )
                    session.add(row)
                elif row.status == WaitingStatus.LEFT.value:
                    row.status = WaitingStatus.WAITING.value
                    row.knocked_at, row.display_name = knock.at, knock.name
                    row.decided_at = row.reason = None  # decided_by: sent back, still
                    row.version += 1
                views.append(row)
            await session.flush()
            return [WaitingView.of(row) for row in views]

    async def get(self, meeting_id: str, user_id: str) -> WaitingView | None:
        async with self._db.session() as session:
            row = await session.get(WaitingEntry, (meeting_id, user_id))
            return WaitingView.of(row) if row else None

    async def waiting(self, meeting_id: str) -> list[WaitingView]:
        """Those waiting now, first come first."""
        query = (
            select(WaitingEntry)
            .where(WaitingEntry.meeting_id == meeting_id)
            .where(WaitingEntry.status == WaitingStatus.WAITING.value)
            .order_by(WaitingEntry.knocked_at, WaitingEntry.user_id)
        )
        async with self._db.session() as session:
            return [WaitingView.of(row) for row in (await session.scalars(query)).all()]

    async def admit(self, meeting_id: str, user_id: str, by: str) -> Transition:
        return await self._transition(
            meeting_id, user_id, {WaitingStatus.WAITING}, WaitingStatus.ADMITTED, by
        )

    async def deny(
        self, meeting_id: str, user_id: str, by: str, reason: str | None = None
    ) -> Transition:
        return await self._transition(
            meeting_id, user_id, {WaitingStatus.WAITING}, WaitingStatus.DENIED, by, reason
        )

    async def left(self, meeting_id: str, user_id: str) -> Transition:
        # Who sent them back (``put_back``) stays on the entry: leaving the lobby and
        # knocking again must not undo a host's word (``WaitingView.sent_back``).
        return await self._transition(
            meeting_id, user_id, {WaitingStatus.WAITING}, WaitingStatus.LEFT, KEEP_DECIDER
        )

    async def admit_all(self, meeting_id: str, by: str) -> list[WaitingView]:
        """Admit everyone waiting now; return exactly those this call admitted. Knocks that
        land meanwhile stay waiting (and are announced), never lost."""
        admitted: list[WaitingView] = []
        for entry in await self.waiting(meeting_id):
            outcome = await self.admit(meeting_id, entry.user_id, by)
            if outcome.changed and outcome.entry is not None:
                admitted.append(outcome.entry)
        return admitted

    async def put_back(
        self, meeting_id: str, user_id: str, name: str, by: str, status: WaitingStatus
    ) -> WaitingView:
        """Set the user's status whatever it was (return to waiting, removal), creating the
        entry for someone who entered without knocking (a meeting without a waiting room)."""
        now = _now()
        async with self._db.session() as session:
            row = await session.get(WaitingEntry, (meeting_id, user_id), with_for_update=True)
            if row is None:
                row = WaitingEntry(
                    meeting_id=meeting_id, user_id=user_id, display_name=name, version=0
                )
                session.add(row)
            row.status = status.value
            row.knocked_at = now
            row.decided_at = None if status is WaitingStatus.WAITING else now
            row.decided_by = by
            row.reason = None
            row.version = (row.version or 0) + 1
            await session.flush()
            return WaitingView.of(row)

    async def stats(self, meeting_id: str, now: dt.datetime | None = None) -> WaitingStats:
        now = now or _now()
        query = select(WaitingEntry).where(WaitingEntry.meeting_id == meeting_id)
        async with self._db.session() as session:
            entries = [WaitingView.of(row) for row in (await session.scalars(query)).all()]
        counts = {status.value: 0 for status in WaitingStatus}
        for entry in entries:
            counts[entry.status.value] += 1
        waits = [(now - e.knocked_at).total_seconds() for e in entries if _is(e, "waiting")]
        admitted = [
            (e.decided_at - e.knocked_at).total_seconds()
            for e in entries
            if _is(e, "admitted") and e.decided_at is not None
        ]
        return WaitingStats(
            counts=counts,
            average_wait_s=_mean(waits),
            longest_wait_s=max(waits) if waits else None,
            average_admitted_wait_s=_mean(admitted),
        )

    async def _transition(
        self,
        meeting_id: str,
        user_id: str,
        from_statuses: set[WaitingStatus],
        to: WaitingStatus,
        by: str | _Keep | None,
        reason: str | None = None,
    ) -> Transition:
        now = _now()
        decider = {} if isinstance(by, _Keep) else {"decided_by": by}
        statement = (
            update(WaitingEntry)
            .where(WaitingEntry.meeting_id == meeting_id)
            .where(WaitingEntry.user_id == user_id)
            .where(WaitingEntry.status.in_([s.value for s in from_statuses]))
            .values(
                status=to.value,
                decided_at=now,
                reason=reason,
                **decider,
                version=WaitingEntry.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._db.session() as session:
            result = await session.execute(statement)
            changed = bool(getattr(result, "rowcount", 0))
            row = await session.get(WaitingEntry, (meeting_id, user_id), populate_existing=True)
            return Transition(WaitingView.of(row) if row else None, changed)


def _is(entry: WaitingView, status: str) -> bool:
    return entry.status.value == status


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
