"""When a meeting happens: a start and end in an IANA zone, maybe an RRULE, and the
occurrences that were cancelled (EXDATE) or moved (an override, RFC 5545's RECURRENCE-ID).

``occurrences`` expands a schedule with ``recurring-ical-events`` over the same VEVENTs an
invitation carries (``series_events``, used by ``ics.py`` too), so what the platform lists
is what a calendar client shows, and the RRULE semantics are the library's, not ours.

A cancelled override and an EXDATE both take an occurrence out of the series; the
difference is only what the caller wants to remember (an override may also have moved the
occurrence before it was cancelled). Both become EXDATEs in the VEVENTs: every client
understands EXDATE, and it keeps a cancelled instance out of an expansion by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Event, vRecur

from talkplatform_agents.calendar.localtime import local_time, zone
from talkplatform_agents.calendar.rules import (
    MAX_COUNT,
    MAX_PER_YEAR,
    first_occurrence,
    normalise_rule,
)
from talkplatform_agents.errors import Invalid

__all__ = [
    "MAX_TITLE",
    "MAX_WINDOW",
    "Occurrence",
    "Override",
    "Schedule",
    "occurrences",
    "series_events",
    "wall_end",
]

# A listing covers at most this span: with MAX_PER_YEAR a series yields at most ~1100
# occurrences per query, whatever the caller asks for.
MAX_WINDOW = timedelta(days=400)
MAX_TITLE = 200
_YEAR = timedelta(days=366)
# Expansions reach this far past both ends of what they look for: the library compares
# times by wall clock, so an occurrence in a DST gap (02:30 on a spring-forward day) or a
# window given in another zone can fall just outside a window cut to the instant. What it
# returns is then kept or matched by UTC keys.
_SLACK = timedelta(days=1)
# The UID of the VEVENTs ``occurrences`` expands; it never leaves this module.
_EXPANSION_UID = "expansion@talkplatform.invalid"


@dataclass(frozen=True)
class Override:
    """One occurrence of a series moved, retitled or cancelled. ``recurrence_id`` is the
    occurrence's original start (RFC 5545's RECURRENCE-ID); ``title`` ``None`` keeps the
    meeting's title."""

    recurrence_id: datetime
    start: datetime
    end: datetime
    title: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class Occurrence:
    """One meeting on the calendar, in the meeting's zone. ``recurrence_id`` is its
    original start (the key for cancelling or moving it); ``start`` differs from it only
    when an override moved it."""

    recurrence_id: datetime
    start: datetime
    end: datetime
    title_override: str | None = None


@dataclass(frozen=True)
class Schedule:
    """A meeting's time: aware ``start`` and ``end`` in ``timezone`` (IANA), an optional
    RRULE value (``FREQ=WEEKLY;BYDAY=MO;COUNT=10``; UNTIL in UTC), the cancelled
    occurrences' original starts and the overrides, each sorted.

    Build it with ``Schedule.parse`` (which checks everything) and change it with
    ``with_exdate``/``with_override``; the plain constructor trusts its arguments (a row
    the store saved after ``parse``)."""

    start: datetime
    end: datetime
    timezone: str
    rrule: str | None = None
    exdates: tuple[datetime, ...] = ()
    overrides: tuple[Override, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def duration(self) -> timedelta:
        # In UTC: Python subtracts same-zone datetimes by wall clock, which is an hour off
        # for a meeting across a DST change.
        return _key(self.end) - _key(self.start)

    @property
    def wall_duration(self) -> timedelta:
        """Each occurrence's length on the wall clock (DTEND - DTSTART in the zone): what
        the expansion gives every occurrence, so one across a DST change is an hour longer
        or shorter in real time (``wall_end``)."""
        return self.end.replace(tzinfo=None) - self.start.replace(tzinfo=None)

    @property
    def recurring(self) -> bool:
        return self.rrule is not None

    @classmethod
    def parse(
        cls,
        start: str | datetime,
        end: str | datetime,
        timezone: str,
        recurrence: str | None = None,
        *,
        exdates: Sequence[str | datetime] = (),
        overrides: Sequence[Override] = (),
        strict: bool = True,
    ) -> Schedule:
        """A checked schedule, or ``Invalid`` saying what is wrong with which field.

        Times are ISO 8601 text or datetimes; without an offset they are wall-clock times
        in ``timezone`` (``localtime.py`` says how DST gaps and folds are treated). An empty
        ``recurrence`` means a single meeting. ``strict`` refuses EXDATEs and overrides that
        match no occurrence of the series (a typo in an API call); calendars from
        elsewhere keep stale ones, so ``read_events`` passes ``strict=False`` and
        leaves their meaning to the expansion library."""
        tz = zone(timezone)
        first = local_time(start, tz, field="start")
        last = local_time(end, tz, field="end")
        if _key(last) <= _key(first):
            raise Invalid(
                f"end {last:%Y-%m-%dT%H:%M} is not after the start {first:%Y-%m-%dT%H:%M}",
                field="end",
            )
        rule = recurrence.strip() if isinstance(recurrence, str) else recurrence
        rrule = normalise_rule(rule, first, tz) if rule else None
        schedule = cls(first, last, tz.key, rrule)
        if rrule is not None:
            _check_first(schedule, rrule, strict=strict)
            _check_density(schedule)
        return schedule._with(exdates, overrides, strict=strict)

    def with_exdate(self, recurrence_id: str | datetime) -> Schedule:
        """This schedule with the occurrence that started at ``recurrence_id`` cancelled
        (an override of it, if any, is dropped)."""
        rid = local_time(recurrence_id, self.zone, field="recurrence_id", label="occurrence")
        kept = [o for o in self.overrides if _key(o.recurrence_id) != _key(rid)]
        return self._with([*self.exdates, rid], kept, strict=True)

    def with_override(self, override: Override) -> Schedule:
        """This schedule with ``override`` in place of any earlier one for its occurrence."""
        rid = local_time(
            override.recurrence_id, self.zone, field="recurrence_id", label="occurrence"
        )
        kept = [o for o in self.overrides if _key(o.recurrence_id) != _key(rid)]
        return self._with(self.exdates, [*kept, override], strict=True)

    def _with(
        self, exdates: Iterable[str | datetime], overrides: Iterable[Override], *, strict: bool
    ) -> Schedule:
        tz = self.zone
        exdates, overrides = list(exdates), list(overrides)
        if not self.recurring and (exdates or overrides):
            raise Invalid(
                "only a recurring meeting has occurrences to cancel or move", field="recurrence"
            )
        if len(exdates) > MAX_COUNT or len(overrides) > MAX_COUNT:
            raise Invalid(
                f"a series has at most {MAX_COUNT} cancelled and {MAX_COUNT} moved occurrences",
                field="exdates",
            )
        cancelled = {
            _key(d): d
            for d in (
                local_time(d, tz, field="exdates", label="cancelled occurrence") for d in exdates
            )
        }
        moved: dict[datetime, Override] = {}
        for override in overrides:
            checked = _checked_override(override, tz)
            key = _key(checked.recurrence_id)
            if not strict and key in cancelled:
                continue  # other calendars send both; the EXDATE wins, as in most clients
            if key in moved or key in cancelled:
                raise Invalid(
                    f"the occurrence at {checked.recurrence_id:%Y-%m-%dT%H:%M} is changed twice",
                    field="overrides",
                )
            moved[key] = checked
        schedule = replace(
            self,
            exdates=tuple(sorted(cancelled.values(), key=_key)),
            overrides=tuple(sorted(moved.values(), key=_override_order)),
        )
        if strict:
            _check_exist(
                schedule, [*cancelled.values(), *(o.recurrence_id for o in moved.values())]
            )
        return schedule


def occurrences(
    schedule: Schedule, window_start: datetime, window_end: datetime
) -> list[Occurrence]:
    """The schedule's occurrences that overlap [``window_start``, ``window_end``) (aware
    datetimes, at most ``MAX_WINDOW`` apart), cancelled ones left out, sorted by start."""
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise Invalid("a window needs times with a UTC offset", field="from")
    if _key(window_end) <= _key(window_start):
        raise Invalid("the window's end is not after its start", field="to")
    if _key(window_end) - _key(window_start) > MAX_WINDOW:
        raise Invalid(f"a window spans at most {MAX_WINDOW.days} days", field="to")
    tz = schedule.zone
    master, moved = series_events(schedule, _EXPANSION_UID, "")
    titles = {_key(o.recurrence_id): o.title for o in schedule.overrides}
    found: list[Occurrence] = []
    # Both ends in the series' zone: the library compares them with its own times.
    span = (window_start.astimezone(tz) - _SLACK, window_end.astimezone(tz) + _SLACK)
    for component in _expand([master, *moved], *span):
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start, end = _start(component).astimezone(tz), _end(component).astimezone(tz)
        if not (_key(end) > _key(window_start) and _key(start) < _key(window_end)):
            continue
        rid = component.get("RECURRENCE-ID")
        original = rid.dt.astimezone(tz) if rid is not None else start
        found.append(Occurrence(original, start, end, titles.get(_key(original))))
    found.sort(key=lambda o: (_key(o.start), _key(o.recurrence_id)))
    return found


def series_events(schedule: Schedule, uid: str, summary: str) -> tuple[Event, list[Event]]:
    """The VEVENTs of ``schedule``: the master (DTSTART, DTEND, RRULE, EXDATE) and one per
    override that was not cancelled (RECURRENCE-ID), with ``uid`` and ``summary`` (an
    override's own title replaces it). Callers add the properties they need."""
    master = Event()
    master.add("UID", uid)
    master.add("SUMMARY", summary)
    master.add("DTSTART", schedule.start)
    master.add("DTEND", schedule.end)
    if schedule.rrule is not None:
        master.add("RRULE", vRecur.from_ical(schedule.rrule))
    removed = sorted(
        [*schedule.exdates, *(o.recurrence_id for o in schedule.overrides if o.cancelled)]
    )
    if removed:
        master.add("EXDATE", removed)
    moved: list[Event] = []
    for override in schedule.overrides:
        if override.cancelled:
            continue
        event = Event()
        event.add("UID", uid)
        event.add("RECURRENCE-ID", override.recurrence_id)
        event.add("SUMMARY", override.title if override.title is not None else summary)
        event.add("DTSTART", override.start)
        event.add("DTEND", override.end)
        moved.append(event)
    return master, moved


def wall_end(start: datetime, length: timedelta) -> datetime:
    """``start`` plus ``length`` on the wall clock of ``start``'s zone, as the expansion
    places an occurrence's end (``Schedule.wall_duration``); an end in a DST gap is shown
    as the instant it names (the library's reading)."""
    return (start + length).astimezone(UTC).astimezone(start.tzinfo)


def _expand(events: Sequence[Event], start: datetime, end: datetime) -> list[Event]:
    calendar = Calendar()
    for event in events:
        calendar.add_component(event)
    try:
        return cast("list[Event]", recurring_ical_events.of(calendar).between(start, end))
    except Exception as exc:
        # The library's boundary: every rule that reaches it passed rules.py, so whatever
        # it still refuses (dateutil's ValueError, an OverflowError near year 9999) is a
        # property of the input, reported as such rather than as a server error.
        raise Invalid(f"the schedule cannot be expanded: {exc}", field="recurrence") from None


def _check_first(schedule: Schedule, rrule: str, *, strict: bool) -> None:
    # RFC 5545 leaves a series undefined when DTSTART is not one of its rule's own
    # occurrences (a BYDAY=MO series starting on a Wednesday), and clients differ on it.
    # Calendars from elsewhere get the library's reading (DTSTART counts), but a rule with
    # no occurrence at all is refused everywhere: it would cost its CPU on every listing.
    try:
        first = first_occurrence(rrule, schedule.start)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Invalid(f"recurrence {rrule!r} is not usable: {exc}", field="recurrence") from None
    if first is None:
        raise Invalid(f"recurrence {rrule!r} is not usable: no date matches it", field="recurrence")
    if strict and _key(first) != _key(schedule.start):
        raise Invalid(
            f"the start {schedule.start:%Y-%m-%dT%H:%M} ({schedule.start:%A}) is not an "
            f"occurrence of {rrule}: start the series on its first occurrence, "
            f"{first:%Y-%m-%dT%H:%M} ({first:%A})",
            field="start",
        )


def _check_density(schedule: Schedule) -> None:
    # Counted by the library, which knows the whole rule set; rules.py's per-day bound
    # keeps this count cheap (at most 366 x 24 occurrences).
    master, _ = series_events(schedule, _EXPANSION_UID, "")
    if len(_expand([master], schedule.start, schedule.start + _YEAR)) > MAX_PER_YEAR:
        raise Invalid(
            f"recurrence {schedule.rrule!r} is not usable: it has more than "
            f"{MAX_PER_YEAR} occurrences in its first year",
            field="recurrence",
        )


def _check_exist(schedule: Schedule, originals: Sequence[datetime]) -> None:
    bare = replace(schedule, exdates=(), overrides=())
    master, _ = series_events(bare, _EXPANSION_UID, "")
    pending = sorted(originals, key=_key)
    # One expansion per window of MAX_WINDOW rather than one per date: a thousand EXDATEs
    # cost a few listings, not a thousand.
    while pending:
        first = pending[0]
        group = [d for d in pending if _key(d) - _key(first) <= MAX_WINDOW]
        pending = pending[len(group) :]
        found = _expand([master], first - _SLACK, group[-1] + _SLACK)
        starts = {_key(_start(e)) for e in found}
        for original in group:
            if _key(original) not in starts:
                raise Invalid(
                    f"{original:%Y-%m-%dT%H:%M} is not an occurrence of the series",
                    field="recurrence_id",
                )


def _checked_override(override: Override, tz: ZoneInfo) -> Override:
    rid = local_time(override.recurrence_id, tz, field="overrides", label="moved occurrence")
    start = local_time(override.start, tz, field="overrides", label="new start")
    end = local_time(override.end, tz, field="overrides", label="new end")
    if _key(end) <= _key(start):
        raise Invalid(
            f"the moved occurrence's end {end:%Y-%m-%dT%H:%M} is not after its "
            f"start {start:%Y-%m-%dT%H:%M}",
            field="overrides",
        )
    title = override.title.strip() if override.title is not None else None
    if title is not None and not 1 <= len(title) <= MAX_TITLE:
        raise Invalid(f"an occurrence's title has 1 to {MAX_TITLE} characters", field="overrides")
    return Override(rid, start, end, title, bool(override.cancelled))


def _start(event: Event) -> datetime:
    # Our VEVENTs are timed, so the library's occurrences are too (never a date).
    value: Any = event.start
    return cast("datetime", value)


def _end(event: Event) -> datetime:
    value: Any = event.end
    return cast("datetime", value)


def _key(moment: datetime) -> datetime:
    # PEP 495 makes a time in a fold unequal to every time in another zone, and same-zone
    # comparison ignores the fold; UTC has no folds, so keys and orders live there.
    return moment.astimezone(UTC)


def _override_order(override: Override) -> datetime:
    return _key(override.recurrence_id)
