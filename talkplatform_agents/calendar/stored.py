"""A checked ``Schedule`` as the store keeps it, and back: wall-clock times in the meeting's
zone (the zone beside them, so that DST stays the library's business), and the UTC bounds
of all its occurrences for listings. Shared by the routes, the scheduler and the sync."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import vRecur

from talkplatform_agents.calendar.schedule import Override, Schedule
from talkplatform_agents.store import ScheduleRecord, ScheduleView

__all__ = ["record_of", "schedule_of"]


def record_of(
    schedule: Schedule, attendees: list[str] | tuple[str, ...], organizer: str | None
) -> ScheduleRecord:
    """What the store keeps of a checked schedule: wall-clock times in its zone, and the
    UTC bounds of all its occurrences (``ends_at`` None: a series without UNTIL)."""
    overrides: list[dict[str, Any]] = [
        {
            "recurrenceId": _local(o.recurrence_id),
            "start": _local(o.start),
            "end": _local(o.end),
            "title": o.title,
            "cancelled": o.cancelled,
        }
        for o in schedule.overrides
    ]
    starts = [schedule.start, *(o.start for o in schedule.overrides)]
    ends = [schedule.end, *(o.end for o in schedule.overrides)]
    latest = max(e.astimezone(dt.UTC) for e in ends)
    ends_at: dt.datetime | None = latest
    if schedule.rrule is not None:
        until = vRecur.from_ical(schedule.rrule).get("UNTIL")
        if until and isinstance(until[0], dt.datetime):
            # UNTIL bounds the starts (rules.py writes it in UTC); an occurrence ends one
            # duration later, and an override may end later still.
            ends_at = max(latest, until[0].astimezone(dt.UTC) + schedule.duration)
        else:
            ends_at = None  # COUNT, or no end: expanded on each listing
    return ScheduleRecord(
        timezone=schedule.timezone,
        start_local=_local(schedule.start),
        end_local=_local(schedule.end),
        starts_at=min(s.astimezone(dt.UTC) for s in starts),
        ends_at=ends_at,
        rrule=schedule.rrule,
        exdates=tuple(_local(d) for d in schedule.exdates),
        overrides=tuple(overrides),
        attendees=tuple(attendees),
        organizer_email=organizer,
    )


def schedule_of(view: ScheduleView) -> Schedule:
    """The stored schedule as the core's ``Schedule`` (trusted: it was checked when saved)."""
    record = view.record
    tz = ZoneInfo(record.timezone)

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=tz)

    overrides = tuple(
        Override(
            at(o["recurrenceId"]),
            at(o["start"]),
            at(o["end"]),
            o.get("title"),
            bool(o.get("cancelled")),
        )
        for o in record.overrides
    )
    return Schedule(
        at(record.start_local),
        at(record.end_local),
        record.timezone,
        record.rrule,
        tuple(at(d) for d in record.exdates),
        overrides,
    )


def _local(moment: dt.datetime) -> str:
    # The zone is stored beside it; a naive time in a DST fold is its first instance,
    # which is the only one the core accepts (localtime.py).
    return moment.replace(tzinfo=None).isoformat()
