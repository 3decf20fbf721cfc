"""A checked ``Schedule`` as the store keeps it, and back: wall-clock times in the meeting's
zone (the zone beside them, so that DST stays the library's business), and the UTC bounds
of all its occurrences for listings. Shared by the routes, the scheduler and the sync."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Event, vRecur

from talkplatform_agents.calendar.schedule import Override, Schedule, series_events
from talkplatform_agents.store import ScheduleRecord, ScheduleView

__all__ = ["goes_on", "record_of", "schedule_of"]

# The most occurrences a COUNT series is expanded to for its ``ends_at`` (rules.py allows
# no more); a longer one is stored open (None).
MAX_COUNTED = 1000
# Slack on a series' ``ends_at``: its occurrences' lengths are wall-clock lengths (a DST
# change moves an end by an hour), so the bound is kept generous rather than exact.
ENDS_SLACK = dt.timedelta(days=1)
# How many occurrences ``goes_on`` looks at, at most, before saying no.
_LOOKED_AT = 64


def record_of(
    schedule: Schedule, attendees: list[str] | tuple[str, ...], organizer: str | None
) -> ScheduleRecord:
    """What the store keeps of a checked schedule: wall-clock times in its zone, and the
    UTC bounds of all its occurrences, a series' end with a day of slack (``ends_at`` None: a
    series with no end)."""
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
        rule = vRecur.from_ical(schedule.rrule)
        until = rule.get("UNTIL")
        if until and isinstance(until[0], dt.datetime):
            # UNTIL bounds the starts (rules.py writes it in UTC); an occurrence ends one
            # duration later, and an override may end later still.
            ends_at = max(latest, until[0].astimezone(dt.UTC) + schedule.duration) + ENDS_SLACK
        elif rule.get("COUNT"):
            last = _last_end(schedule)
            ends_at = None if last is None else max(latest, last) + ENDS_SLACK
        else:
            ends_at = None  # no end: expanded on each listing
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


def goes_on(schedule: Schedule, after: dt.datetime) -> bool:
    """Whether an occurrence of ``schedule`` that is not cancelled starts after ``after``
    (aware), however far ahead: the library's ``after``, no horizon."""
    if not schedule.recurring:
        return False
    moment = after.astimezone(dt.UTC)
    try:
        for component in itertools.islice(_query(schedule).after(after), _LOOKED_AT):
            if str(component.get("STATUS", "")).upper() == "CANCELLED":
                continue
            if _utc(component.get("DTSTART").dt) > moment:
                return True
    except Exception:  # the library's refusal (dateutil, near year 9999): nothing later
        return False
    return False


def _query(schedule: Schedule) -> Any:
    master, moved = series_events(schedule, "stored@talkplatform", "")
    calendar = Calendar()
    for event in [master, *moved]:
        calendar.add_component(event)
    return recurring_ical_events.of(calendar)


def _last_end(schedule: Schedule) -> dt.datetime | None:
    """The latest end (UTC) of a COUNT series' occurrences, or None beyond ``MAX_COUNTED``."""
    try:
        found: list[Event] = list(itertools.islice(_query(schedule).all(), MAX_COUNTED + 1))
    except Exception:
        return None
    if not found or len(found) > MAX_COUNTED:
        return None
    return max(_utc(e.get("DTEND").dt) for e in found)


def _utc(moment: Any) -> dt.datetime:
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC)
    return dt.datetime.combine(moment, dt.time(), dt.UTC)  # a date: not written here


def _local(moment: dt.datetime) -> str:
    # The zone is stored beside it; a naive time in a DST fold is its first instance,
    # which is the only one the core accepts (localtime.py).
    return moment.replace(tzinfo=None).isoformat()
