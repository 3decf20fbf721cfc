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
        ({"start": "2026-03-29T02:30", "end": "2026-03-29T03:30"}, "start", "does not exist"),
        ({"start": "next monday"}, "start", "not an ISO 8601 date and time"),
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


@pytest.mark.parametrize(
    "title", ["Weekly\r\nBcc: x@evil.test", "a\nb", "tab\there", "nel\x85", "del\x7f", "   "]
)
async def test_a_title_with_control_characters_or_only_spaces_is_a_422(
    client: httpx.AsyncClient, auth: Auth, store: Database, title: str
) -> None:
    """Review finding 3: a line break in a title reached the email's Subject and raised
    after the meeting was stored (a 500, and a retry duplicated it)."""
    reply = await client.post("/api/v1/meetings", json={**WEEKLY, "title": title}, headers=auth())
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"
    async with store.session() as session:
        assert await session.scalar(select(func.count()).select_from(Meeting)) == 0
    mid = (await _schedule(client, auth))["id"]
    retitled = await client.patch(
        f"/api/v1/meetings/{mid}/occurrences/2026-03-23T09:00",
        json={"title": title},
        headers=auth(),
    )
    assert retitled.status_code == 422, retitled.text


async def test_an_email_that_cannot_be_built_is_logged_never_raised(
    settings: Settings, store: Database, client: httpx.AsyncClient, auth: Auth
) -> None:
    """A title stored before the check (or any message the mail library refuses): the
    change is made, its email is not; the Subject never carries a line break."""
    import dataclasses

    from fastapi import BackgroundTasks

    from talkplatform_agents.service.scheduling import Invitations
    from talkplatform_agents.store import MeetingRepository, ScheduleRepository

    mid = (await _schedule(client, auth))["id"]
    meeting = await MeetingRepository(store).get(mid)
    view = await ScheduleRepository(store).get(mid)
    assert meeting is not None and view is not None
    links = Invitations(settings.model_copy(update={"smtp_url": "smtp://mail.test"}))
    tasks = BackgroundTasks()
    stored = dataclasses.replace(meeting, title="Weekly\r\nBcc: x@evil.test\x85")
    links.mail(tasks, stored, view, "REQUEST")
    [task] = tasks.tasks
    message: Any = task.args[1]
    assert message["Subject"] == "Invitation: Weekly  Bcc: x@evil.test "
    assert message["Bcc"] is None
    # A message that cannot be built at all: logged, nothing queued, nothing raised.
    broken = dataclasses.replace(view, record=dataclasses.replace(view.record, rrule="FREQ=X"))
    tasks = BackgroundTasks()
    links.mail(tasks, meeting, broken, "REQUEST")
    assert tasks.tasks == []


async def test_only_hosts_and_attendees_read_who_is_invited(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """Review finding 8: the meeting id is in every join link, so anyone signed in could
    read the attendees' emails from GET /api/v1/meetings/{id}."""
    created = await _schedule(client, auth)
    mid = created["id"]
    assert created["schedule"]["attendees"] == ["bob@example.org", "carol"]  # the host
    for user in ("alice", "carol", "bob@example.org"):
        seen = (await client.get(f"/api/v1/meetings/{mid}", headers=auth(user))).json()
        assert seen["schedule"]["attendees"] == ["bob@example.org", "carol"], user
    other = await client.get(f"/api/v1/meetings/{mid}", headers=auth("mallory"))
    assert other.status_code == 200, other.text
    schedule = other.json()["schedule"]
    assert schedule["attendees"] == [] and schedule["organizerEmail"] is None
    assert schedule["start"] == "2026-03-16T09:00:00+01:00"  # the rest is public
    # An organiser with an email: shown to attendees, hidden from others.
    own = await client.post("/api/v1/meetings", json=WEEKLY, headers=auth("dan@example.org"))
    assert own.json()["schedule"]["organizerEmail"] == "dan@example.org"
    hidden = await client.get(f"/api/v1/meetings/{own.json()['id']}", headers=auth("mallory"))
    assert hidden.json()["schedule"]["organizerEmail"] is None
    shown = await client.get(f"/api/v1/meetings/{own.json()['id']}", headers=auth("carol"))
    assert shown.json()["schedule"]["organizerEmail"] == "dan@example.org"


async def test_an_ended_meeting_keeps_its_schedule(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    """Review finding 1 (part): an ended meeting refuses every schedule edit with 410."""
    from talkplatform_agents.store import MeetingRepository

    mid = (await _schedule(client, auth))["id"]
    await MeetingRepository(store).end(mid)
    occurrence = f"{mid}/occurrences/2026-03-23T09:00"
    cases: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"{mid}/schedule", {"end": "2026-03-16T10:00"}),
        ("DELETE", f"{mid}/schedule", None),
        ("PATCH", occurrence, {"title": "x"}),
        ("DELETE", occurrence, None),
    ]
    for method, path, body in cases:
        reply = await client.request(method, f"/api/v1/meetings/{path}", json=body, headers=auth())
        assert reply.status_code == 410, (method, path, reply.text)
        assert "ended" in reply.json()["error"]["message"]
    # Nothing changed; the invitation is still readable.
    assert (
        "SEQUENCE:0"
        in (await client.get(f"/api/v1/meetings/{mid}/invite.ics", headers=auth())).text
    )


# Daily at 02:30 in Berlin from 2026-03-27; on 2026-03-29 02:30 falls in the DST gap.
GAP_DAILY = {
    "start": "2026-03-27T02:30",
    "end": "2026-03-27T03:00",
    "recurrence": "FREQ=DAILY;COUNT=5",
}
GAP_WINDOW = {"from": "2026-03-26T00:00:00Z", "to": "2026-04-02T00:00:00Z"}


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
async def test_an_occurrence_in_a_spring_forward_gap_can_be_cancelled_or_moved(
    client: httpx.AsyncClient, auth: Auth, method: str
) -> None:
    """Review finding 4: daily 02:30 Europe/Berlin; on 2026-03-29 the listing names the
    occurrence 02:30+01:00, and cancelling or moving it by that name was a 422."""
    mid = (await _schedule(client, auth, **GAP_DAILY))["id"]
    listed = await _listing(client, auth, **GAP_WINDOW)
    gap = listed[2]["recurrenceId"]
    assert gap == "2026-03-29T02:30:00+01:00"
    body = {"start": "2026-03-29T10:00", "end": "2026-03-29T10:30"} if method == "PATCH" else None
    reply = await client.request(
        method, f"/api/v1/meetings/{mid}/occurrences/{gap}", json=body, headers=auth()
    )
    assert reply.status_code == 200, reply.text
    after = await _listing(client, auth, **GAP_WINDOW)
    if method == "DELETE":
        assert len(after) == 4
        assert all(_utc(o["start"]) != _utc(gap) for o in after)
    else:
        moved = [o for o in after if _utc(o["recurrenceId"]) == _utc(gap)]
        assert [o["start"] for o in moved] == ["2026-03-29T10:00:00+02:00"]


async def test_retitling_an_occurrence_across_fall_back_keeps_its_end(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """Review finding 5: 01:30-03:30 Berlin daily; on 2026-10-25 (clocks go back at 03:00)
    the occurrence lasts three real hours. Retitling it computed the end in UTC (the
    second 02:30, a 422); it keeps the expansion's wall-clock end now."""
    mid = (
        await _schedule(
            client,
            auth,
            start="2026-10-24T01:30",
            end="2026-10-24T03:30",
            recurrence="FREQ=DAILY;COUNT=3",
        )
    )["id"]
    window = {"from": "2026-10-24T00:00:00Z", "to": "2026-10-28T00:00:00Z"}
    before = (await _listing(client, auth, **window))[1]
    assert before["end"] == "2026-10-25T03:30:00+01:00"
    reply = await client.patch(
        f"/api/v1/meetings/{mid}/occurrences/{before['recurrenceId']}",
        json={"title": "Renamed"},
        headers=auth(),
    )
    assert reply.status_code == 200, reply.text
    [override] = reply.json()["overrides"]
    assert override["end"] == "2026-10-25T03:30:00+01:00" and override["title"] == "Renamed"
    after = (await _listing(client, auth, **window))[1]
    assert (after["start"], after["end"], after["title"]) == (
        before["start"],
        before["end"],
        "Renamed",
    )
    # A new start alone keeps the wall-clock length (two hours on the clock).
    moved = await client.patch(
        f"/api/v1/meetings/{mid}/occurrences/{before['recurrenceId']}",
        json={"start": "2026-10-25T10:00"},
        headers=auth(),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["overrides"][0]["end"] == "2026-10-25T12:00:00+01:00"


async def test_a_new_zone_keeps_until_and_the_answer_names_what_was_reset(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """Review finding 6: daily 09:00 "until 2026-03-10" in Asia/Tokyo moved to
    America/Los_Angeles lost 10 March (UNTIL kept as the Tokyo instant); and a change that
    forgets cancelled or moved occurrences now says so."""
    mid = (
        await _schedule(
            client,
            auth,
            start="2026-03-06T09:00",
            end="2026-03-06T10:00",
            timezone="Asia/Tokyo",
            recurrence="FREQ=DAILY;UNTIL=20260310",
        )
    )["id"]
    cancelled = await client.delete(
        f"/api/v1/meetings/{mid}/occurrences/2026-03-07T09:00", headers=auth()
    )
    assert cancelled.status_code == 200, cancelled.text
    reply = await client.patch(
        f"/api/v1/meetings/{mid}/schedule",
        json={"timezone": "America/Los_Angeles"},
        headers=auth(),
    )
    assert reply.status_code == 200, reply.text
    changed = reply.json()
    assert changed["resetOccurrences"] == ["2026-03-07T09:00:00+09:00"]
    assert changed["exdates"] == []
    window = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-20T00:00:00Z"}
    starts = [o["start"][:10] for o in await _listing(client, auth, **window)]
    assert starts == ["2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]
    # A change that keeps the pattern resets nothing.
    kept = await client.patch(
        f"/api/v1/meetings/{mid}/schedule", json={"attendees": ["carol"]}, headers=auth()
    )
    assert kept.status_code == 200 and kept.json()["resetOccurrences"] == []


async def test_removed_attendees_get_a_cancel_that_names_them(
    settings: Settings, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 5546: the CANCEL sent to attendees taken off a series lists them as ATTENDEE
    (it was built from the saved record, which no longer had them)."""
    from talkplatform_agents.service.scheduling import Invitations

    from .conftest import running_app

    sent: list[tuple[Any, list[str]]] = []

    async def capture(server: Any, message: Any, recipients: list[str], meeting_id: str) -> None:
        sent.append((message, recipients))

    monkeypatch.setattr(Invitations, "_send", staticmethod(capture))
    with_mail = settings.model_copy(update={"smtp_url": "smtp://mail.test"})
    async with running_app(with_mail) as (_, client):
        mid = (await _schedule(client, auth))["id"]
        sent.clear()
        reply = await client.patch(
            f"/api/v1/meetings/{mid}/schedule", json={"attendees": ["carol"]}, headers=auth()
        )
        assert reply.status_code == 200, reply.text
    [(message, recipients)] = [(m, r) for m, r in sent if m["Subject"].startswith("Cancelled:")]
    assert recipients == ["bob@example.org"]
    ics = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    cancel: Any = Calendar.from_ical(ics.get_content())
    assert str(cancel["METHOD"]) == "CANCEL"
    [event] = cancel.walk("VEVENT")
    assert _attendees(event) == ["mailto:bob@example.org"]
