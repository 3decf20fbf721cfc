"""Schedules (calendar/schedule.py): what ``Schedule.parse`` refuses and why, how local
times around DST changes are read, and how ``occurrences`` expands a series (with
recurring-ical-events) across DST changes, EXDATEs and overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkplatform_agents.calendar import Occurrence, Override, Schedule, occurrences
from talkplatform_agents.errors import Invalid

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def _weekly(**kwargs: Any) -> Schedule:
    return Schedule.parse(
        "2026-03-02T09:00", "2026-03-02T10:00", "Europe/Berlin", "FREQ=WEEKLY;BYDAY=MO", **kwargs
    )


def _in(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def _starts(found: list[Occurrence]) -> list[str]:
    return [o.start.isoformat() for o in found]


# --- parsing -------------------------------------------------------------------------------


def test_a_naive_time_is_wall_clock_time_in_the_zone_and_an_offset_is_an_instant() -> None:
    naive = Schedule.parse("2026-07-01T09:00", "2026-07-01T10:30:00", "Europe/Berlin")
    assert naive.start == _in(BERLIN, 2026, 7, 1, 9)
    assert naive.start.utcoffset() == timedelta(hours=2)
    assert naive.duration == timedelta(minutes=90)
    assert not naive.recurring
    # The same instant given in UTC is shown in the meeting's zone.
    utc = Schedule.parse("2026-07-01T07:00Z", "2026-07-01T08:30+00:00", "Europe/Berlin")
    assert utc == naive
    assert utc.start.tzinfo == BERLIN


def test_a_rule_is_normalised_and_a_local_until_becomes_utc() -> None:
    schedule = Schedule.parse(
        "2026-03-02T09:00", "2026-03-02T10:00", "Europe/Berlin", " RRULE:byday=MO;freq=weekly; "
    )
    assert schedule.rrule == "FREQ=WEEKLY;BYDAY=MO"
    # A date UNTIL means "through that day" in the meeting's zone (23:59:59 CEST = 21:59:59Z).
    until_day = Schedule.parse(
        "2026-03-02T09:00", "2026-03-02T10:00", "Europe/Berlin", "FREQ=WEEKLY;UNTIL=20260420"
    )
    assert until_day.rrule == "FREQ=WEEKLY;UNTIL=20260420T215959Z"
    found = occurrences(until_day, _in(BERLIN, 2026, 3, 1), _in(BERLIN, 2026, 6, 1))
    assert found[-1].start == _in(BERLIN, 2026, 4, 20, 9)
    local_until = Schedule.parse(
        "2026-03-02T09:00", "2026-03-02T10:00", "Europe/Berlin", "FREQ=WEEKLY;UNTIL=20260420T090000"
    )
    assert local_until.rrule == "FREQ=WEEKLY;UNTIL=20260420T070000Z"
    # An empty recurrence is a single meeting.
    assert Schedule.parse("2026-03-02T09:00", "2026-03-02T10:00", "UTC", "  ").rrule is None


_OK = ("2026-03-02T09:00", "2026-03-02T10:00", "Europe/Berlin")

_REFUSED: list[tuple[str, tuple[Any, ...], str, str]] = [
    (
        "unknown zone",
        ("2026-03-02T09:00", "2026-03-02T10:00", "Mars/Olympus"),
        "unknown time zone",
        "timezone",
    ),
    (
        "zone as a path",
        ("2026-03-02T09:00", "2026-03-02T10:00", "../../etc/passwd"),
        "unknown time zone",
        "timezone",
    ),
    (
        "end before start",
        ("2026-03-02T09:00", "2026-03-02T08:00", "Europe/Berlin"),
        "is not after the start",
        "end",
    ),
    (
        "end equals start",
        ("2026-03-02T09:00", "2026-03-02T09:00", "Europe/Berlin"),
        "is not after the start",
        "end",
    ),
    (
        "not a time",
        ("next monday at nine", "2026-03-02T10:00", "Europe/Berlin"),
        "is not an ISO 8601",
        "start",
    ),
    (
        "a date alone",
        ("2026-03-02", "2026-03-03", "Europe/Berlin"),
        "needs a date and a time",
        "start",
    ),
    (
        "year out of range",
        ("1900-03-02T09:00", "1900-03-02T10:00", "Europe/Berlin"),
        "outside the years",
        "start",
    ),
    (
        "spring-forward gap",
        ("2026-03-29T02:30", "2026-03-29T04:00", "Europe/Berlin"),
        "does not exist in Europe/Berlin",
        "start",
    ),
    (
        "gap in New York",
        ("2026-03-08T02:15", "2026-03-08T04:00", "America/New_York"),
        "does not exist in America/New_York",
        "start",
    ),
    (
        "end in the gap",
        ("2026-03-29T01:00", "2026-03-29T02:30", "Europe/Berlin"),
        "does not exist",
        "end",
    ),
    (
        "second pass of a fold",
        ("2026-10-25T02:30:00+01:00", "2026-10-25T04:00", "Europe/Berlin"),
        "is the second 02:30",
        "start",
    ),
    ("garbage rule", (*_OK, "every monday"), "not a NAME=VALUE rule part", "recurrence"),
    ("FREQ missing", (*_OK, "BYDAY=MO;COUNT=3"), "FREQ is missing", "recurrence"),
    ("bad FREQ", (*_OK, "FREQ=FORTNIGHTLY"), "Expected frequency", "recurrence"),
    ("HOURLY", (*_OK, "FREQ=HOURLY"), "FREQ=HOURLY is not supported", "recurrence"),
    ("MINUTELY", (*_OK, "FREQ=MINUTELY;COUNT=5"), "FREQ=MINUTELY is not supported", "recurrence"),
    ("SECONDLY", (*_OK, "FREQ=SECONDLY"), "FREQ=SECONDLY is not supported", "recurrence"),
    (
        "COUNT and UNTIL",
        (*_OK, "FREQ=DAILY;COUNT=3;UNTIL=20260401"),
        "both COUNT and UNTIL",
        "recurrence",
    ),
    (
        "UNTIL before start",
        (*_OK, "FREQ=DAILY;UNTIL=20260301T000000Z"),
        "is before the start",
        "recurrence",
    ),
    (
        "COUNT too big",
        (*_OK, "FREQ=DAILY;COUNT=5000"),
        "COUNT must be between 1 and 1000",
        "recurrence",
    ),
    ("COUNT zero", (*_OK, "FREQ=DAILY;COUNT=0"), "COUNT must be between", "recurrence"),
    ("INTERVAL zero", (*_OK, "FREQ=WEEKLY;INTERVAL=0"), "INTERVAL must be between", "recurrence"),
    (
        "unknown part",
        (*_OK, "FREQ=WEEKLY;COLOR=RED"),
        "COLOR is not a supported rule part",
        "recurrence",
    ),
    ("part twice", (*_OK, "FREQ=WEEKLY;BYDAY=MO;BYDAY=TU"), "BYDAY is given twice", "recurrence"),
    ("bad weekday", (*_OK, "FREQ=WEEKLY;BYDAY=XX"), "weekday", "recurrence"),
    ("day out of range", (*_OK, "FREQ=MONTHLY;BYMONTHDAY=40"), "BYMONTHDAY value 40", "recurrence"),
    (
        "BYWEEKNO with WEEKLY",
        (*_OK, "FREQ=WEEKLY;BYWEEKNO=3"),
        "cannot be used with FREQ=WEEKLY",
        "recurrence",
    ),
    ("control characters", (*_OK, "FREQ=WEEKLY\r\nATTENDEE:x"), "is not an RRULE", "recurrence"),
    (
        "too dense a year",
        (*_OK, "FREQ=DAILY;BYHOUR=9,12,15"),
        "more than 1000 occurrences",
        "recurrence",
    ),
    (
        "too many a day",
        (*_OK, "FREQ=YEARLY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12;BYMINUTE=0,30"),
        "more than 24 times a day",
        "recurrence",
    ),
]


@pytest.mark.parametrize(
    ("args", "message", "field"),
    [pytest.param(args, message, field, id=name) for name, args, message, field in _REFUSED],
)
def test_parse_refuses_with_a_message_naming_the_problem(
    args: tuple[Any, ...], message: str, field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        Schedule.parse(*args)
    assert message in caught.value.message
    assert caught.value.context["field"] == field
    assert caught.value.status == 400


def test_an_ambiguous_local_time_means_its_first_pass_as_rfc_5545_says() -> None:
    # 02:30 happens twice on 2026-10-25 in Berlin: first in CEST (+02:00), then in CET.
    berlin = Schedule.parse("2026-10-25T02:30", "2026-10-25T04:00", "Europe/Berlin")
    assert berlin.start.utcoffset() == timedelta(hours=2)
    assert berlin.start.fold == 0
    assert berlin.duration == timedelta(hours=2, minutes=30)
    # 01:30 happens twice on 2026-11-01 in New York: first in EDT (-04:00).
    new_york = Schedule.parse("2026-11-01T01:30", "2026-11-01T03:00", "America/New_York")
    assert new_york.start.utcoffset() == timedelta(hours=-4)
    # Aware values in the zone are wall-clock times too: a gap is still a gap, and the
    # second pass of a fold is still refused.
    with pytest.raises(Invalid, match="does not exist"):
        Schedule.parse(
            _in(BERLIN, 2026, 3, 29, 2, 30), _in(BERLIN, 2026, 3, 29, 4), "Europe/Berlin"
        )
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    with pytest.raises(Invalid, match="is the second 02:30"):
        Schedule.parse(second, _in(BERLIN, 2026, 10, 25, 4), "Europe/Berlin")
    # The first pass given with its offset is the same instant, and accepted.
    explicit = Schedule.parse("2026-10-25T02:30+02:00", "2026-10-25T04:00", "Europe/Berlin")
    assert explicit.start == berlin.start


def test_exdates_and_overrides_are_checked_against_the_series() -> None:
    moved = Override(datetime(2026, 3, 9, 9), datetime(2026, 3, 10, 9), datetime(2026, 3, 10, 10))
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"exdates": ["2026-03-03T09:00"]}, "is not an occurrence of the series", "recurrence_id"),
        (
            {"overrides": [replace_rid(moved, datetime(2026, 3, 9, 10))]},
            "is not an occurrence",
            "recurrence_id",
        ),
        ({"overrides": [moved, moved]}, "is changed twice", "overrides"),
        ({"exdates": ["2026-03-09T09:00"], "overrides": [moved]}, "is changed twice", "overrides"),
        (
            {"overrides": [Override(moved.recurrence_id, moved.end, moved.start)]},
            "is not after its start",
            "overrides",
        ),
        (
            {"overrides": [Override(moved.recurrence_id, moved.start, moved.end, " ")]},
            "title has 1 to 200 characters",
            "overrides",
        ),
        (
            {"exdates": ["2026-03-29T02:30"]},
            "cancelled occurrence 2026-03-29T02:30 does not exist",
            "exdates",
        ),
    ]
    for kwargs, message, field in cases:
        with pytest.raises(Invalid) as caught:
            _weekly(**kwargs)
        assert message in caught.value.message, kwargs
        assert caught.value.context["field"] == field
    with pytest.raises(Invalid, match="only a recurring meeting"):
        Schedule.parse(*_OK, exdates=["2026-03-02T09:00"])
    # Calendars from elsewhere keep stale EXDATEs: strict=False lets them through.
    assert _weekly(exdates=["2026-03-03T09:00"], strict=False).exdates


def replace_rid(override: Override, rid: datetime) -> Override:
    return Override(rid, override.start, override.end, override.title, override.cancelled)


# --- expansion across DST changes -------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "first", "rule", "change", "before", "after"),
    [
        # EU 2026: clocks go forward on 2026-03-29 and back on 2026-10-25 (both Sundays).
        ("Europe/Berlin", "2026-03-16T09:00", "FREQ=WEEKLY;BYDAY=MO", (2026, 3, 29), 1, 2),
        ("Europe/Berlin", "2026-10-12T09:00", "FREQ=WEEKLY;BYDAY=MO", (2026, 10, 25), 2, 1),
        # US 2026: forward on 2026-03-08, back on 2026-11-01 (Sundays): a Sunday meeting
        # falls on the change day itself.
        ("America/New_York", "2026-02-22T09:00", "FREQ=WEEKLY;BYDAY=SU", (2026, 3, 8), -5, -4),
        ("America/New_York", "2026-10-18T09:00", "FREQ=WEEKLY;BYDAY=SU", (2026, 11, 1), -4, -5),
    ],
)
def test_a_weekly_meeting_keeps_its_wall_clock_time_across_a_dst_change(
    zone: str, first: str, rule: str, change: tuple[int, int, int], before: int, after: int
) -> None:
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(first)
    schedule = Schedule.parse(first, (start + timedelta(hours=1)).isoformat(), zone, rule)
    found = occurrences(
        schedule, start.replace(tzinfo=tz), start.replace(tzinfo=tz) + timedelta(weeks=5)
    )
    assert len(found) == 5
    assert {(o.start.hour, o.start.minute) for o in found} == {(9, 0)}
    assert {o.end - o.start for o in found} == {timedelta(hours=1)}
    change_day = datetime(*change, tzinfo=tz)
    for o in found:
        offset = before if o.start < change_day else after
        assert o.start.utcoffset() == timedelta(hours=offset), o.start
        assert o.start.tzinfo == tz
        assert o.recurrence_id == o.start
    # The UTC time moved by an hour, which is the point.
    utc_hours = {o.start.astimezone(UTC).hour for o in found}
    assert len(utc_hours) == 2


def test_a_daily_series_crosses_both_eu_changes_of_2026() -> None:
    schedule = Schedule.parse(
        "2026-03-27T18:30", "2026-03-27T19:00", "Europe/Berlin", "FREQ=DAILY;UNTIL=20261027"
    )
    spring = occurrences(schedule, _in(BERLIN, 2026, 3, 27), _in(BERLIN, 2026, 3, 31))
    assert _starts(spring) == [
        "2026-03-27T18:30:00+01:00",
        "2026-03-28T18:30:00+01:00",
        "2026-03-29T18:30:00+02:00",
        "2026-03-30T18:30:00+02:00",
    ]
    autumn = occurrences(schedule, _in(BERLIN, 2026, 10, 24), _in(BERLIN, 2026, 11, 30))
    assert _starts(autumn) == [
        "2026-10-24T18:30:00+02:00",
        "2026-10-25T18:30:00+01:00",
        "2026-10-26T18:30:00+01:00",
        "2026-10-27T18:30:00+01:00",
    ]


# --- EXDATEs, overrides, windows -------------------------------------------------------------


def test_exdates_and_overrides_change_the_expansion() -> None:
    schedule = _weekly(
        exdates=["2026-03-16T09:00"],
        overrides=[
            # Moved a day later and retitled.
            Override(
                datetime(2026, 3, 23, 9),
                datetime(2026, 3, 24, 14),
                datetime(2026, 3, 24, 15),
                "Planning",
            ),
            # Cancelled as an override.
            Override(
                datetime(2026, 3, 30, 9),
                datetime(2026, 3, 30, 9),
                datetime(2026, 3, 30, 10),
                cancelled=True,
            ),
            # Only retitled, given as instants in UTC.
            Override(
                datetime(2026, 4, 6, 7, tzinfo=UTC),
                datetime(2026, 4, 6, 7, tzinfo=UTC),
                datetime(2026, 4, 6, 8, 30, tzinfo=UTC),
                "Long one",
            ),
        ],
    )
    found = occurrences(schedule, _in(BERLIN, 2026, 3, 1), _in(BERLIN, 2026, 4, 14))
    assert [
        (o.recurrence_id.isoformat(), o.start.isoformat(), o.end.isoformat(), o.title_override)
        for o in found
    ] == [
        (
            "2026-03-02T09:00:00+01:00",
            "2026-03-02T09:00:00+01:00",
            "2026-03-02T10:00:00+01:00",
            None,
        ),
        (
            "2026-03-09T09:00:00+01:00",
            "2026-03-09T09:00:00+01:00",
            "2026-03-09T10:00:00+01:00",
            None,
        ),
        (
            "2026-03-23T09:00:00+01:00",
            "2026-03-24T14:00:00+01:00",
            "2026-03-24T15:00:00+01:00",
            "Planning",
        ),
        (
            "2026-04-06T09:00:00+02:00",
            "2026-04-06T09:00:00+02:00",
            "2026-04-06T10:30:00+02:00",
            "Long one",
        ),
        (
            "2026-04-13T09:00:00+02:00",
            "2026-04-13T09:00:00+02:00",
            "2026-04-13T10:00:00+02:00",
            None,
        ),
    ]


def test_an_override_is_found_by_its_new_time_not_its_original_one() -> None:
    schedule = _weekly(
        overrides=[
            Override(datetime(2026, 3, 9, 9), datetime(2026, 3, 20, 9), datetime(2026, 3, 20, 10)),
        ]
    )
    # The week of its original start no longer has it ...
    week_of_9th = occurrences(schedule, _in(BERLIN, 2026, 3, 8), _in(BERLIN, 2026, 3, 15))
    assert week_of_9th == []
    # ... and the week it moved to does, keyed by its original start.
    week_of_20th = occurrences(schedule, _in(BERLIN, 2026, 3, 18), _in(BERLIN, 2026, 3, 21))
    assert [(o.recurrence_id, o.start) for o in week_of_20th] == [
        (_in(BERLIN, 2026, 3, 9, 9), _in(BERLIN, 2026, 3, 20, 9)),
    ]


def test_editing_one_occurrence_or_cancelling_it() -> None:
    schedule = _weekly()
    moved = schedule.with_override(
        Override(
            datetime(2026, 3, 9, 9), datetime(2026, 3, 9, 11), datetime(2026, 3, 9, 12), "Later"
        )
    )
    # Naive datetimes are wall-clock times in the meeting's zone, as in parse.
    iso = datetime.fromisoformat
    again = moved.with_override(
        Override(iso("2026-03-09T09:00"), iso("2026-03-09T13:00"), iso("2026-03-09T14:00"))
    )
    assert len(again.overrides) == 1
    assert again.overrides[0].start == _in(BERLIN, 2026, 3, 9, 13)
    assert again.overrides[0].title is None
    cancelled = again.with_exdate("2026-03-09T09:00")
    assert cancelled.overrides == ()
    assert cancelled.exdates == (_in(BERLIN, 2026, 3, 9, 9),)
    window = (_in(BERLIN, 2026, 3, 1), _in(BERLIN, 2026, 3, 17))
    assert _starts(occurrences(cancelled, *window)) == [
        "2026-03-02T09:00:00+01:00",
        "2026-03-16T09:00:00+01:00",
    ]
    with pytest.raises(Invalid, match="is not an occurrence"):
        schedule.with_exdate("2026-03-10T09:00")
    # The original is unchanged: schedules are values.
    assert schedule.overrides == () and schedule.exdates == ()


def test_a_window_holds_what_overlaps_it() -> None:
    single = Schedule.parse("2026-03-02T09:00", "2026-03-02T10:00", "Europe/Berlin")
    one = occurrences(single, _in(BERLIN, 2026, 3, 2, 9, 30), _in(BERLIN, 2026, 3, 2, 9, 45))
    assert [(o.recurrence_id, o.start, o.title_override) for o in one] == [
        (single.start, single.start, None)
    ]
    assert occurrences(single, _in(BERLIN, 2026, 3, 2, 10), _in(BERLIN, 2026, 3, 3)) == []
    assert occurrences(single, _in(BERLIN, 2026, 3, 1), _in(BERLIN, 2026, 3, 2, 9)) == []
    # An open series reaches years ahead.
    later = occurrences(_weekly(), _in(BERLIN, 2031, 1, 1), _in(BERLIN, 2031, 1, 14))
    assert _starts(later) == ["2031-01-06T09:00:00+01:00", "2031-01-13T09:00:00+01:00"]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 3, 1), datetime(2026, 3, 2, tzinfo=UTC), "UTC offset"),
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), "not after"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC), "at most 400 days"),
    ],
)
def test_a_bad_window_is_refused(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        occurrences(_weekly(), start, end)


# --- property: wall-clock time is kept ------------------------------------------------------

_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Europe/London",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "America/Sao_Paulo",
]
_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(_ZONES),
    day=st.dates(min_value=datetime(2025, 1, 1).date(), max_value=datetime(2028, 12, 31).date()),
    # 06:00-22:59: these zones change their clocks between 00:00 and 04:00.
    hour=st.integers(6, 22),
    minute=st.sampled_from([0, 15, 30, 45]),
    minutes=st.integers(15, 180),
    weekly=st.booleans(),
    days=st.lists(st.sampled_from(_DAYS), min_size=1, max_size=3, unique=True),
    interval=st.integers(1, 3),
)
def test_every_occurrence_keeps_the_start_wall_clock_time(
    zone: str,
    day: Any,
    hour: int,
    minute: int,
    minutes: int,
    weekly: bool,
    days: list[str],
    interval: int,
) -> None:
    start = datetime(day.year, day.month, day.day, hour, minute)
    # A series starts on one of its own occurrences (parse insists).
    days = sorted({*days, _DAYS[start.weekday()]})
    rule = f"FREQ=WEEKLY;BYDAY={','.join(days)}" if weekly else "FREQ=DAILY"
    schedule = Schedule.parse(
        start.isoformat(),
        (start + timedelta(minutes=minutes)).isoformat(),
        zone,
        f"{rule};INTERVAL={interval}",
    )
    tz = ZoneInfo(zone)
    found = occurrences(
        schedule, start.replace(tzinfo=tz), start.replace(tzinfo=tz) + timedelta(days=399)
    )
    assert found
    assert all((o.start.hour, o.start.minute) == (hour, minute) for o in found)
    assert all(o.end - o.start == timedelta(minutes=minutes) for o in found)
    assert all(o.start.tzinfo == tz for o in found)
    assert [o.start for o in found] == sorted(o.start for o in found)
    if weekly:
        assert {o.start.strftime("%a").upper()[:2] for o in found} <= set(days)


def test_an_occurrence_in_a_spring_forward_gap_is_found_by_its_instant() -> None:
    """Review finding 4: the library places 02:30 on 2026-03-29 (Berlin) at 02:30+01:00;
    cancelling or moving it by that instant matches on UTC keys, whatever the wall clock."""
    daily = Schedule.parse("2026-03-27T02:30", "2026-03-27T03:00", "Europe/Berlin", "FREQ=DAILY")
    window = (datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    gap = occurrences(daily, *window)[2].recurrence_id
    assert gap.isoformat() == "2026-03-29T02:30:00+01:00"
    name = gap.isoformat()
    cancelled = daily.with_exdate(name)
    assert [o.start.day for o in occurrences(cancelled, *window)] == [27, 28, 30, 31]
    moved = daily.with_override(
        Override(
            datetime.fromisoformat(name), _in(BERLIN, 2026, 3, 29, 10), _in(BERLIN, 2026, 3, 29, 11)
        )
    )
    assert [o.start.hour for o in occurrences(moved, *window) if o.start.day == 29] == [10]


def test_an_occurrence_across_fall_back_keeps_its_wall_clock_length() -> None:
    """Review finding 5: every occurrence lasts DTEND - DTSTART on the wall clock, as the
    library expands it; ``wall_end`` says the same for one computed by hand."""
    from talkplatform_agents.calendar.schedule import wall_end

    daily = Schedule.parse("2026-10-24T01:30", "2026-10-24T03:30", "Europe/Berlin", "FREQ=DAILY")
    window = (datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    found = occurrences(daily, *window)
    assert [o.end - o.start for o in found][:3] == [timedelta(hours=2)] * 3  # on the wall
    sunday = found[1]
    assert sunday.end.astimezone(UTC) - sunday.start.astimezone(UTC) == timedelta(hours=3)
    assert wall_end(sunday.start, daily.wall_duration) == sunday.end
    assert wall_end(sunday.start, daily.wall_duration).utcoffset() == timedelta(hours=1)
