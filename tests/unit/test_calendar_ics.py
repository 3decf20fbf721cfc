"""Invitations (calendar/ics.py) read back by icalendar and expanded by
recurring-ical-events as a calendar client would, and events from other calendars
(calendar/external.py) read safely: good ones become schedules, bad ones ``Invalid``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from talkplatform_agents.calendar import (
    Attendee,
    InviteMeeting,
    Override,
    Schedule,
    invitation,
    join_meeting_id,
    meeting_uid,
    occurrences,
    read_events,
)
from talkplatform_agents.calendar.ics import PhoneLine
from talkplatform_agents.errors import Invalid

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
JOIN = "https://talk.example.com/app/meeting/weekly-sync_1"


def _schedule() -> Schedule:
    # Weekly on Mondays at 09:00 Berlin, across the 2026-03-29 change: one occurrence
    # cancelled, one moved and retitled, one cancelled through an override.
    return Schedule.parse(
        "2026-03-02T09:00",
        "2026-03-02T10:00",
        "Europe/Berlin",
        "FREQ=WEEKLY;BYDAY=MO;COUNT=12",
        exdates=["2026-03-16T09:00"],
        overrides=[
            Override(
                datetime(2026, 3, 23, 9),
                datetime(2026, 3, 24, 14),
                datetime(2026, 3, 24, 15),
                "Planning",
            ),
            Override(
                datetime(2026, 4, 13, 9),
                datetime(2026, 4, 13, 9),
                datetime(2026, 4, 13, 10),
                cancelled=True,
            ),
        ],
    )


def _meeting(**changes: Any) -> InviteMeeting:
    values: dict[str, Any] = {
        "id": "weekly-sync_1",
        "title": "Weekly sync",
        "schedule": _schedule(),
        "organizer_email": "olga@example.com",
        "organizer_name": "Olga Organiser",
        "join_url": JOIN,
        "uid_domain": "talk.example.com",
        "attendees": (
            Attendee(email="bob@example.com", name="Bob, the builder"),
            Attendee(email="carol@example.org"),
            Attendee(user_id="u-dave"),  # no email: not in the ICS
            Attendee(email="BOB@example.com"),  # the same address again
        ),
        "sequence": 3,
        "description": "Agenda: status; plans, risks",
    }
    values.update(changes)
    return InviteMeeting(**values)


def _events(calendar: Calendar) -> list[Any]:
    # Any: icalendar types a property lookup as the union of every value type.
    return list(calendar.walk("VEVENT"))


def test_a_request_says_everything_a_client_needs() -> None:
    data = invitation(_meeting(), "REQUEST", now=NOW)
    calendar = Calendar.from_ical(data)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["VERSION"]) == "2.0"
    assert "TalkPlatform" in str(calendar["PRODID"])
    # A VTIMEZONE for the zone every DTSTART names, covering the DST changes of 2026.
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert calendar.get_missing_tzids() == set()
    master, moved = _events(calendar)
    for event in (master, moved):
        assert str(event["UID"]) == "meeting-weekly-sync_1@talk.example.com"
        assert int(event["SEQUENCE"]) == 3
        assert event["DTSTAMP"].dt == NOW
        assert str(event["STATUS"]) == "CONFIRMED"
        assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert str(event["URL"]) == JOIN
        assert JOIN in str(event["DESCRIPTION"])
        assert "Agenda: status; plans, risks" in str(event["DESCRIPTION"])
        assert str(event["ORGANIZER"]) == "mailto:olga@example.com"
        assert event["ORGANIZER"].params["CN"] == "Olga Organiser"
        attendees = event["ATTENDEE"]
        assert [str(a) for a in attendees] == ["mailto:bob@example.com", "mailto:carol@example.org"]
        assert attendees[0].params["CN"] == "Bob, the builder"
        assert attendees[0].params["RSVP"] == "TRUE"
        assert attendees[0].params["PARTSTAT"] == "NEEDS-ACTION"
        [alarm] = event.walk("VALARM")
        assert str(alarm["ACTION"]) == "DISPLAY"
        assert alarm["TRIGGER"].dt == timedelta(minutes=-10)
        assert alarm["DESCRIPTION"]
    assert str(master["SUMMARY"]) == "Weekly sync"
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=12;BYDAY=MO"
    # The EXDATE and the cancelled override both became EXDATEs.
    assert sorted(master.exdates) == [
        datetime(2026, 3, 16, 9, tzinfo=BERLIN),
        datetime(2026, 4, 13, 9, tzinfo=BERLIN),
    ]
    assert moved["RECURRENCE-ID"].dt == datetime(2026, 3, 23, 9, tzinfo=BERLIN)
    assert str(moved["SUMMARY"]) == "Planning"
    assert b"\r\n" in data  # RFC 5545 content lines end in CRLF


def test_a_client_expanding_the_invitation_sees_the_platform_s_occurrences() -> None:
    schedule = _schedule()
    calendar = Calendar.from_ical(invitation(_meeting(), "REQUEST", now=NOW))
    window = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    theirs = [
        (e.start, e.end, str(e["SUMMARY"]))
        for e in recurring_ical_events.of(calendar).between(*window)
    ]
    ours = [
        (o.start, o.end, o.title_override or "Weekly sync") for o in occurrences(schedule, *window)
    ]
    assert sorted(theirs) == ours
    assert len(ours) == 10  # 12, less the EXDATE and the cancelled override
    # Both sides keep 09:00 local across the change on 2026-03-29.
    assert {(s.hour, s.utcoffset()) for s, _, title in ours if title == "Weekly sync"} == {
        (9, timedelta(hours=1)),
        (9, timedelta(hours=2)),
    }


def test_a_cancel_of_the_series_and_of_one_occurrence() -> None:
    meeting = _meeting(sequence=4)
    whole = Calendar.from_ical(invitation(meeting, "CANCEL", now=NOW))
    assert str(whole["METHOD"]) == "CANCEL"
    [event] = _events(whole)
    assert str(event["UID"]) == "meeting-weekly-sync_1@talk.example.com"
    assert int(event["SEQUENCE"]) == 4
    assert str(event["STATUS"]) == "CANCELLED"
    assert "RECURRENCE-ID" not in event
    assert event.walk("VALARM") == []  # RFC 5546: no VALARM in a CANCEL
    assert "RSVP" not in event["ATTENDEE"][0].params
    # One occurrence: the moved one, as attendees have it in their calendars.
    one = Calendar.from_ical(
        invitation(meeting, "CANCEL", recurrence_id="2026-03-23T09:00", now=NOW)
    )
    [event] = _events(one)
    assert event["RECURRENCE-ID"].dt == datetime(2026, 3, 23, 9, tzinfo=BERLIN)
    assert event.start == datetime(2026, 3, 24, 14, tzinfo=BERLIN)
    assert str(event["STATUS"]) == "CANCELLED"
    assert one.get_missing_tzids() == set()
    single = _meeting(schedule=Schedule.parse("2026-03-02T09:00", "2026-03-02T10:00", "UTC"))
    with pytest.raises(Invalid, match="only a recurring meeting"):
        invitation(single, "CANCEL", recurrence_id="2026-03-02T09:00")


def test_a_utc_meeting_needs_no_vtimezone() -> None:
    single = _meeting(schedule=Schedule.parse("2026-03-02T09:00", "2026-03-02T10:00", "UTC"))
    data = invitation(single, "REQUEST", now=NOW)
    calendar = Calendar.from_ical(data)
    assert calendar.walk("VTIMEZONE") == []
    assert b"DTSTART:20260302T090000Z" in data
    assert "RRULE" not in _events(calendar)[0]


@pytest.mark.parametrize(
    ("changes", "method", "field"),
    [
        ({"id": "bad id/../x"}, "REQUEST", "id"),
        ({"uid_domain": "not a domain"}, "REQUEST", "uid_domain"),
        ({"organizer_email": "olga"}, "REQUEST", "organizer_email"),
        ({"attendees": (Attendee(email="bob@example.com\r\nX-EVIL:1"),)}, "REQUEST", "attendees"),
        ({"join_url": "javascript:alert(1)"}, "REQUEST", "join_url"),
        ({"title": "   "}, "REQUEST", "title"),
        ({"title": "x" * 201}, "REQUEST", "title"),
        ({"sequence": -1}, "REQUEST", "sequence"),
        ({}, "PUBLISH", "method"),
    ],
)
def test_an_invitation_refuses_bad_fields(changes: dict[str, Any], method: str, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        invitation(_meeting(**changes), method, now=NOW)  # type: ignore[arg-type]
    assert caught.value.context["field"] == field


def test_names_cannot_break_out_of_their_parameter() -> None:
    meeting = _meeting(organizer_name='Olga "the boss"\r\nATTENDEE:mailto:eve@example.com')
    calendar = Calendar.from_ical(invitation(meeting, "REQUEST", now=NOW))
    master = _events(calendar)[0]
    assert [str(a) for a in master["ATTENDEE"]] == [
        "mailto:bob@example.com",
        "mailto:carol@example.org",
    ]
    assert master["ORGANIZER"].params["CN"] == "Olga 'the boss'  ATTENDEE:mailto:eve@example.com"
    assert meeting_uid("m1", "Talk.Example.com") == "meeting-m1@talk.example.com"


# --- reading events from elsewhere -------------------------------------------------------


def test_our_own_invitation_reads_back() -> None:
    [event] = read_events(invitation(_meeting(), "REQUEST", now=NOW))
    assert event.uid == "meeting-weekly-sync_1@talk.example.com"
    assert event.summary == "Weekly sync"
    assert event.sequence == 3
    assert event.url == JOIN
    assert event.join_meeting_id == "weekly-sync_1"
    assert not event.cancelled
    window = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    assert occurrences(event.schedule, *window) == occurrences(_schedule(), *window)
    [cancelled] = read_events(invitation(_meeting(), "CANCEL", now=NOW))
    assert cancelled.cancelled


def _ics(*lines: str, timezones: str = "") -> bytes:
    body = "\r\n".join(lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Elsewhere//EN\r\n"
        f"{timezones}BEGIN:VEVENT\r\n{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_an_event_from_another_calendar_with_a_join_link() -> None:
    data = _ics(
        "UID:abc-123@elsewhere.example",
        "DTSTAMP:20260101T000000Z",
        "DTSTART;TZID=W. Europe Standard Time:20260302T090000",
        "DURATION:PT45M",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260401T000000Z",
        "EXDATE;TZID=W. Europe Standard Time:20260309T090000",
        "SUMMARY:Design review",
        "DESCRIPTION:Join here: https://talk.example.com/app/meeting/design-42 (video)",
        "CATEGORIES:TalkPlatform,Work",
        "SEQUENCE:2",
    )
    [event] = read_events(data, join_base="https://talk.example.com/")
    assert event.uid == "abc-123@elsewhere.example"
    assert event.join_meeting_id == "design-42"
    assert event.categories == ("TalkPlatform", "Work")
    assert event.sequence == 2
    assert event.url is None
    # The Windows zone name is the IANA zone it stands for.
    assert event.schedule.timezone == "Europe/Berlin"
    assert event.schedule.duration == timedelta(minutes=45)
    starts = [
        o.start
        for o in occurrences(
            event.schedule, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
        )
    ]
    assert [s.isoformat() for s in starts] == [
        "2026-03-02T09:00:00+01:00",
        "2026-03-16T09:00:00+01:00",
        "2026-03-23T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",
    ]
    # Another site's link does not count when a base is given.
    assert read_events(data, join_base="https://other.example.com")[0].join_meeting_id is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://talk.example.com/app/meeting/abc_DEF-1", "abc_DEF-1"),
        ("see <https://talk.example.com/meeting/x1>.", "x1"),
        ("https://talk.example.com/app/meeting/abc?pw=1#x", "abc"),
        ("https://talk.example.com/app/meeting/" + "a" * 65, None),
        ("https://talk.example.com/app/host/abc", None),
        ("/app/meeting/abc without a site", None),
        ("https://talk.example.com/signin?next=/app/meeting/abc", None),
        ("Join:HTTPS://talk.example.com/app/meeting/Abc, thanks", "Abc"),
        ("(https://talk.example.com/meeting/p1)", "p1"),
        # Many scheme prefixes in one token: found in one pass, not by backtracking.
        ("http://" * 50_000 + "talk.example.com/meeting/deep", "deep"),
        ("", None),
    ],
)
def test_join_links(text: str, expected: str | None) -> None:
    assert join_meeting_id(text) == expected


_BAD: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty"),
    ("not iCalendar", b"hello, world", "malformed calendar data"),
    ("binary", bytes(range(256)) * 4, "malformed calendar data"),
    ("not a VCALENDAR", b"BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", "not a VCALENDAR"),
    ("unterminated", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", "malformed calendar data"),
    (
        "broken DTSTART",
        _ics("UID:a", "DTSTART:2026-03-02 nine", "DTEND:20260302T100000Z"),
        "malformed calendar data",
    ),
    ("no UID", _ics("DTSTART:20260302T090000Z", "DTEND:20260302T100000Z"), "has no UID"),
    ("no DTSTART", _ics("UID:a", "SUMMARY:x"), "has no DTSTART"),
    ("no end", _ics("UID:a", "DTSTART:20260302T090000Z"), "has no DTEND or DURATION"),
    (
        "all-day",
        _ics("UID:a", "DTSTART;VALUE=DATE:20260302", "DTEND;VALUE=DATE:20260303"),
        "all-day event",
    ),
    (
        "floating",
        _ics("UID:a", "DTSTART:20260302T090000", "DTEND:20260302T100000"),
        "floating time",
    ),
    (
        "unknown zone",
        _ics(
            "UID:a",
            "DTSTART;TZID=Nowhere/Land:20260302T090000",
            "DTEND;TZID=Nowhere/Land:20260302T100000",
        ),
        "'Nowhere/Land'",
    ),
    (
        "custom zone",
        _ics(
            "UID:a",
            "DTSTART;TZID=Office:20260302T090000",
            "DTEND;TZID=Office:20260302T100000",
            timezones="BEGIN:VTIMEZONE\r\nTZID:Office\r\nBEGIN:STANDARD\r\n"
            "DTSTART:19700101T000000\r\nTZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\n"
            "END:STANDARD\r\nEND:VTIMEZONE\r\n",
        ),
        "not an IANA zone",
    ),
    (
        "end before start",
        _ics("UID:a", "DTSTART:20260302T090000Z", "DTEND:20260302T080000Z"),
        "is not after the start",
    ),
    (
        "sub-daily rule",
        _ics("UID:a", "DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RRULE:FREQ=MINUTELY"),
        "FREQ=MINUTELY is not supported",
    ),
    (
        "broken rule",
        _ics(
            "UID:a",
            "DTSTART:20260302T090000Z",
            "DTEND:20260302T100000Z",
            "RRULE:FREQ=WEEKLY;BYDAY=XX",
        ),
        "weekday",
    ),
    (
        "two rules",
        _ics(
            "UID:a",
            "DTSTART:20260302T090000Z",
            "DTEND:20260302T100000Z",
            "RRULE:FREQ=WEEKLY",
            "RRULE:FREQ=DAILY",
        ),
        "more than one RRULE",
    ),
    (
        "RDATE",
        _ics(
            "UID:a", "DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RDATE:20260305T090000Z"
        ),
        "RDATE",
    ),
    (
        "two series",
        _ics(
            "UID:a",
            "DTSTART:20260302T090000Z",
            "DTEND:20260302T100000Z",
            "END:VEVENT",
            "BEGIN:VEVENT",
            "UID:a",
            "DTSTART:20260303T090000Z",
            "DTEND:20260303T100000Z",
        ),
        "is given twice",
    ),
    (
        "only an instance",
        _ics(
            "UID:a",
            "RECURRENCE-ID:20260302T090000Z",
            "DTSTART:20260302T100000Z",
            "DTEND:20260302T110000Z",
        ),
        "only changed occurrences",
    ),
    (
        "RANGE",
        _ics(
            "UID:a",
            "DTSTART:20260302T090000Z",
            "DTEND:20260302T100000Z",
            "RRULE:FREQ=WEEKLY",
            "END:VEVENT",
            "BEGIN:VEVENT",
            "UID:a",
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20260309T090000Z",
            "DTSTART:20260309T100000Z",
            "DTEND:20260309T110000Z",
        ),
        "RANGE",
    ),
    ("too large", b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"x" * (1 << 20) + b"\r\n", "larger than"),
]


@pytest.mark.parametrize(("data", "message"), [pytest.param(d, m, id=name) for name, d, m in _BAD])
def test_bad_calendar_data_is_invalid_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        read_events(data)
    assert message in caught.value.message
    assert caught.value.context["field"] in {"ics", "end", "recurrence"}


def test_stale_exdates_from_elsewhere_are_kept_and_harmless() -> None:
    data = _ics(
        "UID:a",
        "DTSTART:20260302T090000Z",
        "DTEND:20260302T100000Z",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "EXDATE:20260303T090000Z,20260309T090000Z",
        "END:VEVENT",
        # An override of an occurrence that an EXDATE also removes: the EXDATE wins.
        "BEGIN:VEVENT",
        "UID:a",
        "RECURRENCE-ID:20260309T090000Z",
        "DTSTART:20260310T090000Z",
        "DTEND:20260310T100000Z",
    )
    [event] = read_events(data)
    assert event.schedule.overrides == ()
    found = occurrences(
        event.schedule, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert [o.start.day for o in found] == [2, 16]


_VALID = invitation(_meeting(), "REQUEST", now=NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(0, len(_VALID)),
    junk=st.binary(max_size=40),
    at=st.integers(0, len(_VALID)),
    drop=st.integers(0, 40),
)
def test_read_events_raises_invalid_or_nothing_whatever_the_bytes(
    cut: int, junk: bytes, at: int, drop: int
) -> None:
    # Truncated, spliced and damaged copies of a real invitation.
    for data in (_VALID[:cut], _VALID[:at] + junk + _VALID[at + drop :], junk):
        try:
            events = read_events(data)
        except Invalid as exc:
            assert exc.message
            continue
        for event in events:
            assert event.schedule.end > event.schedule.start


def test_the_api_and_the_caldav_sync_share_one_link_and_organiser_rule() -> None:
    """Join link, UID domain and organiser's email come from calendar/links.py for both
    (they must match: the sync recognises our events by UID domain and join link)."""
    from talkplatform_agents.calendar.links import (
        join_url,
        organizer_email,
        organizer_or_noreply,
        uid_domain,
    )
    from talkplatform_agents.calendar.sync import SyncOptions

    options = SyncOptions(public_url="https://talk.example.org/")
    assert options.join_url("m1") == join_url("https://talk.example.org", "m1")
    assert options.join_url("m1") == "https://talk.example.org/app/meeting/m1"
    assert options.domain == uid_domain("https://talk.example.org/") == "talk.example.org"
    assert uid_domain("http://[::1]:8080") == "talkplatform.invalid"
    assert organizer_email(" Dan@Example.org ") == "dan@example.org"
    assert organizer_email("dan") is None
    assert organizer_email("a b@example.org") is None  # the sync took any "@" before
    assert organizer_or_noreply(None, "talk.example.org") == "noreply@talk.example.org"


def test_a_meeting_with_phones_carries_its_numbers_and_pin() -> None:
    phone = PhoneLine(("+15550100000", "+4930123456"), "12345678")
    parsed = Calendar.from_ical(invitation(_meeting(phone=phone), "REQUEST"))
    event = next(c for c in parsed.walk("VEVENT"))
    assert "Join by phone: +15550100000, +4930123456, then PIN 12345678#" in str(
        event["DESCRIPTION"]
    )
    conferences = event.get("CONFERENCE")
    assert [str(c) for c in conferences] == [
        "tel:+15550100000,,12345678%23",
        "tel:+4930123456,,12345678%23",
    ]
    assert all(c.params["FEATURE"] == "PHONE" for c in conferences)
    # A cancellation does not invite anyone to dial.
    cancel = Calendar.from_ical(invitation(_meeting(phone=phone), "CANCEL"))
    assert next(c for c in cancel.walk("VEVENT")).get("CONFERENCE") is None
