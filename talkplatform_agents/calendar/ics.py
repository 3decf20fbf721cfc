"""Invitations out (iCalendar, RFC 5545, with iTIP methods, RFC 5546) and events in.

``invitation`` writes what a calendar client needs to put a meeting in a person's
calendar and keep it current: the same UID every time (``meeting-<id>@<domain>``), a
SEQUENCE the caller raises on each change, METHOD:REQUEST for a new or changed meeting and
METHOD:CANCEL for a cancelled one (or one cancelled occurrence).

Attendees are identified by email (``mailto:``), the only calendar address that clients
can answer to. A user id without an email is left out of the invitation: no client could
deliver it or send a reply from it; that person sees the meeting in TalkPlatform itself.

``read_events`` (in ``external.py``, re-exported here) reads events from elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from icalendar import Alarm, Calendar, Event, vCalAddress, vUri

from talkplatform_agents.calendar.external import ExternalEvent, read_events
from talkplatform_agents.calendar.localtime import local_time
from talkplatform_agents.calendar.schedule import MAX_TITLE, Schedule, series_events, wall_end
from talkplatform_agents.errors import Invalid

__all__ = [
    "PRODID",
    "Attendee",
    "ExternalEvent",
    "InviteMeeting",
    "PhoneLine",
    "invitation",
    "meeting_uid",
    "read_events",
]

PRODID = "-//TalkPlatform//TalkPlatform Agents//EN"
_MEETING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# Deliberately plain: one @, no spaces, nothing that would end a URI or a content line.
_EMAIL = re.compile(r"[^@\s<>()\[\]\\,;:\"]{1,64}@[A-Za-z0-9.-]{1,253}")
_URL = re.compile(r"https?://[^\s<>\"\\^`{|}]{1,2000}")
# The VTIMEZONE lists the zone's changes this many years past the schedule's last date, so
# a client without the zone in its own database gets an open series' offsets right too.
_ZONE_YEARS_AFTER = 20


@dataclass(frozen=True)
class Attendee:
    """Someone invited: by ``email``, or by ``user_id`` alone (then not in the ICS)."""

    email: str | None = None
    user_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class PhoneLine:
    """How to join by phone: the numbers to dial, and the PIN to type (then ``#``)."""

    numbers: tuple[str, ...]
    pin: str


@dataclass(frozen=True)
class InviteMeeting:
    """What an invitation says. ``sequence`` is RFC 5545's SEQUENCE: the caller raises it
    on every change that attendees must see (time, series, cancellation); ``uid_domain``
    makes the UID globally unique (``meeting-<id>@<uid_domain>``)."""

    id: str
    title: str
    schedule: Schedule
    organizer_email: str
    join_url: str
    uid_domain: str
    organizer_name: str | None = None
    attendees: tuple[Attendee, ...] = ()
    sequence: int = 0
    description: str = ""
    alarm_before: timedelta = timedelta(minutes=10)
    phone: PhoneLine | None = None  # dial-in (UC-08), when the service has phones


def meeting_uid(meeting_id: str, domain: str) -> str:
    """The UID all invitations of one meeting share."""
    if not isinstance(meeting_id, str) or not _MEETING_ID.fullmatch(meeting_id):
        raise Invalid(f"meeting id {meeting_id!r} is not 1-64 letters, digits, _ or -", field="id")
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise Invalid(f"uid domain {domain!r} is not a host name", field="uid_domain")
    return f"meeting-{meeting_id}@{domain.lower()}"


def invitation(
    meeting: InviteMeeting,
    method: Literal["REQUEST", "CANCEL"],
    *,
    recurrence_id: str | datetime | None = None,
    now: datetime | None = None,
) -> bytes:
    """The meeting as an iTIP message: a VCALENDAR with METHOD ``method``.

    REQUEST: the series' VEVENT (RRULE, EXDATE for cancelled occurrences), one VEVENT per
    moved occurrence (RECURRENCE-ID), each with a VALARM ``alarm_before`` the start.
    CANCEL: the whole meeting with STATUS:CANCELLED, or, with ``recurrence_id`` (the
    original start), only that occurrence. ``now`` is the DTSTAMP (default: the clock)."""
    if method not in ("REQUEST", "CANCEL"):
        raise Invalid(f"method must be REQUEST or CANCEL, not {method!r}", field="method")
    uid = meeting_uid(meeting.id, meeting.uid_domain)
    title = _text(meeting.title, "title", MAX_TITLE)
    if not title:
        raise Invalid("a meeting needs a title", field="title")
    if not isinstance(meeting.join_url, str) or not _URL.fullmatch(meeting.join_url):
        raise Invalid("join_url must be an http(s) URL", field="join_url")
    if (
        isinstance(meeting.sequence, bool)
        or not isinstance(meeting.sequence, int)
        or not (0 <= meeting.sequence < 2**31)
    ):
        raise Invalid("sequence must be a whole number from 0", field="sequence")
    if not timedelta(0) <= meeting.alarm_before <= timedelta(days=7):
        raise Invalid("alarm_before must be between 0 and 7 days", field="alarm_before")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    schedule = meeting.schedule
    master, moved = series_events(schedule, uid, title)
    if method == "REQUEST":
        events = [master, *moved]
    elif recurrence_id is None:
        events = [master]
    else:
        events = [_cancelled_occurrence(schedule, recurrence_id, uid, title)]
    people = _people(meeting, method)
    for event in events:
        _describe(event, meeting, stamp, people, method)
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", method)
    for event in events:
        calendar.add_component(event)
    first, last = _span(schedule)
    # Inserted before the VEVENTs, covering every date the meeting uses (RFC 5545 asks
    # for a VTIMEZONE per TZID; UTC needs none).
    calendar.add_missing_timezones(first_date=first, last_date=last)
    return bytes(calendar.to_ical())


def _cancelled_occurrence(
    schedule: Schedule, recurrence_id: str | datetime, uid: str, title: str
) -> Event:
    if not schedule.recurring:
        raise Invalid("only a recurring meeting has occurrences to cancel", field="recurrence_id")
    rid = local_time(recurrence_id, schedule.zone, field="recurrence_id")
    # The occurrence as attendees have it: moved by an override, or at its original time.
    start, end = rid, wall_end(rid, schedule.wall_duration)
    for override in schedule.overrides:
        if override.recurrence_id.astimezone(UTC) == rid.astimezone(UTC):
            start, end = override.start, override.end
    event = Event()
    event.add("UID", uid)
    event.add("RECURRENCE-ID", rid)
    event.add("SUMMARY", title)
    event.add("DTSTART", start)
    event.add("DTEND", end)
    return event


def _people(meeting: InviteMeeting, method: str) -> tuple[vCalAddress, list[vCalAddress]]:
    organizer = vCalAddress(f"mailto:{_email(meeting.organizer_email, 'organizer_email')}")
    if meeting.organizer_name:
        organizer.params["CN"] = _param(meeting.organizer_name)
    attendees: list[vCalAddress] = []
    seen: set[str] = set()
    for person in meeting.attendees:
        if not person.email:
            continue  # a user id alone: see the module's docstring
        email = _email(person.email, "attendees")
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        address = vCalAddress(f"mailto:{email}")
        if person.name:
            address.params["CN"] = _param(person.name)
        address.params["CUTYPE"] = "INDIVIDUAL"
        address.params["ROLE"] = "REQ-PARTICIPANT"
        address.params["PARTSTAT"] = "NEEDS-ACTION"
        if method == "REQUEST":
            address.params["RSVP"] = "TRUE"
        attendees.append(address)
    return organizer, attendees


def _describe(
    event: Event,
    meeting: InviteMeeting,
    stamp: datetime,
    people: tuple[vCalAddress, list[vCalAddress]],
    method: str,
) -> None:
    organizer, attendees = people
    event.add("DTSTAMP", stamp)
    event.add("SEQUENCE", meeting.sequence)
    event.add("STATUS", "CONFIRMED" if method == "REQUEST" else "CANCELLED")
    event.add("TRANSP", "OPAQUE")
    intro = _text(meeting.description, "description", 10_000)
    join = f"Join the meeting: {meeting.join_url}"
    if meeting.phone is not None:
        numbers = ", ".join(meeting.phone.numbers)
        join += f"\nJoin by phone: {numbers}, then PIN {meeting.phone.pin}#"
    event.add("DESCRIPTION", f"{intro}\n\n{join}" if intro else join)
    if meeting.phone is not None and method == "REQUEST":
        # RFC 7986: clients that know CONFERENCE offer a "dial in" button; the tel: URI
        # dials, waits (",,"), and types the PIN.
        for number in meeting.phone.numbers:
            event.add(
                "CONFERENCE",
                vUri(f"tel:{number},,{meeting.phone.pin}%23"),
                parameters={"VALUE": "URI", "FEATURE": "PHONE", "LABEL": "Dial in"},
            )
    event.add("URL", meeting.join_url)
    # Many clients show LOCATION but not URL; a link there is clickable in most of them.
    event.add("LOCATION", meeting.join_url)
    event.add("ORGANIZER", organizer)
    for attendee in attendees:
        event.add("ATTENDEE", attendee)
    if method == "REQUEST":
        # RFC 5546 forbids VALARM in CANCEL; a REQUEST's alarm is a suggestion clients
        # may keep or drop.
        alarm = Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", f"{event.get('SUMMARY')} starts soon")
        alarm.add("TRIGGER", -meeting.alarm_before)
        event.add_component(alarm)


def _span(schedule: Schedule) -> tuple[date, date]:
    moments = [schedule.start, schedule.end, *schedule.exdates]
    for override in schedule.overrides:
        moments += [override.recurrence_id, override.start, override.end]
    first = min(moments).date() - timedelta(days=1)
    return first, date(max(moments).year + _ZONE_YEARS_AFTER, 1, 1)


def _email(value: str, field: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not _EMAIL.fullmatch(text):
        raise Invalid(f"{value!r} is not an email address", field=field)
    return text


def _text(value: str, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be text", field=field)
    text = value.strip()
    if len(text) > limit:
        raise Invalid(f"{field} is longer than {limit} characters", field=field)
    return text


def _param(value: str) -> str:
    # A parameter value cannot carry control characters or a double quote (RFC 5545
    # §3.1: it would end the quoted value); names keep everything else.
    cleaned = "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in value)
    return cleaned.replace('"', "'").strip()[:MAX_TITLE]
