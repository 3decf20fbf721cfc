"""The scheduler's actions on scheduled meetings (UC-04): open the room, start a recording
or a transcription, end the meeting, once per occurrence, whichever scheduler sees it due.

An action is taken with ``claim``: an INSERT of its row, which the primary key (meeting,
occurrence, action) lets only one scheduler make, else a conditional UPDATE of a row that
is not done and whose lease has passed (a holder that died, or a failure waiting for its
retry), which only one scheduler's statement changes (the rowcount says whose did). The
winner does the action and marks it ``done`` (never claimed again) or ``failed`` (retried
once ``retry_s`` has passed, until it has been tried ``max_attempts`` times). The same
statements on SQLite and MariaDB; no lock is held while the action runs.

Times are the caller's (the scheduler's injectable clock), in UTC. Schedulers that share a
store are expected to keep their clocks in step (NTP), well within a lease's length.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.meetings import MeetingView
from talkplatform_agents.store.models import Meeting, MeetingSchedule, ScheduleAction
from talkplatform_agents.store.schedules import ScheduleView
from talkplatform_agents.store.timeutil import aware

__all__ = ["ActionKind", "ActionView", "ScheduleActionRepository"]

logger = logging.getLogger(__name__)

ActionKind = Literal["open", "record", "transcribe", "end"]
PENDING, DONE, FAILED = "pending", "done", "failed"
_MAX_ERROR = 1000
# Scheduled meetings one pass reads in one statement; more are read in further pages.
MAX_DUE = 1000


@dataclass(frozen=True)
class ActionView:
    meeting_id: str
    occurrence_at: dt.datetime
    action: str
    status: str  # "pending", "done", "failed"
    holder: str
    lease_until: dt.datetime | None
    done_at: dt.datetime | None
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, row: ScheduleAction) -> ActionView:
        return cls(
            row.meeting_id,
            aware(row.occurrence_at),
            row.action,
            row.status,
            row.holder,
            aware(row.lease_until) if row.lease_until else None,
            aware(row.done_at) if row.done_at else None,
            row.attempts,
            row.last_error,
        )


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("the scheduler's times carry their UTC offset")
    return value.astimezone(dt.UTC)


class ScheduleActionRepository:
    def __init__(self, db: Database, *, due_page: int = MAX_DUE) -> None:
        self._db = db
        self._due_page = due_page

    def _key(self, meeting_id: str, occurrence: dt.datetime, action: str) -> ColumnElement[bool]:
        return and_(
            ScheduleAction.meeting_id == meeting_id,
            ScheduleAction.occurrence_at == _utc(occurrence),
            ScheduleAction.action == action,
        )

    async def claim(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: ActionKind,
        holder: str,
        lease_s: float,
        now: dt.datetime,
    ) -> int | None:
        """Take the action for ``lease_s``: granted when nobody has taken it yet, or when it
        is not done (nor given up) and its lease has passed. Of several claimants at once,
        exactly one wins. The attempt this is (1 for the first), or None when not granted."""
        now = _utc(now)
        until = now + dt.timedelta(seconds=lease_s)
        try:
            async with self._db.session() as session:
                session.add(
                    ScheduleAction(
                        meeting_id=meeting_id,
                        occurrence_at=_utc(occurrence),
                        action=action,
                        status=PENDING,
                        holder=holder,
                        lease_until=until,
                        attempts=1,
                    )
                )
            return 1
        except IntegrityError:
            pass  # someone took it before: perhaps their lease has passed
        async with self._db.session() as session:
            result = await session.execute(
                update(ScheduleAction)
                .where(
                    self._key(meeting_id, occurrence, action),
                    ScheduleAction.status == PENDING,
                    or_(ScheduleAction.lease_until.is_(None), ScheduleAction.lease_until < now),
                )
                .values(holder=holder, lease_until=until, attempts=ScheduleAction.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            attempts = await session.scalar(
                select(ScheduleAction.attempts).where(self._key(meeting_id, occurrence, action))
            )
            return int(attempts or 1)

    async def done(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: ActionKind,
        holder: str,
        now: dt.datetime,
        note: str | None = None,
    ) -> bool:
        """The action is done: never claimed again. False when ``holder`` no longer holds
        it (its lease passed and another took it over)."""
        async with self._db.session() as session:
            result = await session.execute(
                update(ScheduleAction)
                .where(
                    self._key(meeting_id, occurrence, action),
                    ScheduleAction.status == PENDING,
                    ScheduleAction.holder == holder,
                )
                .values(status=DONE, done_at=_utc(now), lease_until=None, last_error=note)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def failed(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: ActionKind,
        holder: str,
        error: str,
        now: dt.datetime,
        *,
        retry_s: float,
        max_attempts: int,
    ) -> bool:
        """The attempt failed: retried by a later claim once ``retry_s`` has passed, unless
        this was attempt ``max_attempts`` (then it is given up, ``failed``). False when
        ``holder`` no longer holds it."""
        async with self._db.session() as session:
            result = await session.execute(
                update(ScheduleAction)
                .where(
                    self._key(meeting_id, occurrence, action),
                    ScheduleAction.status == PENDING,
                    ScheduleAction.holder == holder,
                )
                .values(
                    status=case((ScheduleAction.attempts >= max_attempts, FAILED), else_=PENDING),
                    lease_until=_utc(now) + dt.timedelta(seconds=retry_s),
                    last_error=error[:_MAX_ERROR],
                )
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def settled(
        self, window_start: dt.datetime, window_end: dt.datetime
    ) -> set[tuple[str, dt.datetime, str]]:
        """The (meeting, occurrence, action) of every action done or given up whose
        occurrence starts within the window: what a pass need not even claim."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(
                    ScheduleAction.meeting_id, ScheduleAction.occurrence_at, ScheduleAction.action
                ).where(
                    ScheduleAction.occurrence_at >= _utc(window_start),
                    ScheduleAction.occurrence_at <= _utc(window_end),
                    ScheduleAction.status != PENDING,
                )
            )
            return {(m, aware(at), a) for m, at, a in rows.all()}

    async def get(
        self, meeting_id: str, occurrence: dt.datetime, action: ActionKind
    ) -> ActionView | None:
        async with self._db.session() as session:
            row = await session.get(ScheduleAction, (meeting_id, _utc(occurrence), action))
            return ActionView.of(row) if row else None

    async def of_meeting(self, meeting_id: str) -> list[ActionView]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ScheduleAction)
                .where(ScheduleAction.meeting_id == meeting_id)
                .order_by(ScheduleAction.occurrence_at, ScheduleAction.action)
            )
            return [ActionView.of(r) for r in rows]

    async def due_schedules(
        self, window_start: dt.datetime, window_end: dt.datetime
    ) -> list[tuple[MeetingView, ScheduleView]]:
        """Every scheduled meeting, not ended and its series not cancelled, whose
        occurrences may overlap the window (by the schedule's stored bounds), by start
        then id; all of them, read in pages of ``MAX_DUE`` (keyset on start and id; a
        warning says when more than one page was needed). (``ScheduleRepository.overlapping``
        lists one person's; the scheduler acts on everyone's.)"""
        base = (
            select(Meeting, MeetingSchedule)
            .join(MeetingSchedule, MeetingSchedule.meeting_id == Meeting.id)
            .where(Meeting.ended_at.is_(None))
            .where(MeetingSchedule.cancelled_at.is_(None))
            .where(MeetingSchedule.starts_at < _utc(window_end))
            .where(
                or_(
                    MeetingSchedule.ends_at.is_(None),
                    MeetingSchedule.ends_at > _utc(window_start),
                )
            )
            .order_by(MeetingSchedule.starts_at, Meeting.id)
            .limit(self._due_page)
        )
        found: list[tuple[MeetingView, ScheduleView]] = []
        pages = 0
        async with self._db.session() as session:
            query = base
            while True:
                rows = (await session.execute(query)).all()
                pages += 1
                found.extend((MeetingView.of(m), ScheduleView.of(s)) for m, s in rows)
                if len(rows) < self._due_page:
                    break
                last_start, last_id = rows[-1][1].starts_at, rows[-1][0].id
                query = base.where(
                    or_(
                        MeetingSchedule.starts_at > last_start,
                        and_(MeetingSchedule.starts_at == last_start, Meeting.id > last_id),
                    )
                )
        if len(found) > self._due_page:
            logger.warning("%d scheduled meetings are due in one pass, more than %d: read in "
                           "%d pages", len(found), self._due_page, pages)  # fmt: skip
        return found
