"""Recordings of meeting rooms: their state lives here, not in the recorder bot, so that a
recorder that dies and is replaced carries on the same recording in a new part.

A recording's status moves::

    starting ──► active ──► stopping ──► complete | failed
        │           └──────────────────► complete | failed
        └──► aborted (stopped before any recorder began), or failed

A meeting has at most one running recording (starting, active or stopping), whichever
service process starts it: the row carries the meeting's id in a unique column while it
runs, so a second insert fails in the database itself, on SQLite and MariaDB alike. Every
other change is a conditional update on the row's version, so two writers (a host's stop,
the recorder's own end) never overwrite each other: the first outcome stands.

Who calls what: the service ``start``s (then dispatches the recorder) and
``request_stop``s; the recorder ``mark_active``s when it joins (which hands it its part
number), ``check_in``s every few seconds (which tells it of a stop request), and
``finish``es.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import Conflict, NotFound
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Meeting, Recording
from talkplatform_agents.store.timeutil import aware

__all__ = ["RecordingRepository", "RecordingStatus", "RecordingView"]

MAX_ERROR = 1000  # characters of a failure's reason the store keeps
# Conditional updates that lose to a concurrent change read the row again and retry; a
# row changing this often is a bug somewhere.
_ATTEMPTS = 20


class RecordingStatus(enum.StrEnum):
    STARTING = "starting"  # asked for; the recorder is on its way
    ACTIVE = "active"  # a recorder writes it
    STOPPING = "stopping"  # a stop was asked for; the recorder finalises its files
    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"  # stopped before any recorder began: no files

    @property
    def running(self) -> bool:
        return self in _RUNNING


_RUNNING = frozenset({RecordingStatus.STARTING, RecordingStatus.ACTIVE, RecordingStatus.STOPPING})


@dataclass(frozen=True)
class RecordingView:
    id: str
    meeting_id: str
    status: RecordingStatus
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    seen_at: dt.datetime | None  # the recorder's last check-in
    error: str | None
    parts: int  # recorder sessions so far; after ``mark_active``, the caller's part number
    version: int

    @classmethod
    def of(cls, row: Recording) -> RecordingView:
        return cls(
            id=row.id,
            meeting_id=row.meeting_id,
            status=RecordingStatus(row.status),
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clip(error: str | None) -> str | None:
    if error is None or len(error) <= MAX_ERROR:
        return error
    return error[: MAX_ERROR - 3] + "..."


# A change to a recording as ``RecordingView`` field values (plus ``running_meeting``), or
# None for none: decided on the row as read, written only if the row is still that version.
_Change = Callable[[RecordingView], dict[str, Any] | None]


class RecordingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- the service's side -------------------------------------------------------------

    async def start(self, meeting_id: str, requested_by: str) -> RecordingView:
        """A new recording of the meeting, ``starting``. ``Conflict`` (with the running
        one's ``recordingId``) when one is running already; ``NotFound`` for no meeting."""
        row = Recording(
            id=uuid.uuid4().hex,
            meeting_id=meeting_id,
            status=RecordingStatus.STARTING.value,
            requested_by=requested_by,
            created_at=_now(),
            parts=0,
            version=1,
            running_meeting=meeting_id,
        )
        try:
            async with self._db.session() as session:
                if await session.get(Meeting, meeting_id) is None:
                    raise NotFound("meeting not found", meetingId=meeting_id)
                session.add(row)
        except IntegrityError:
            running = await self.running(meeting_id)
            if running is None:  # ended between the insert and this read: say so anyway
                message = "a recording of this meeting was running"
                raise Conflict(message, meetingId=meeting_id) from None
            raise Conflict(
                "a recording of this meeting is running already",
                meetingId=meeting_id,
                recordingId=running.id,
                status=running.status.value,
            ) from None
        return RecordingView.of(row)

    async def get(self, recording_id: str) -> RecordingView | None:
        async with self._db.session() as session:
            row = await session.get(Recording, recording_id)
            return RecordingView.of(row) if row else None

    async def of_meeting(self, meeting_id: str) -> list[RecordingView]:
        """The meeting's recordings, oldest first."""
        query = (
            select(Recording)
            .where(Recording.meeting_id == meeting_id)
            .order_by(Recording.created_at, Recording.id)
        )
        async with self._db.session() as session:
            return [RecordingView.of(row) for row in (await session.scalars(query)).all()]

    async def running(self, meeting_id: str) -> RecordingView | None:
        """The meeting's running recording (starting, active or stopping), if any."""
        query = select(Recording).where(Recording.running_meeting == meeting_id)
        async with self._db.session() as session:
            row = (await session.scalars(query)).first()
            return RecordingView.of(row) if row else None

    async def request_stop(
        self, recording_id: str, *, silent_since: dt.datetime | None = None
    ) -> RecordingView | None:
        """A host asks the recording to stop: an active one becomes ``stopping`` (its
        recorder finalises its files, then ``finish``es); one no recorder began yet ends
        ``aborted``. A stopping one whose recorder has not checked in since
        ``silent_since`` is taken for abandoned (its recorder died, and none replaced it)
        and ends ``failed``. An ended one is left as it is. None: no such recording."""

        def change(current: RecordingView) -> dict[str, Any] | None:
            status = current.status
            if status is RecordingStatus.STARTING:
                return _ended(RecordingStatus.ABORTED, None)
            if status is RecordingStatus.ACTIVE:
                return {"status": RecordingStatus.STOPPING}
            if status is RecordingStatus.STOPPING and silent_since is not None:
                last = current.seen_at or current.started_at or current.created_at
                if last < silent_since:
                    return _ended(RecordingStatus.FAILED, "the recorder stopped checking in")
            return None

        return await self._change(recording_id, change)

    # -- the recorder's side ------------------------------------------------------------

    async def mark_active(self, recording_id: str) -> RecordingView | None:
        """A recorder begins (or, replacing one that died, carries on) the recording: it
        becomes ``active`` and the returned view's ``parts`` is this recorder's part number
        (1, 2, ...; each caller gets its own). A recording in another status is returned
        unchanged: ``stopping`` (finalise what earlier parts left, then ``finish``) or
        ended (leave). None: no such recording."""
        now = _now()

        def change(current: RecordingView) -> dict[str, Any] | None:
            if current.status not in (RecordingStatus.STARTING, RecordingStatus.ACTIVE):
                return None
            return {
                "status": RecordingStatus.ACTIVE,
                "parts": current.parts + 1,
                "started_at": current.started_at or now,
                "seen_at": now,
            }

        return await self._change(recording_id, change)

    async def check_in(self, recording_id: str) -> RecordingView | None:
        """The recorder is alive; the recording as it stands (a ``stopping`` status is the
        host's stop request). Call it every few seconds while recording."""
        statement = (
            update(Recording)
            .where(Recording.id == recording_id, Recording.running_meeting.is_not(None))
            .values(seen_at=_now())
            .execution_options(synchronize_session=False)
        )
        async with self._db.session() as session:
            await session.execute(statement)
            row = await session.get(Recording, recording_id)
            return RecordingView.of(row) if row else None

    async def finish(
        self, recording_id: str, status: RecordingStatus, error: str | None = None
    ) -> RecordingView | None:
        """End a running recording ``complete`` or ``failed`` (with ``error``, the reason).
        An ended one keeps its first outcome (returned unchanged). None: no such one."""
        if status not in (RecordingStatus.COMPLETE, RecordingStatus.FAILED):
            raise ValueError(f"a recording finishes complete or failed, not {status.value}")

        def change(current: RecordingView) -> dict[str, Any] | None:
            return _ended(status, error) if current.status.running else None

        return await self._change(recording_id, change)

    # -- one conditional update ---------------------------------------------------------

    async def _change(self, recording_id: str, change: _Change) -> RecordingView | None:
        for _ in range(_ATTEMPTS):
            current = await self.get(recording_id)
            if current is None:
                return None
            values = change(current)
            if values is None:
                return current
            values["version"] = current.version + 1
            statement = (
                update(Recording)
                .where(Recording.id == recording_id, Recording.version == current.version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            async with self._db.session() as session:
                result = await session.execute(statement)
            if getattr(result, "rowcount", 0):
                values.pop("running_meeting", None)
                return dataclasses.replace(current, **values)
        raise Conflict("the recording changed too often to update; try again",
                       recordingId=recording_id)  # fmt: skip


def _ended(status: RecordingStatus, error: str | None) -> dict[str, Any]:
    return {"status": status, "ended_at": _now(), "error": _clip(error), "running_meeting": None}
