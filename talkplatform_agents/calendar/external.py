"""Events from calendars elsewhere (a CalDAV collection), read defensively.

``read_events`` turns one iCalendar object into ``ExternalEvent``s, or raises ``Invalid``
with a message saying what is wrong: never another exception type, whatever the bytes.
CalDAV stores one UID per resource (RFC 4791 §4.1), so the events of one object stand or
fall together; the sync logs a refused resource and goes on with the next.

What is refused, besides malformed data: all-day events and floating times (a meeting
needs an instant), zones that are not IANA zones (nor mapped to one by ``icalendar``, which
knows Windows names and ``/vendor/Zone`` TZIDs), RDATE, more than one RRULE, RANGE on a
RECURRENCE-ID, and a series of only changed occurrences. The schedule itself goes through
``Schedule.parse`` (with ``strict=False``: stale EXDATEs are common and harmless), so an
imported series obeys the same bounds as one created through the API.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vRecur
from icalendar.timezone.tzid import tzid_from_tzinfo

from talkplatform_agents.calendar.localtime import zone
from talkplatform_agents.calendar.schedule import Override, Schedule
from talkplatform_agents.errors import Invalid

__all__ = ["MAX_ICS_BYTES", "MAX_UID", "ExternalEvent", "join_meeting_id", "read_events"]

# A calendar object holding one meeting series is a few kilobytes.
MAX_ICS_BYTES = 1 << 20
# UIDs are unbounded in RFC 5545; the sync stores them as keys.
MAX_UID = 255
# A TalkPlatform join link: an http(s) URL whose path has /meeting/<id> (the web app's
# /app/meeting/<id>, or a shorter alias), the id as the service accepts it (service/web.py).
# Found token by token rather than by one regex over the text: a lazy URL pattern
# backtracks quadratically on a long run of "http://" (the text can be a megabyte).
_SEPARATORS = re.compile(r"[\s<>\"'()\[\]]+")
_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_MEETING_PATH = re.compile(r"/meeting/([A-Za-z0-9_-]{1,64})(?![A-Za-z0-9_-])")


@dataclass(frozen=True)
class ExternalEvent:
    """One event series (or single event) of another calendar. ``join_meeting_id`` is the
    meeting of the first TalkPlatform join link in URL, LOCATION or DESCRIPTION;
    ``cancelled`` is STATUS:CANCELLED on the event itself."""

    uid: str
    summary: str
    description: str
    url: str | None
    location: str
    categories: tuple[str, ...]
    sequence: int
    cancelled: bool
    schedule: Schedule
    join_meeting_id: str | None


def read_events(data: bytes, *, join_base: str | None = None) -> list[ExternalEvent]:
    """The VEVENTs of one iCalendar object, one ``ExternalEvent`` per UID, in file order.

    ``join_base`` (``https://talk.example.com``) limits join links to that site; without
    it any ``.../meeting/<id>`` link counts."""
    if not isinstance(data, bytes | bytearray):
        raise Invalid("calendar data must be bytes", field="ics")
    if len(data) > MAX_ICS_BYTES:
        raise Invalid(f"calendar data is larger than {MAX_ICS_BYTES} bytes", field="ics")
    try:
        return _read(bytes(data), join_base)
    except Invalid:
        raise
    except Exception as exc:
        # icalendar raises ValueError subclasses, KeyError, IndexError, TypeError...
        # depending on where the data breaks; to a caller they all mean the same.
        raise Invalid(f"malformed calendar data: {_short(exc)}", field="ics") from None


def join_meeting_id(text: str, join_base: str | None = None) -> str | None:
    """The meeting id of the first TalkPlatform join link in ``text``, if any."""
    base = join_base.rstrip("/").lower() + "/" if join_base else None
    for token in _SEPARATORS.split(text):
        scheme = _SCHEME.search(token)
        if scheme is None:
            continue
        url = token[scheme.start() :]
        found = _MEETING_PATH.search(url)
        # In the path only: "?next=/meeting/x" is another page's parameter.
        if found is None or any(c in url[: found.start()] for c in "?#"):
            continue
        if base is None or url.lower().startswith(base):
            return found.group(1)
    return None


def _read(data: bytes, join_base: str | None) -> list[ExternalEvent]:
    if not data.strip():
        raise Invalid("calendar data is empty", field="ics")
    calendar = Calendar.from_ical(data)
    if not isinstance(calendar, Calendar) or calendar.name != "VCALENDAR":
        raise Invalid("calendar data is not a VCALENDAR", field="ics")
    by_uid: dict[str, list[Event]] = defaultdict(list)
    for event in calendar.events:
        uid = str(event.get("UID", "")).strip()
        if not uid:
            raise Invalid("an event has no UID", field="ics")
        if len(uid) > MAX_UID:
            raise Invalid(f"an event's UID is longer than {MAX_UID} characters", field="ics")
        by_uid[uid].append(event)
    return [_event(uid, events, join_base) for uid, events in by_uid.items()]


def _event(uid: str, events: list[Event], join_base: str | None) -> ExternalEvent:
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    if len(masters) != 1:
        why = "has no series, only changed occurrences" if not masters else "is given twice"
        raise Invalid(f"event {uid!r} {why}", field="ics", uid=uid)
    master = masters[0]
    if "RDATE" in master:
        raise Invalid(f"event {uid!r} uses RDATE, which is not supported", field="ics", uid=uid)
    rules = master.get("RRULE")
    if isinstance(rules, list):
        raise Invalid(f"event {uid!r} has more than one RRULE", field="ics", uid=uid)
    start, end = _times(master, uid)
    summary = _str(master.get("SUMMARY"))
    overrides = [_override(e, uid, summary) for e in events if e is not master]
    # A broken RRULE is kept as its raw text (vBroken): Schedule.parse says what is wrong.
    rule = _rule_text(rules)
    zone_name = _zone_name(start, uid)
    try:
        schedule = Schedule.parse(
            start,
            end,
            zone_name,
            rule,
            exdates=[_exdate(d, start) for d in master.exdates],
            overrides=overrides,
            strict=False,
        )
    except Invalid as exc:
        raise Invalid(f"event {uid!r}: {exc.message}", **{**exc.context, "uid": uid}) from None
    description, location = _str(master.get("DESCRIPTION")), _str(master.get("LOCATION"))
    url = _str(master.get("URL")) or None
    meeting = None
    for text in (url or "", location, description):
        meeting = meeting or join_meeting_id(text, join_base)
    return ExternalEvent(
        uid=uid,
        summary=summary,
        description=description,
        url=url,
        location=location,
        categories=tuple(str(c) for c in master.categories),
        sequence=_sequence(master),
        cancelled=_str(master.get("STATUS")).upper() == "CANCELLED",
        schedule=schedule,
        join_meeting_id=meeting,
    )


def _override(event: Event, uid: str, series_title: str) -> Override:
    rid_property: Any = event["RECURRENCE-ID"]
    if str(rid_property.params.get("RANGE", "")).upper() == "THISANDFUTURE":
        raise Invalid(
            f"event {uid!r} changes a range of occurrences (RANGE), which is not supported",
            field="ics",
            uid=uid,
        )
    rid = rid_property.dt
    if not isinstance(rid, datetime):
        raise Invalid(f"event {uid!r} has an all-day RECURRENCE-ID", field="ics", uid=uid)
    start, end = _times(event, uid)
    title = _str(event.get("SUMMARY")) or None
    return Override(
        rid,
        start,
        end,
        None if title == series_title else title,
        _str(event.get("STATUS")).upper() == "CANCELLED",
    )


def _times(event: Event, uid: str) -> tuple[datetime, datetime]:
    if "DTSTART" not in event:
        raise Invalid(f"event {uid!r} has no DTSTART", field="ics", uid=uid)
    start: Any = event.start
    tzid = event["DTSTART"].params.get("TZID")
    if isinstance(start, datetime) and start.tzinfo is None and tzid:
        # icalendar leaves a time naive when it knows neither the TZID nor a VTIMEZONE.
        raise Invalid(
            f"event {uid!r} uses time zone {tzid!r}, which is unknown", field="ics", uid=uid
        )
    if not isinstance(start, datetime):
        raise Invalid(f"event {uid!r} is an all-day event, not a meeting", field="ics", uid=uid)
    if start.tzinfo is None:
        raise Invalid(f"event {uid!r} has a floating time (no time zone)", field="ics", uid=uid)
    if "DTEND" not in event and "DURATION" not in event:
        raise Invalid(f"event {uid!r} has no DTEND or DURATION", field="ics", uid=uid)
    end: Any = event.end
    if not isinstance(end, datetime):
        raise Invalid(f"event {uid!r} has an all-day end", field="ics", uid=uid)
    if end.tzinfo is None:
        end = end.replace(tzinfo=start.tzinfo)
    return start, end


def _rule_text(rules: object) -> str | None:
    if rules is None:
        return None
    if isinstance(rules, vRecur):
        # vRecur.to_ical is not annotated in icalendar 7.
        encoded: bytes = rules.to_ical()  # type: ignore[no-untyped-call]
        return encoded.decode("ascii")
    return str(rules)


def _exdate(value: date | datetime, start: datetime) -> datetime:
    # RFC 5545 wants EXDATE's type to match DTSTART's, but some clients write a date for
    # a timed series: it means that day's occurrence.
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, start.time(), tzinfo=start.tzinfo)


def _zone_name(start: datetime, uid: str) -> str:
    tzinfo = start.tzinfo
    name = tzinfo.key if isinstance(tzinfo, ZoneInfo) else tzid_from_tzinfo(tzinfo)
    if name is None:
        raise Invalid(
            f"event {uid!r} uses a time zone that is not an IANA zone", field="ics", uid=uid
        )
    try:
        zone(name)
    except Invalid:
        raise Invalid(
            f"event {uid!r} uses time zone {name!r}, which is not an IANA zone",
            field="ics",
            uid=uid,
        ) from None
    return name


def _sequence(event: Event) -> int:
    value = event.get("SEQUENCE", 0)
    return int(value) if isinstance(value, int) else 0


def _str(value: object) -> str:
    return "" if value is None else str(value).strip()


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
