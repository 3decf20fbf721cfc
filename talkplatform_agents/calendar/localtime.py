"""Time zones and local wall-clock times, the way calendars mean them.

A meeting is planned in a wall-clock time of an IANA zone ("09:00 in Europe/Berlin"), not
in an instant: its UTC offset changes with daylight saving time, and the calendar clients
that read our invitations do the same arithmetic from the zone's TZID.

Two local times need a decision (RFC 5545 §3.3.5 describes both):

- a time in the spring-forward gap (02:30 on 2026-03-29 in Europe/Berlin) does not exist.
  RFC 5545 tells readers to shift it by the gap; we refuse it instead, so a person who
  typed it learns that now, not when the meeting starts an hour late;
- a time in the fall-back fold (02:30 on 2026-10-25 in Europe/Berlin) happens twice. A
  naive time means the first of the two (``fold=0``), as RFC 5545 says: an invitation
  carries ``DTSTART;TZID=...`` without an offset, so every calendar client reads it as the
  first one too, and we must agree with them. A time with an explicit offset that names
  the second one is refused: no ``TZID`` date-time can say it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from talkplatform_agents.errors import Invalid

__all__ = ["FIRST_YEAR", "LAST_YEAR", "in_zone", "local_time", "zone"]

# Outside these years a meeting is a typo; the bound also keeps date arithmetic (a
# VTIMEZONE reaching 20 years past the last date) far from datetime's year 9999.
FIRST_YEAR, LAST_YEAR = 1970, 2199

# IANA names are ASCII path segments ("America/Argentina/Buenos_Aires", "Etc/GMT+5"). The
# pattern refuses what ZoneInfo would read as a file path ("../x", "/etc/localtime").
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9][A-Za-z0-9_+\-]*)*")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or ``Invalid`` naming it."""
    if not isinstance(name, str) or len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise Invalid(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin", field="timezone"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin", field="timezone"
        ) from None


def local_time(
    value: str | datetime, tz: ZoneInfo, *, field: str, label: str | None = None
) -> datetime:
    """``value`` (ISO 8601 text or a datetime) as an aware datetime in ``tz``, to the second.

    A value without an offset is a wall-clock time in ``tz``; one with an offset is that
    instant, shown in ``tz``. ``field`` goes into an error's context, ``label`` (default:
    ``field``) into its message."""
    return _local_time(value, tz, field, label or field)


def _local_time(value: str | datetime, tz: ZoneInfo, field: str, label: str) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        # A bare date has no time of day to meet at; fromisoformat would make it midnight.
        if len(text) <= 10:
            raise Invalid(
                f"{label} {value!r} needs a date and a time of day, such as 2026-03-02T09:00",
                field=field,
            )
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(
                f"{label} {value!r} is not an ISO 8601 date and time, such as 2026-03-02T09:00",
                field=field,
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise Invalid(f"{label} must be an ISO 8601 date and time", field=field)
    # iCalendar date-times have whole seconds; a fraction would make the same occurrence
    # compare unequal after a round trip through an invitation.
    parsed = parsed.replace(microsecond=0)
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise Invalid(
            f"{label} {value!s} is outside the years {FIRST_YEAR}-{LAST_YEAR}", field=field
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return _wall_clock(parsed, tz, field, label)
    if isinstance(parsed.tzinfo, ZoneInfo) and parsed.tzinfo.key == tz.key and not parsed.fold:
        # Already in the zone (from icalendar, or our own values): a wall-clock time, which
        # may still sit in a gap that Python's datetime arithmetic does not notice.
        return _wall_clock(parsed.replace(tzinfo=None), tz, field, label)
    return in_zone(parsed, tz, field=field, label=label)


def in_zone(instant: datetime, tz: ZoneInfo, *, field: str, label: str | None = None) -> datetime:
    """The aware ``instant`` in ``tz``; ``Invalid`` if it is the second pass through a
    fall-back fold, which a ``TZID`` date-time cannot express (see the module's docstring)."""
    # Through UTC: astimezone to the instant's own zone would keep it as it is.
    local = instant.astimezone(UTC).astimezone(tz)
    if local.fold == 1 and _ambiguous(local.replace(tzinfo=None), tz):
        raise Invalid(
            f"{label or field} {instant.isoformat()} is the second {local:%H:%M} of "
            f"{local:%Y-%m-%d} in {tz.key} (the clocks go back then), which calendars "
            "cannot express: pick another time",
            field=field,
        )
    return local


def _wall_clock(naive: datetime, tz: ZoneInfo, field: str, label: str) -> datetime:
    aware = naive.replace(tzinfo=tz, fold=0)
    # A time in the gap does not survive a round trip through UTC: zoneinfo moves it.
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise Invalid(
            f"{label} {naive:%Y-%m-%dT%H:%M} does not exist in {tz.key}: the clocks go "
            "forward then. Pick a time outside the change",
            field=field,
        )
    return aware


def _ambiguous(naive: datetime, tz: ZoneInfo) -> bool:
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    return first.utcoffset() != second.utcoffset()
