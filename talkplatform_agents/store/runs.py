"""A bot's run over a meeting room, as the store tracks it: the lifecycle that recordings
and transcriptions share. The state lives here, not in the bot, so that a bot that dies and
is replaced carries on the same run (in a new part).

A run's status moves::

    starting ──► active ──► stopping ──► complete | failed
        │           └──────────────────► complete | failed
        └──► aborted (stopped before any bot began), or failed

A meeting has at most one run of each kind on (starting, active or stopping), whichever
service process starts it: the row carries the meeting's id in a unique column while it
runs, so a second insert fails in the database itself, on SQLite and MariaDB alike. Every
other change is a conditional update on the row's version, so two writers (a host's stop,
the bot's own end) never overwrite each other: the first outcome stands.

Who calls what: the service ``start``s (then dispatches the bot) and ``request_stop``s; the
bot ``mark_active``s when it joins (which hands it its part number), ``check_in``s every
few seconds (which tells it of a stop request), and ``finish``es.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import Conflict, NotFound
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import BotRun, Meeting
from talkplatform_agents.store.timeutil import aware

__all__ = ["MAX_ERROR", "RunKind", "RunRepository", "RunStatus", "RunView"]

MAX_ERROR = 1000  # characters of a failure's reason the store keeps
# Conditional updates that lose to a concurrent change read the row again and retry; a
# row changing this often is a bug somewhere.
_ATTEMPTS = 20


class RunStatus(enum.StrEnum):
    STARTING = "starting"  # asked for; the bot is on its way
    ACTIVE = "active"  # a bot works on it
    STOPPING = "stopping"  # a stop was asked for; the bot finishes its work
    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"  # stopped before any bot began: nothing made

    @property
    def running(self) -> bool:
        return self in _RUNNING


_RUNNING = frozenset({RunStatus.STARTING, RunStatus.ACTIVE, RunStatus.STOPPING})


@dataclass(frozen=True)
class RunView:
    id: str
    meeting_id: str
    status: RunStatus
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    seen_at: dt.datetime | None  # the bot's last check-in
    error: str | None
    parts: int  # bot sessions so far; after ``mark_active``, the caller's part number
    version: int

    @classmethod
    def of(cls, row: BotRun) -> Self:
        return cls(
            id=row.id,
            meeting_id=row.meeting_id,
            status=RunStatus(row.status),
            requested_by=row.requested_by,
            created_at=aware(row.created_at),
            started_at=aware(row.started_at) if row.started_at else None,
            ended_at=aware(row.ended_at) if row.ended_at else None,
            seen_at=aware(row.seen_at) if row.seen_at else None,
            error=row.error,
            parts=row.parts,
            version=row.version,
        )

    def to_json(self) -> dict[str, Any]:
        """As the API shows it (camelCase, ISO 8601 UTC times)."""

        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "meetingId": self.meeting_id,
            "status": self.status.value,
            "requestedBy": self.requested_by,
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "endedAt": iso(self.ended_at),
            "error": self.error,
            "parts": self.parts,
        }


@dataclass(frozen=True)
class RunKind:
    """How a kind of run names itself in errors."""

    noun: str  # "recording"
    bot: str  # "the recorder"
    id_key: str  # "recordingId": the run's id in an error's context


RowT = TypeVar("RowT", bound=BotRun)
ViewT = TypeVar("ViewT", bound=RunView)
# A change to a run as ``RunView`` field values (plus ``running_meeting``), or None for
# none: decided on the row as read, written only if the row is still that version.
_Change = Callable[[RunView], dict[str, Any] | None]


class RunRepository(Generic[RowT, ViewT]):
    """The runs of one kind: ``row`` is its table, ``view`` what it reads as."""

    def __init__(self, db: Database, row: type[RowT], view: type[ViewT], kind: RunKind) -> None:
        self._db = db
        self._row = row
        self._view = view
        self._kind = kind

    # -- the service's side -------------------------------------------------------------

    async def start(self, meeting_id: str, requested_by: str) -> ViewT:
        """A new run over the meeting, ``starting``. ``Conflict`` (with the running one's
        id) when one is on already; ``NotFound`` for no meeting."""
        row = self._row(
            id=uuid.uuid4().hex,
            meeting_id=meeting_id,
            status=RunStatus.STARTING.value,
            requested_by=requested_by,
            created_at=_now(),
            parts=0,
            version=1,
            running_meeting=meeting_id,
        )
        noun = self._kind.noun
        try:
            async with self._db.session() as session:
                if await session.get(Meeting, meeting_id) is None:
                    raise NotFound("meeting not found", meetingId=meeting_id)
                session.add(row)
        except IntegrityError:
            running = await self.running(meeting_id)
            if running is None:  # ended between the insert and this read: say so anyway
                message = f"a {noun} of this meeting was running"
                raise Conflict(message, meetingId=meeting_id) from None
            raise Conflict(
                f"a {noun} of this meeting is running already",
                meetingId=meeting_id,
                status=running.status.value,
                **{self._kind.id_key: running.id},
            ) from None
        return self._view.of(row)

    async def get(self, run_id: str) -> ViewT | None:
        async with self._db.session() as session:
            row = await session.get(self._row, run_id)
            return self._view.of(row) if row else None

    async def of_meeting(self, meeting_id: str) -> list[ViewT]:
        """The meeting's runs of this kind, oldest first."""
        table = self._row
        query = (
            select(table).where(table.meeting_id == meeting_id).order_by(table.created_at, table.id)
        )
        async with self._db.session() as session:
            return [self._view.of(row) for row in (await session.scalars(query)).all()]

    async def running(self, meeting_id: str) -> ViewT | None:
        """The meeting's running one (starting, active or stopping), if any."""
        query = select(self._row).where(self._row.running_meeting == meeting_id)
        async with self._db.session() as session:
            row = (await session.scalars(query)).first()
            return self._view.of(row) if row else None

    async def request_stop(
        self, run_id: str, *, silent_since: dt.datetime | None = None
    ) -> ViewT | None:
        """A host asks the run to stop: an active one becomes ``stopping`` (its bot
        finishes its work, then ``finish``es); one no bot began yet ends ``aborted``. A
        stopping one whose bot has not checked in since ``silent_since`` is taken for
        abandoned (its bot died, and none replaced it) and ends ``failed``. An ended one is
        left as it is. None: no such run."""
        silent = f"{self._kind.bot} stopped checking in"

        def change(current: RunView) -> dict[str, Any] | None:
            status = current.status
            if status is RunStatus.STARTING:
                return _ended(RunStatus.ABORTED, None)
            if status is RunStatus.ACTIVE:
                return {"status": RunStatus.STOPPING}
            if status is RunStatus.STOPPING and silent_since is not None:
                last = current.seen_at or current.started_at or current.created_at
                if last < silent_since:
                    return _ended(RunStatus.FAILED, silent)
            return None

        return await self._change(run_id, change)

    # -- the bot's side -----------------------------------------------------------------

    async def mark_active(self, run_id: str) -> ViewT | None:
        """A bot begins (or, replacing one that died, carries on) the run: it becomes
        ``active`` and the returned view's ``parts`` is this bot's part number (1, 2, ...;
        each caller gets its own). A run in another status is returned unchanged:
        ``stopping`` (finish what earlier parts left, then ``finish``) or ended (leave).
        None: no such run."""
        now = _now()

        def change(current: RunView) -> dict[str, Any] | None:
            if current.status not in (RunStatus.STARTING, RunStatus.ACTIVE):
                return None
            return {
                "status": RunStatus.ACTIVE,
                "parts": current.parts + 1,
                "started_at": current.started_at or now,
                "seen_at": now,
            }

        return await self._change(run_id, change)

    async def check_in(self, run_id: str) -> ViewT | None:
        """The bot is alive; the run as it stands (a ``stopping`` status is the host's stop
        request). Call it every few seconds while working."""
        table = self._row
        statement = (
            update(table)
            .where(table.id == run_id, table.running_meeting.is_not(None))
            .values(seen_at=_now())
            .execution_options(synchronize_session=False)
        )
        async with self._db.session() as session:
            await session.execute(statement)
            row = await session.get(table, run_id)
            return self._view.of(row) if row else None

    async def finish(
        self, run_id: str, status: RunStatus, error: str | None = None
    ) -> ViewT | None:
        """End a running run ``complete`` or ``failed`` (with ``error``, the reason). An
        ended one keeps its first outcome (returned unchanged). None: no such one."""
        if status not in (RunStatus.COMPLETE, RunStatus.FAILED):
            raise ValueError(f"a {self._kind.noun} finishes complete or failed, not {status.value}")

        def change(current: RunView) -> dict[str, Any] | None:
            return _ended(status, error) if current.status.running else None

        return await self._change(run_id, change)

    # -- one conditional update ---------------------------------------------------------

    async def _change(self, run_id: str, change: _Change) -> ViewT | None:
        table = self._row
        for _ in range(_ATTEMPTS):
            current = await self.get(run_id)
            if current is None:
                return None
            values = change(current)
            if values is None:
                return current
            values["version"] = current.version + 1
            statement = (
                update(table)
                .where(table.id == run_id, table.version == current.version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            async with self._db.session() as session:
                result = await session.execute(statement)
            if getattr(result, "rowcount", 0):
                values.pop("running_meeting", None)
                return dataclasses.replace(current, **values)
        raise Conflict(f"the {self._kind.noun} changed too often to update; try again",
                       **{self._kind.id_key: run_id})  # fmt: skip


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clip(error: str | None) -> str | None:
    if error is None or len(error) <= MAX_ERROR:
        return error
    return error[: MAX_ERROR - 3] + "..."


def _ended(status: RunStatus, error: str | None) -> dict[str, Any]:
    return {"status": status, "ended_at": _now(), "error": _clip(error), "running_meeting": None}
