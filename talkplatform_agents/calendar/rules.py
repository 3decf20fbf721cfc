"""Checking and normalising an RRULE (RFC 5545 §3.3.10) before it is stored.

What a rule *means* is left to ``recurring-ical-events`` (and dateutil under it): this
module only refuses what that library would accept silently or choke on, so an API caller
gets a message instead of a surprise. ``icalendar``'s parser is lenient: it drops parts it
cannot split ("garbage" parses as an empty rule), keeps unknown names, and takes
``INTERVAL=0`` (on which dateutil never stops). Hence the checks here, part by part.

Bounds, so that one meeting cannot become a million occurrences:

- ``FREQ`` is DAILY, WEEKLY, MONTHLY or YEARLY: a meeting every hour is not a meeting;
- ``COUNT`` is at most ``MAX_COUNT``; an open series (no COUNT, no UNTIL) is fine;
- at most ``MAX_PER_DAY`` start times a day (BYHOUR x BYMINUTE x BYSECOND), and at most
  ``MAX_PER_YEAR`` occurrences in the series' first year (``schedule.py`` counts them with
  the library, as the rule set is only known there).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr  # type: ignore[import-untyped]
from icalendar import vRecur

from talkplatform_agents.errors import Invalid

__all__ = [
    "MAX_COUNT",
    "MAX_PER_DAY",
    "MAX_PER_YEAR",
    "first_occurrence",
    "normalise_rule",
    "until_in_zone",
]

MAX_COUNT = 1000
MAX_PER_DAY = 24
MAX_PER_YEAR = 1000
MAX_INTERVAL = 1000

_FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_SUB_DAILY = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})
# RFC 5545's rule parts. RSCALE and SKIP (RFC 7529) are refused: the expansion does not
# implement other calendar scales.
_PARTS = frozenset(
    {
        "FREQ",
        "UNTIL",
        "COUNT",
        "INTERVAL",
        "BYSECOND",
        "BYMINUTE",
        "BYHOUR",
        "BYDAY",
        "BYMONTHDAY",
        "BYYEARDAY",
        "BYWEEKNO",
        "BYMONTH",
        "BYSETPOS",
        "WKST",
    }
)
# (lowest, highest, zero allowed) for the numeric BY parts.
_RANGES: dict[str, tuple[int, int, bool]] = {
    "BYSECOND": (0, 60, True),
    "BYMINUTE": (0, 59, True),
    "BYHOUR": (0, 23, True),
    "BYMONTHDAY": (-31, 31, False),
    "BYYEARDAY": (-366, 366, False),
    "BYWEEKNO": (-53, 53, False),
    "BYMONTH": (1, 12, True),
    "BYSETPOS": (-366, 366, False),
}
# Days of each month in a leap year: a BYMONTHDAY is possible if some month has it.
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# RFC 5545 §3.3.10: these parts MUST NOT be used with these frequencies.
_NOT_WITH = {
    "BYWEEKNO": frozenset({"DAILY", "WEEKLY", "MONTHLY"}),
    "BYYEARDAY": frozenset({"DAILY", "WEEKLY", "MONTHLY"}),
    "BYMONTHDAY": frozenset({"WEEKLY"}),
}


def normalise_rule(text: str, start: datetime, tz: ZoneInfo) -> str:
    """``text`` (an RRULE value, with or without ``RRULE:``) checked against the series'
    aware ``start``, in icalendar's canonical part order, with ``UNTIL`` in UTC.

    RFC 5545 wants UTC for ``UNTIL`` when ``DTSTART`` has a ``TZID``; people write a local
    time or a date, so a naive ``UNTIL`` is a time in ``tz`` and a date means the end of
    that day there ("until Friday" includes Friday's meeting)."""
    if not isinstance(text, str):
        raise Invalid(
            "recurrence must be an RRULE such as FREQ=WEEKLY;BYDAY=MO", field="recurrence"
        )
    rule = text.strip()
    if rule[:6].upper() == "RRULE:":
        rule = rule[6:]
    recur = _parse(rule, text)
    freq = _frequency(recur, text)
    if "COUNT" in recur and "UNTIL" in recur:
        raise _bad(text, "it has both COUNT and UNTIL; RFC 5545 allows one of them")
    count = _single_int(recur, "COUNT", text)
    if count is not None and not 1 <= count <= MAX_COUNT:
        raise _bad(text, f"COUNT must be between 1 and {MAX_COUNT}")
    interval = _single_int(recur, "INTERVAL", text)
    if interval is not None and not 1 <= interval <= MAX_INTERVAL:
        raise _bad(text, f"INTERVAL must be between 1 and {MAX_INTERVAL}")
    _check_parts(recur, freq, text)
    if "UNTIL" in recur:
        recur["UNTIL"] = [_until(recur["UNTIL"], start, tz, text)]
    # vRecur.to_ical is not annotated in icalendar 7.
    encoded: bytes = recur.to_ical()  # type: ignore[no-untyped-call]
    return encoded.decode("ascii")


def until_in_zone(rule: str, old: ZoneInfo) -> str:
    """``rule`` (normalised, its UNTIL in UTC) with UNTIL as the wall-clock time it was in
    ``old``, without an offset: ``normalise_rule`` then reads it in whatever zone the
    series has now, so "until 10 March" stays 10 March when the zone changes. A rule
    without UNTIL is returned as it is."""
    recur = vRecur.from_ical(rule)
    values: list[Any] = recur.get("UNTIL", [])
    if not values or not isinstance(values[0], datetime) or values[0].tzinfo is None:
        return rule
    recur["UNTIL"] = [values[0].astimezone(old).replace(tzinfo=None)]
    encoded: bytes = recur.to_ical()
    return encoded.decode("ascii")


def _parse(rule: str, original: str) -> vRecur:
    if not rule or any(ord(c) < 0x20 or ord(c) == 0x7F for c in rule) or not rule.isascii():
        raise _bad(original, "it is not an RRULE such as FREQ=WEEKLY;BYDAY=MO")
    seen: set[str] = set()
    # A trailing ";" is common (and harmless); other empty parts are not.
    for part in rule.removesuffix(";").split(";"):
        name, sep, value = part.partition("=")
        name = name.strip().upper()
        if not sep or not value.strip():
            raise _bad(original, f"{part!r} is not a NAME=VALUE rule part")
        if name not in _PARTS:
            raise _bad(original, f"{name} is not a supported rule part")
        if name in seen:
            raise _bad(original, f"{name} is given twice")
        seen.add(name)
    try:
        return cast("vRecur", vRecur.from_ical(rule))
    except (ValueError, TypeError) as exc:
        raise _bad(original, str(exc)) from None


def _check_parts(recur: vRecur, freq: str, original: str) -> None:
    for name, (low, high, zero) in _RANGES.items():
        for value in recur.get(name, []):
            # vMonth is an int that may carry RFC 7529's leap flag ("5L"): refused too.
            if (
                not isinstance(value, int)
                or not low <= value <= high
                or (value == 0 and not zero)
                or getattr(value, "leap", False)
            ):
                raise _bad(original, f"{name} value {value} is out of range")
    for name, frequencies in _NOT_WITH.items():
        if name in recur and freq in frequencies:
            raise _bad(original, f"{name} cannot be used with FREQ={freq}")
    per_day = 1
    for name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        per_day *= max(1, len(recur.get(name, [])))
    if per_day > MAX_PER_DAY:
        raise _bad(original, f"it starts more than {MAX_PER_DAY} times a day")
    _check_possible(recur, freq, per_day, original)


def _check_possible(recur: vRecur, freq: str, per_day: int, original: str) -> None:
    # dateutil looks for the next occurrence period by period up to the year 9999 and
    # never gives up earlier: a rule no date satisfies costs seconds of CPU on every
    # expansion (about 3 s for a DAILY one). These are the ways to write one; any other
    # rule finds a date within decades, and first_occurrence catches what is left.
    days: list[Any] = recur.get("BYDAY", [])
    most = {"MONTHLY": 5, "YEARLY": 53}.get(freq, 0)
    for day in days:
        relative = getattr(day, "relative", None)
        if relative is not None and not 1 <= abs(relative) <= most:
            where = f"with FREQ={freq}" if most else f"as a number with FREQ={freq}"
            raise _bad(original, f"BYDAY {day} cannot be used {where}")
    month_days: list[int] = recur.get("BYMONTHDAY", [])
    months: list[int] = recur.get("BYMONTH", []) or list(range(1, 13))
    if month_days and not any(abs(d) <= _DAYS_IN_MONTH[m - 1] for d in month_days for m in months):
        raise _bad(original, "no month has the days it names")
    # Candidates within one period, which BYSETPOS picks from (DAILY and WEEKLY only:
    # the costly ones; a MONTHLY or YEARLY miss costs dateutil well under a second).
    per_period = {"DAILY": per_day, "WEEKLY": per_day * max(1, len(days))}.get(freq)
    for position in recur.get("BYSETPOS", []):
        if per_period is not None and abs(position) > per_period:
            unit = "day" if freq == "DAILY" else "week"
            raise _bad(
                original,
                f"BYSETPOS {position} asks for more than the {per_period} start times a {unit} has",
            )


def first_occurrence(rule: str, start: datetime) -> datetime | None:
    """The first occurrence of ``rule`` (normalised) at or after the aware ``start``, by
    dateutil, the engine under recurring-ical-events (which adds DTSTART to the set on top
    of it, as RFC 5545 says). ``None`` if the rule has none."""
    found = rrulestr(rule, dtstart=start).after(start, inc=True)
    return cast("datetime | None", found)


def _frequency(recur: vRecur, original: str) -> str:
    values: list[Any] = recur.get("FREQ", [])
    if not values:
        raise _bad(original, "FREQ is missing")
    freq = str(values[0]).upper()
    if freq in _SUB_DAILY:
        raise _bad(original, f"FREQ={freq} is not supported: a meeting repeats at most daily")
    if freq not in _FREQUENCIES:
        raise _bad(original, f"FREQ={freq} is not a frequency")
    return freq


def _single_int(recur: vRecur, name: str, original: str) -> int | None:
    values: list[Any] = recur.get(name, [])
    if not values:
        return None
    if len(values) != 1 or not isinstance(values[0], int):
        raise _bad(original, f"{name} must be one whole number")
    return int(values[0])


def _until(values: list[Any], start: datetime, tz: ZoneInfo, original: str) -> datetime:
    if len(values) != 1:
        raise _bad(original, "UNTIL must be one date or date-time")
    value = values[0]
    if isinstance(value, datetime):
        until = value.replace(tzinfo=tz) if value.tzinfo is None else value
    elif isinstance(value, date):
        until = datetime.combine(value, time(23, 59, 59), tzinfo=tz)
    else:
        raise _bad(original, "UNTIL must be a date or date-time")
    if until.astimezone(UTC) < start.astimezone(UTC):
        raise _bad(
            original,
            f"UNTIL {until.astimezone(tz):%Y-%m-%dT%H:%M} is before the "
            f"start {start:%Y-%m-%dT%H:%M}",
        )
    return until.astimezone(UTC)


def _bad(rule: str, why: str) -> Invalid:
    return Invalid(f"recurrence {rule!r} is not usable: {why}", field="recurrence")
