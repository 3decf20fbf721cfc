"""CalDAV sync (UC-04) against a real Radicale in the test namespace: a scheduled meeting is
published, its edit and its cancellation follow; an event tagged with the category becomes a
meeting; what cannot be read is skipped; a second pass changes nothing; and the CLI runs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from talkplatform_agents.calendar import ExternalEvent, Schedule, read_events
from talkplatform_agents.calendar.caldav import CalDavClient
from talkplatform_agents.calendar.stored import record_of
from talkplatform_agents.calendar.sync import SyncReport, sync_user
from talkplatform_agents.config import Settings
from talkplatform_agents.errors import Invalid
from talkplatform_agents.harness.netns import NetNamespace
from talkplatform_agents.harness.radicale import RadicaleServer
from talkplatform_agents.store import Database, ScheduleRepository

from .conftest import cli

pytestmark = pytest.mark.integration

USER = "dana-caldav"
ZONE = "Europe/Berlin"


@pytest.fixture(scope="module")
def radicale(
    netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RadicaleServer]:
    run_dir: Path = tmp_path_factory.mktemp("radicale")
    with RadicaleServer(run_dir, netns.address) as server:
        yield server


def _event(uid: str, body: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@dataclass
class Calendar:
    """The user's calendar as the test sees it (directly over CalDAV), and the store."""

    settings: Settings
    db: Database
    dav: CalDavClient
    day: str

    @property
    def schedules(self) -> ScheduleRepository:
        return ScheduleRepository(self.db)

    async def sync(self) -> SyncReport:
        return await sync_user(USER, self.settings, self.db)

    async def events(self) -> dict[str, ExternalEvent]:
        listing = await self.dav.changes(None)
        found = {}
        for obj in await self.dav.fetch(sorted(listing.changed)):
            try:
                found.update({e.uid: e for e in read_events(obj.data)})
            except Invalid:  # the unreadable one put in _import
                continue
        return found


async def test_caldav_sync_both_ways(
    radicale: RadicaleServer,
    live_settings: Settings,
    api: httpx.AsyncClient,
    user_auth: Callable[..., dict[str, str]],
) -> None:
    url = radicale.make_calendar(USER)
    settings = live_settings.model_copy(
        update={
            "caldav_url": f"{radicale.url}/{{user}}/calendar/",
            "caldav_username": "talkplatform",
            "caldav_password": SecretStr("app-password"),
        }
    )
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).date().isoformat()
    async with httpx.AsyncClient(auth=("talkplatform", "app-password"), timeout=10) as http:
        db = Database(settings.database_url)
        try:
            calendar = Calendar(settings, db, CalDavClient(http, url), day)
            meeting_id, uid = await _publish_and_edit(calendar)
            imported = await _import(calendar)
            reply = await api.get(f"/api/v1/meetings/{imported}", headers=user_auth(USER, "Dana"))
            assert reply.status_code == 200 and reply.json()["title"] == "Design chat", reply.text
            await _cancel_and_repeat(calendar, meeting_id, uid)
        finally:
            await db.aclose()

    # The CLI runs the same pass (nothing left to do), and says so.
    ran = cli(settings, "calendar", "sync", "--user", USER)
    assert ran.returncode == 0, ran.stderr
    assert "published: 0" in ran.stdout and "imported: 0" in ran.stdout, ran.stdout
    down = settings.model_copy(update={"caldav_url": "http://127.0.0.1:9/{user}/calendar/"})
    failed = cli(down, "calendar", "sync", "--user", USER)
    assert failed.returncode == 1 and "calendar sync failed" in failed.stderr, failed.stderr


async def _publish_and_edit(calendar: Calendar) -> tuple[str, str]:
    """A scheduled meeting is published; an edit follows (SEQUENCE raised, If-Match)."""
    day = calendar.day
    weekly = Schedule.parse(f"{day}T09:00", f"{day}T09:30", ZONE, "FREQ=WEEKLY;COUNT=3")
    meeting, view = await calendar.schedules.create(
        title="Weekly review", settings={}, host_user_id=USER, host_name="Dana",
        record=record_of(weekly, (), None),
    )  # fmt: skip
    report = await calendar.sync()
    assert report.published == [meeting.id], report
    ours = [e for e in (await calendar.events()).values() if e.join_meeting_id == meeting.id]
    assert len(ours) == 1 and ours[0].summary == "Weekly review"
    assert ours[0].schedule.start.hour == 9 and ours[0].schedule.rrule == weekly.rrule
    uid = ours[0].uid

    later = Schedule.parse(f"{day}T11:00", f"{day}T12:00", ZONE, "FREQ=WEEKLY;COUNT=3")
    await calendar.schedules.update(
        meeting.id, record_of(later, (), None), if_sequence=view.sequence
    )
    report = await calendar.sync()
    assert report.updated == [meeting.id] and not report.published, report
    edited = (await calendar.events())[uid]
    assert (edited.schedule.start.hour, edited.sequence) == (11, 1)
    return meeting.id, uid


async def _import(calendar: Calendar) -> str:
    """Events created in the calendar: tagged (imported), unreadable, a stray join link."""
    dav, day = calendar.dav, calendar.day.replace("-", "")
    tagged = f"DTSTART;TZID={ZONE}:{day}T150000\r\nDTEND;TZID={ZONE}:{day}T153000\r\n" \
             "SUMMARY:Design chat\r\nCATEGORIES:Work,TalkPlatform\r\n"  # fmt: skip
    await dav.put(f"{dav.path}design.ics", _event("design-1", tagged))
    # Radicale stores it (it checks syntax only); the sync cannot place it in time.
    unknown_zone = "DTSTART;TZID=Mars/Olympus:20260301T100000\r\n" \
                   "DTEND;TZID=Mars/Olympus:20260301T110000\r\n" \
                   "SUMMARY:On Mars\r\nCATEGORIES:TalkPlatform\r\n"  # fmt: skip
    await dav.put(f"{dav.path}mars.ics", _event("mars-1", unknown_zone))
    stray = "DTSTART:20260301T100000Z\r\nDTEND:20260301T110000Z\r\nSUMMARY:Old\r\n" \
            f"URL:{calendar.settings.api_url}/app/meeting/nosuchmeeting\r\n"  # fmt: skip
    await dav.put(f"{dav.path}stray.ics", _event("stray-1", stray))

    report = await calendar.sync()
    assert len(report.imported) == 1 and not report.published and not report.updated, report
    skipped = " ".join(report.skipped)
    assert "mars.ics" in skipped and "stray.ics" in skipped and "design" not in skipped
    imported = report.imported[0]
    stored = await calendar.schedules.get(imported)
    assert stored is not None and stored.record.start_local == f"{calendar.day}T15:00:00"
    # Its event now carries the join link, so it is never imported again.
    assert (await calendar.events())["design-1"].join_meeting_id == imported
    return imported


async def _cancel_and_repeat(calendar: Calendar, meeting_id: str, uid: str) -> None:
    """A cancellation follows; then a pass changes nothing: no writes, no new meetings."""
    await calendar.schedules.cancel(meeting_id)
    report = await calendar.sync()
    assert report.deleted == [meeting_id], report
    before = await calendar.events()
    assert uid not in before

    report = await calendar.sync()
    assert not report.wrote and not report.linked, report
    assert (await calendar.events()).keys() == before.keys()
