"""The sync's decisions, with an in-memory calendar, store and meeting maker: publish,
follow edits and cancellations, import tagged events once, skip what cannot be read, and a
second pass that changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field, replace

import pytest
from icalendar import Calendar

from talkplatform_agents.calendar import Schedule, read_events
from talkplatform_agents.calendar.caldav import (
    CalDavError,
    CalendarObject,
    Changes,
    CollectionState,
)
from talkplatform_agents.calendar.stored import record_of
from talkplatform_agents.calendar.sync import SyncOptions, sync_calendar
from talkplatform_agents.store.calendar_sync import CalendarItemView, CalendarSyncView
from talkplatform_agents.store.meetings import MeetingView
from talkplatform_agents.store.schedules import ScheduleView

UTC = dt.UTC
OPTIONS = SyncOptions("https://talk.example.com", "TalkPlatform")
PATH = "/alice/calendar/"
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeCalendar:
    url: str = "http://dav.test/alice/calendar/"
    path: str = PATH
    objects: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (version, href) changed
    version: int = 0
    etags: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    puts: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def write(self, href: str, data: bytes) -> str:
        etag = f'"e{next(self.etags)}"'
        self.objects[href] = (etag, data)
        self.version += 1
        self.log.append((self.version, href))
        return etag

    async def state(self) -> CollectionState:
        return CollectionState(f'"c{self.version}"', f"tok-{self.version}")

    async def changes(self, sync_token: str | None) -> Changes:
        since = int(sync_token.removeprefix("tok-")) if sync_token else 0
        touched = {h for v, h in self.log if v > since}
        changed: dict[str, str | None] = {
            h: self.objects[h][0] for h in touched if h in self.objects
        }
        removed = [h for h in touched if h not in self.objects] if sync_token else []
        return Changes(f"tok-{self.version}", changed, removed, full=not sync_token)

    async def fetch(self, hrefs: list[str]) -> list[CalendarObject]:
        return [CalendarObject(h, *self.objects[h]) for h in hrefs if h in self.objects]

    async def put(self, href: str, data: bytes, *, etag: str | None = None) -> str | None:
        current = self.objects.get(href)
        if (etag is None and current) or (etag and (not current or current[0] != etag)):
            raise CalDavError("PUT refused", url=href, status=412)
        self.puts.append(href)
        return self.write(href, data)

    async def delete(self, href: str, *, etag: str | None) -> None:
        self.deletes.append(href)
        self.objects.pop(href, None)
        self.version += 1
        self.log.append((self.version, href))


@dataclass
class FakeStore:
    meetings: dict[str, tuple[MeetingView, ScheduleView]] = field(default_factory=dict)
    sync: CalendarSyncView | None = None
    stored: dict[str, CalendarItemView] = field(default_factory=dict)

    async def state(self, user_id: str) -> CalendarSyncView | None:
        return self.sync

    async def save_state(
        self, user_id: str, collection_url: str, sync_token: str | None, ctag: str | None
    ) -> None:
        self.sync = CalendarSyncView(user_id, collection_url, sync_token, ctag, NOW)

    async def items(self, user_id: str) -> list[CalendarItemView]:
        return list(self.stored.values())

    async def put_item(self, item: CalendarItemView) -> None:
        self.stored[item.href] = item

    async def forget_item(self, user_id: str, href: str) -> None:
        self.stored.pop(href, None)

    async def hosted(self, user_id: str) -> list[tuple[MeetingView, ScheduleView]]:
        return list(self.meetings.values())

    async def meeting_exists(self, meeting_id: str) -> bool:
        return meeting_id in self.meetings


@dataclass
class FakeMaker:
    store: FakeStore
    made: list[tuple[str, Schedule]] = field(default_factory=list)

    async def create(self, user_id: str, title: str, schedule: Schedule) -> str:
        meeting_id = f"m{len(self.made) + 1}"
        self.made.append((title, schedule))
        self.store.meetings[meeting_id] = _hosted(meeting_id, title, schedule)
        return meeting_id


def _schedule(hour: int = 9) -> Schedule:
    return Schedule.parse(f"2026-03-23T{hour:02}:00", f"2026-03-23T{hour:02}:30",
                          "Europe/Berlin", "FREQ=WEEKLY;COUNT=4")  # fmt: skip


def _hosted(
    meeting_id: str, title: str, schedule: Schedule, sequence: int = 0
) -> tuple[MeetingView, ScheduleView]:
    meeting = MeetingView(meeting_id, title, {}, "alice", NOW, None)
    view = ScheduleView(meeting_id, record_of(schedule, (), None), sequence, None, NOW, NOW)
    return meeting, view


def _event(
    uid: str, *, extra: str = "", start: str = "20260324T100000Z", end: str = "20260324T110000Z"
) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\n"
        f"DTEND:{end}\r\nSUMMARY:Planning\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture
def world() -> tuple[FakeCalendar, FakeStore, FakeMaker]:
    store = FakeStore()
    return FakeCalendar(), store, FakeMaker(store)


async def _sync(world: tuple[FakeCalendar, FakeStore, FakeMaker]):  # type: ignore[no-untyped-def]
    calendar, store, maker = world
    return await sync_calendar("alice", calendar, store, maker, OPTIONS)


async def test_publish_follow_edit_and_cancel_then_nothing(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    calendar, store, _ = world
    store.meetings["m1"] = _hosted("m1", "Weekly", _schedule())
    report = await _sync(world)
    assert report.published == ["m1"]
    href = f"{PATH}talkplatform-m1.ics"
    published = Calendar.from_ical(calendar.objects[href][1])
    assert "METHOD" not in published
    event = read_events(calendar.objects[href][1], join_base=OPTIONS.base)[0]
    assert event.uid == "meeting-m1@talk.example.com"
    assert event.join_meeting_id == "m1" and event.schedule.rrule == "FREQ=WEEKLY;COUNT=4"
    assert "ORGANIZER" not in published.events[0] and "ATTENDEE" not in published.events[0]

    again = await _sync(world)  # its own PUT comes back in the changes: not fetched again
    assert not again.wrote and calendar.puts == [href]

    store.meetings["m1"] = _hosted("m1", "Weekly", _schedule(10), sequence=1)
    report = await _sync(world)
    assert report.updated == ["m1"] and calendar.puts == [href, href]
    assert read_events(calendar.objects[href][1])[0].schedule.start.hour == 10

    meeting, view = store.meetings["m1"]
    store.meetings["m1"] = (meeting, replace(view, sequence=2, cancelled_at=NOW))
    report = await _sync(world)
    assert report.deleted == ["m1"] and href not in calendar.objects
    assert not store.stored
    assert not (await _sync(world)).wrote


async def test_tagged_event_becomes_a_meeting_once(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    calendar, store, maker = world
    href = f"{PATH}outside.ics"
    calendar.write(href, _event("outside-1", extra="CATEGORIES:Work,talkplatform\r\n"))
    calendar.write(f"{PATH}other.ics", _event("unrelated"))
    report = await _sync(world)
    assert report.imported == ["m1"] and report.published == [] and not report.skipped
    title, schedule = maker.made[0]
    assert title == "Planning" and schedule.start == dt.datetime(2026, 3, 24, 10, tzinfo=UTC)
    # The event now carries the join link, and is not published over.
    event = read_events(calendar.objects[href][1], join_base=OPTIONS.base)[0]
    assert event.join_meeting_id == "m1" and event.uid == "outside-1"
    assert store.stored[href].origin == "imported" and store.stored[href].meeting_id == "m1"
    assert calendar.puts == [href]

    again = await _sync(world)
    assert not again.wrote and len(maker.made) == 1 and calendar.puts == [href]


async def test_unknown_join_link_and_malformed_objects_are_skipped(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    calendar, store, maker = world
    store.meetings["known"] = _hosted("known", "Known", _schedule())
    link = "URL:https://talk.example.com/app/meeting/{}\r\nCATEGORIES:TalkPlatform\r\n"
    calendar.write(f"{PATH}unknown.ics", _event("u1", extra=link.format("nosuch")))
    calendar.write(f"{PATH}known.ics", _event("u2", extra=link.format("known")))
    calendar.write(f"{PATH}broken.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:nonsense\r\n")
    tagged = "CATEGORIES:TalkPlatform\r\n"
    calendar.write(
        f"{PATH}allday.ics", _event("u3", start="20260324", end="20260325", extra=tagged)
    )
    report = await _sync(world)
    assert maker.made == [] and report.imported == []
    assert report.linked == ["known"]
    skipped = sorted(s.split(":")[0] for s in report.skipped)
    assert skipped == [f"{PATH}allday.ics", f"{PATH}broken.ics", f"{PATH}unknown.ics"]
    assert store.stored[f"{PATH}known.ics"].origin == "imported"
    # The user's own event stands for the meeting: no second object beside it.
    assert report.published == []
    assert not (await _sync(world)).wrote


async def test_lost_state_adopts_published_objects(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    _, store, _ = world
    store.meetings["m1"] = _hosted("m1", "Weekly", _schedule())
    await _sync(world)
    store.stored.clear()
    store.sync = None
    report = await _sync(world)
    assert not report.wrote and store.stored[f"{PATH}talkplatform-m1.ics"].origin == "published"


async def test_an_invalid_token_gives_a_full_listing_and_forgets_removed_objects(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    calendar, store, _ = world
    store.meetings["m1"] = _hosted("m1", "Weekly", _schedule())
    await _sync(world)
    href = f"{PATH}talkplatform-m1.ics"
    del calendar.objects[href]  # deleted in the calendar, and the token history lost
    assert store.sync is not None
    store.sync = replace(store.sync, sync_token=None)
    report = await _sync(world)
    assert report.published == ["m1"] and href in calendar.objects  # published again


async def test_control_characters_in_an_imported_summary_become_spaces(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    calendar, _, maker = world
    data = _event("ctl-1", extra="CATEGORIES:TalkPlatform\r\n").replace(
        b"SUMMARY:Planning", b"SUMMARY:Plan\\nning\\N\x01Bcc: x@example.com"
    )
    calendar.write(f"{PATH}ctl.ics", data)
    report = await _sync(world)
    assert report.imported == ["m1"]
    title = maker.made[0][0]
    assert title == "Plan ning Bcc: x@example.com"
    assert not any(ord(c) < 32 for c in title)


async def test_an_href_too_long_to_store_is_a_logged_skip_not_an_aborted_pass(
    world: tuple[FakeCalendar, FakeStore, FakeMaker],
) -> None:
    calendar, store, maker = world
    long_href = f"{PATH}{'x' * 600}.ics"
    tagged = "CATEGORIES:TalkPlatform\r\n"
    calendar.write(long_href, _event("long-1", extra=tagged))
    calendar.write(f"{PATH}short.ics", _event("short-1", extra=tagged))
    store.meetings["p1"] = _hosted("p1", "Weekly", _schedule())
    report = await _sync(world)
    assert report.imported == ["m1"] and report.published == ["p1"]
    assert [s for s in report.skipped if "longer than 512" in s]
    assert long_href not in store.stored and len(maker.made) == 1
    assert all(len(h) <= 512 for h in store.stored)


@dataclass
class TokenlessCalendar(FakeCalendar):
    """A server without sync-collection: no sync token, a full listing by etags."""

    listings: int = 0

    async def state(self) -> CollectionState:
        return CollectionState(f'"c{self.version}"', None)

    async def changes(self, sync_token: str | None) -> Changes:
        assert sync_token is None
        self.listings += 1
        changed: dict[str, str | None] = {h: e for h, (e, _) in self.objects.items()}
        return Changes(None, changed, [], full=True)


async def test_without_sync_tokens_an_unchanged_ctag_skips_the_listing() -> None:
    store = FakeStore()
    calendar, maker = TokenlessCalendar(), FakeMaker(store)
    world = (calendar, store, maker)
    href = f"{PATH}outside.ics"
    calendar.write(href, _event("outside-1", extra="CATEGORIES:TalkPlatform\r\n"))
    report = await _sync(world)
    assert report.imported == ["m1"] and calendar.listings == 1
    # Its own PUT (the join link) changed the ctag: listed once, nothing fetched or done.
    again = await _sync(world)
    assert not again.wrote and calendar.listings == 2
    assert not (await _sync(world)).wrote and calendar.listings == 2  # ctag unchanged
    del calendar.objects[href]  # deleted in the calendar: the ctag moves
    calendar.version += 1
    await _sync(world)
    assert calendar.listings == 3 and href not in store.stored
