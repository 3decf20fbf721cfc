"""Scheduled meetings over the API (UC-04): creation, a listing across a DST change,
series and occurrence changes raising SEQUENCE, invitations re-read by icalendar, and every
bad input a clear 4xx, never a 500 and never a half-created series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from pydantic import ValidationError
from sqlalchemy import func, select

from talkplatform_agents.config import Settings
from talkplatform_agents.store import Database
from talkplatform_agents.store.models import Meeting, MeetingSchedule

Auth = Callable[..., dict[str, str]]
BERLIN = "Europe/Berlin"
# Mondays at 09:00 in Berlin from 2026-03-16; clocks go forward on Sunday 2026-03-29.
WEEKLY = {
    "title": "Weekly",
    "start": "2026-03-16T09:00",
    "end": "2026-03-16T09:30",
    "timezone": BERLIN,
    "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
    "attendees": ["Bob@Example.org", "carol", "bob@example.org"],
}
MARCH = {"from": "2026-03-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}


async def _schedule(client: httpx.AsyncClient, auth: Auth, **changes: Any) -> dict[str, Any]:
    reply = await client.post("/api/v1/meetings", json={**WEEKLY, **changes}, headers=auth())
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def _listing(
    client: httpx.AsyncClient, auth: Auth, user: str = "alice", **window: str
) -> list[dict[str, Any]]:
    reply = await client.get("/api/v1/meetings", params=window or MARCH, headers=auth(user))
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["occurrences"]
    return found


async def _invite(client: httpx.AsyncClient, auth: Auth, mid: str, user: str = "alice") -> Any:
    # Any: icalendar types a property lookup as the union of every value type.
    reply = await client.get(f"/api/v1/meetings/{mid}/invite.ics", headers=auth(user))
    assert reply.status_code == 200, reply.text
    return Calendar.from_ical(reply.content)


def _attendees(event: Any) -> list[str]:
    found = event.get("ATTENDEE", [])
    return [str(a) for a in (found if isinstance(found, list) else [found])]


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


async def test_a_scheduled_meeting_is_created_with_its_schedule(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    created = await _schedule(client, auth)
    schedule = created["schedule"]
    assert schedule["start"] == "2026-03-16T09:00:00+01:00"
    assert schedule["end"] == "2026-03-16T09:30:00+01:00"
    assert schedule["timezone"] == BERLIN
    assert schedule["recurrence"] == "FREQ=WEEKLY;COUNT=4;BYDAY=MO"
    assert schedule["attendees"] == ["bob@example.org", "carol"]
    assert schedule["sequence"] == 0 and schedule["cancelledAt"] is None
    # A meeting without a schedule is as it was.
    plain = await client.post("/api/v1/meetings", json={"title": "t"}, headers=auth())
    assert plain.status_code == 201 and plain.json()["schedule"] is None


async def test_the_listing_crosses_a_dst_change_at_the_same_wall_clock_time(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth))["id"]
    found = await _listing(client, auth)
    assert [o["start"] for o in found] == [
        "2026-03-16T09:00:00+01:00",
        "2026-03-23T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",  # summer time: 07:00 UTC, not 08:00
        "2026-04-06T09:00:00+02:00",
    ]
    assert [_utc(o["start"]).hour for o in found] == [8, 8, 7, 7]
    first = found[0]
    assert first["meetingId"] == mid and first["title"] == "Weekly" and first["recurring"]
    assert first["joinUrl"].endswith(f"/app/meeting/{mid}")
    # Attendees see it, by user id or email; others do not.
    assert len(await _listing(client, auth, "carol")) == 4
    assert len(await _listing(client, auth, "bob@example.org")) == 4
    assert await _listing(client, auth, "mallory") == []
    # A window holds what overlaps it.
    week = await _listing(
        client, auth, **{"from": "2026-03-30T07:15:00Z", "to": "2026-03-31T00:00:00+02:00"}
    )
    assert [o["recurrenceId"] for o in week] == ["2026-03-30T09:00:00+02:00"]


async def test_changes_raise_the_sequence_and_the_invitation_follows(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth))["id"]
    first = await _invite(client, auth, mid)
    [event] = first.walk("VEVENT")
    uid = str(event["UID"])
    assert str(first["METHOD"]) == "REQUEST" and int(event["SEQUENCE"]) == 0
    assert str(event["URL"]).endswith(f"/app/meeting/{mid}")
    assert _attendees(event) == ["mailto:bob@example.org"]
    [alarm] = event.walk("VALARM")
    assert alarm["TRIGGER"].dt == -dt.timedelta(minutes=10)
    assert event["DTSTART"].dt == dt.datetime.fromisoformat("2026-03-16T09:00+01:00")

    # The series: an hour later, one more week, dave invited.
    reply = await client.patch(
        f"/api/v1/meetings/{mid}/schedule",
        json={
            "start": "2026-03-16T10:00",
            "end": "2026-03-16T10:30",
            "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=5",
            "attendees": ["bob@example.org", "dave@example.org"],
        },
        headers=auth(),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["sequence"] == 1
    found = await _listing(client, auth)
    assert len(found) == 5 and all(o["start"][11:16] == "10:00" for o in found)

    # One occurrence cancelled, another moved and retitled.
    cancelled = "2026-03-23T10:00:00+01:00"
    reply = await client.delete(f"/api/v1/meetings/{mid}/occurrences/{cancelled}", headers=auth())
    assert reply.status_code == 200, reply.text
    assert reply.json()["sequence"] == 2
    assert reply.json()["exdates"] == [cancelled]
    reply = await client.patch(
        f"/api/v1/meetings/{mid}/occurrences/2026-03-30T10:00",
        json={"start": "2026-03-31T15:00", "title": "Moved"},
        headers=auth(),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["sequence"] == 3
    [override] = reply.json()["overrides"]
    assert override["start"] == "2026-03-31T15:00:00+02:00"
    assert override["end"] == "2026-03-31T15:30:00+02:00"  # its length kept

    found = await _listing(client, auth)
    assert [(o["start"], o["title"]) for o in found] == [
        ("2026-03-16T10:00:00+01:00", "Weekly"),
        ("2026-03-31T15:00:00+02:00", "Moved"),
        ("2026-04-06T10:00:00+02:00", "Weekly"),
        ("2026-04-13T10:00:00+02:00", "Weekly"),
    ]
    assert found[1]["recurrenceId"] == "2026-03-30T10:00:00+02:00"

    again = await _invite(client, auth, mid, "dave@example.org")  # an attendee reads it
    master, moved = again.walk("VEVENT")
    assert str(master["UID"]) == str(moved["UID"]) == uid
    assert int(master["SEQUENCE"]) == 3
    assert _attendees(master) == ["mailto:bob@example.org", "mailto:dave@example.org"]
    exdates = [d.dt for d in master["EXDATE"].dts]
    assert exdates == [dt.datetime.fromisoformat(cancelled)]
    assert moved["RECURRENCE-ID"].dt == dt.datetime.fromisoformat("2026-03-30T10:00+02:00")
    assert str(moved["SUMMARY"]) == "Moved"


async def test_the_invitation_is_text_calendar_with_a_request_method(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth, recurrence=None, attendees=None))["id"]
    reply = await client.get(f"/api/v1/meetings/{mid}/invite.ics", headers=auth())
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/calendar; charset=utf-8; method=REQUEST"
    calendar: Any = Calendar.from_ical(reply.content)
    [event] = calendar.walk("VEVENT")
    assert "RRULE" not in event
    # alice's user id is no email: the organiser is the service's no-reply address.
    assert str(event["ORGANIZER"]).startswith("mailto:noreply@")
    assert calendar.subcomponents[0].name == "VTIMEZONE"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"recurrence": "FREQ=SOMETIMES"}, "recurrence", "FREQ"),
        ({"recurrence": "FREQ=WEEKLY;BYDAY=TU"}, "start", "not an occurrence"),
        ({"end": "2026-03-16T08:00"}, "end", "not after the start"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
        ({"start": "2026-03-29T02:30", "end": "2026-03-29T03:30"}, "start", ""),
        ({"start": "next monday"}, "start", ""),
    ],
)
async def test_a_bad_schedule_is_a_422_that_names_it_and_creates_nothing(
    client: httpx.AsyncClient,
    auth: Auth,
    store: Database,
    changes: dict[str, Any],
    field: str,
    words: str,
) -> None:
    reply = await client.post("/api/v1/meetings", json={**WEEKLY, **changes}, headers=auth())
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and error["field"] == field, error
    assert words in error["message"]
    async with store.session() as session:
        assert await session.scalar(select(func.count()).select_from(Meeting)) == 0
        assert await session.scalar(select(func.count()).select_from(MeetingSchedule)) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t", "start": "2026-03-16T09:00", "end": "2026-03-16T10:00"},
        {"title": "t", "timezone": BERLIN},
        {"title": "t", "recurrence": "FREQ=DAILY"},
        {"title": "t", "attendees": ["bob"]},
        {**WEEKLY, "attendees": ["not an email@x"]},
        {**WEEKLY, "attendees": ["a@b@c"]},
        {**WEEKLY, "attendees": ["x"] * 0 + [f"u{n}" for n in range(201)]},
        {**WEEKLY, "start": 5},
        {**WEEKLY, "organizer": "x@y.z"},
    ],
)
async def test_a_malformed_scheduled_meeting_is_a_422(
    client: httpx.AsyncClient, auth: Auth, store: Database, body: dict[str, Any]
) -> None:
    reply = await client.post("/api/v1/meetings", json=body, headers=auth())
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"
    async with store.session() as session:
        assert await session.scalar(select(func.count()).select_from(Meeting)) == 0


@pytest.mark.parametrize(
    "window",
    [
        {"from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00Z"},  # no offset
        {"from": "2026-04-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},  # backwards
        {"from": "2026-01-01T00:00:00Z", "to": "2027-03-01T00:00:00Z"},  # over 400 days
        {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02T00:00:00Z"},
        {"from": "9999-12-31T00:00:00-14:00", "to": "9999-12-31T23:00:00Z"},
        {"from": "soon", "to": "later"},
        {"to": "2026-04-01T00:00:00Z"},
    ],
)
async def test_a_bad_window_is_a_422(
    client: httpx.AsyncClient, auth: Auth, window: dict[str, str]
) -> None:
    reply = await client.get("/api/v1/meetings", params=window, headers=auth())
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"


async def test_changes_are_for_hosts_of_scheduled_meetings_only(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth))["id"]
    plain = (await client.post("/api/v1/meetings", json={"title": "t"}, headers=auth())).json()
    occurrence = "2026-03-23T09:00"
    cases: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
        ("carol", "PATCH", f"{mid}/schedule", {"end": "2026-03-16T10:00"}, 403),
        ("carol", "DELETE", f"{mid}/schedule", None, 403),
        ("carol", "DELETE", f"{mid}/occurrences/{occurrence}", None, 403),
        ("carol", "PATCH", f"{mid}/occurrences/{occurrence}", {"title": "x"}, 403),
        ("mallory", "GET", f"{mid}/invite.ics", None, 403),
        ("alice", "GET", "nope/invite.ics", None, 404),
        ("alice", "PATCH", "nope/schedule", {"end": "2026-03-16T10:00"}, 404),
        ("alice", "GET", f"{plain['id']}/invite.ics", None, 404),
        ("alice", "DELETE", f"{plain['id']}/schedule", None, 404),
        # Not an occurrence, not a time, a change that does not validate.
        ("alice", "DELETE", f"{mid}/occurrences/2026-03-24T09:00", None, 422),
        ("alice", "DELETE", f"{mid}/occurrences/yesterday", None, 422),
        ("alice", "PATCH", f"{mid}/occurrences/{occurrence}", {"end": "2026-03-23T08:00"}, 422),
        ("alice", "PATCH", f"{mid}/occurrences/{occurrence}", {"when": "now"}, 422),
        ("alice", "PATCH", f"{mid}/schedule", {"recurrence": "FREQ=HOURLY;BYHOUR=99"}, 422),
        ("alice", "PATCH", f"{mid}/schedule", {"timezone": "Nowhere/Land"}, 422),
        ("alice", "PATCH", f"{mid}/schedule", {"attendees": ["<bad>"]}, 422),
    ]
    for user, method, path, body, status in cases:
        reply = await client.request(
            method, f"/api/v1/meetings/{path}", json=body, headers=auth(user)
        )
        assert reply.status_code == status, (user, method, path, reply.text)
        assert "error" in reply.json()
    # Nothing of that changed the schedule.
    stored = (await client.get(f"/api/v1/meetings/{mid}/invite.ics", headers=auth())).text
    assert "SEQUENCE:0" in stored


async def test_a_single_meeting_has_no_occurrences_to_change(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth, recurrence=None))["id"]
    reply = await client.delete(
        f"/api/v1/meetings/{mid}/occurrences/2026-03-16T09:00", headers=auth()
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "recurrence"
    [only] = await _listing(client, auth)
    assert only["recurring"] is False and only["recurrenceId"] == only["start"]


async def test_a_stale_edit_is_a_conflict(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    """Two hosts editing at once: the one whose read went stale gets a 409, not a lost
    update (the store's conditional update on SEQUENCE)."""
    from talkplatform_agents.errors import Conflict
    from talkplatform_agents.store import ScheduleRepository

    mid = (await _schedule(client, auth))["id"]
    repo = ScheduleRepository(store)
    view = await repo.get(mid)
    assert view is not None
    await repo.update(mid, view.record, if_sequence=0)
    with pytest.raises(Conflict):
        await repo.update(mid, view.record, if_sequence=0)


async def test_a_cancelled_series_is_a_cancel_and_leaves_the_listing(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth))["id"]
    first = await _invite(client, auth, mid)
    uid = str(first.walk("VEVENT")[0]["UID"])
    # The whole series cancelled: a CANCEL, nothing listed, no more changes.
    reply = await client.delete(f"/api/v1/meetings/{mid}/schedule", headers=auth())
    assert reply.status_code == 200 and reply.json()["sequence"] == 1
    assert reply.json()["cancelledAt"] is not None
    repeated = await client.delete(f"/api/v1/meetings/{mid}/schedule", headers=auth())
    assert repeated.status_code == 200 and repeated.json()["sequence"] == 1
    ics = await client.get(f"/api/v1/meetings/{mid}/invite.ics", headers=auth())
    assert ics.headers["content-type"] == "text/calendar; charset=utf-8; method=CANCEL"
    cancel: Any = Calendar.from_ical(ics.content)
    assert str(cancel["METHOD"]) == "CANCEL"
    [event] = cancel.walk("VEVENT")
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == 1
    assert str(event["STATUS"]) == "CANCELLED"
    assert await _listing(client, auth) == []
    gone = await client.patch(
        f"/api/v1/meetings/{mid}/schedule", json={"end": "2026-03-16T11:00"}, headers=auth()
    )
    assert gone.status_code == 410, gone.text


@pytest.mark.parametrize(
    ("url", "fine"),
    [
        ("smtp://mail.test:2525", True),
        ("smtp://mail.test", True),
        ("", True),
        ("http://mail.test:25", False),
        ("smtp://:25", False),
        ("smtp://mail.test:99999", False),
        ("smtp://mail.test/x", False),
    ],
)
def test_the_smtp_url_is_checked_when_read(settings: Settings, url: str, fine: bool) -> None:
    values: dict[str, Any] = {"DATABASE_URL": settings.database_url, "SMTP_URL": url}
    if fine:
        assert Settings(_env_file=None, **values).smtp_url == (url or None)
    else:
        with pytest.raises(ValidationError, match="SMTP_URL"):
            Settings(_env_file=None, **values)


async def test_a_new_start_alone_keeps_the_length_and_an_empty_change_is_refused(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = (await _schedule(client, auth))["id"]
    empty = await client.patch(f"/api/v1/meetings/{mid}/schedule", json={}, headers=auth())
    assert empty.status_code == 422, empty.text
    reply = await client.patch(
        f"/api/v1/meetings/{mid}/schedule", json={"start": "2026-03-16T14:00"}, headers=auth()
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["end"] == "2026-03-16T14:30:00+01:00"
    single = await client.patch(
        f"/api/v1/meetings/{mid}/schedule", json={"recurrence": None}, headers=auth()
    )
    assert single.status_code == 200 and single.json()["recurrence"] is None
    # The meeting itself says when it is.
    meeting = await client.get(f"/api/v1/meetings/{mid}", headers=auth("carol"))
    assert meeting.status_code == 200
    assert meeting.json()["schedule"]["sequence"] == 2
    assert meeting.json()["schedule"]["start"] == "2026-03-16T14:00:00+01:00"


def test_the_core_refusals_become_422s_of_the_one_error_tree() -> None:
    from talkplatform_agents.errors import Invalid, Unprocessable

    error = Unprocessable.of(Invalid("end is not after the start", field="end"))
    assert isinstance(error, Invalid) and error.status == 422
    assert error.body() == {
        "error": {
            "code": "invalid_request",
            "message": "end is not after the start",
            "field": "end",
        }
    }
    assert Unprocessable.of(error) is error
