"""CalDAV sync of one user's calendar (UC-04): meetings out, tagged events in.

``sync_calendar`` runs one pass, in this order:

1. **Read** what changed in the collection since the stored sync token (RFC 6578; a
   PROPFIND first: an unchanged token means nothing to read; a server without
   sync-collection is listed by etags, and not at all while its ctag is the one saved).
   Hrefs too long to store are logged skips. Objects whose etag is the
   one the sync last wrote or read are not fetched again: that is how its own writes of
   the previous pass come back without effect.
2. **Import** each new object: one that the sync published before (its UID is
   ``meeting-<id>@<domain>``, its meeting hosted by the user) is adopted again; one with a
   TalkPlatform join link is linked to that meeting, or skipped with a log line when the
   meeting is unknown; one with the category (``CALDAV_CATEGORY``) and no join link
   becomes a new meeting with the event's schedule, the user its host (meeting and
   schedule in one transaction), and the event is rewritten with the join link (URL and
   DESCRIPTION) so that it is never imported twice. Anything else is left alone. An
   object ``read_events`` refuses (malformed, all-day, an unknown zone...) is a logged
   skip, and no meeting is created from it.
3. **Publish** each scheduled meeting the user hosts: a new one is PUT with
   ``If-None-Match: *``, a changed one (its SEQUENCE above the one published) with
   ``If-Match`` on the etag the sync knows, and a cancelled series is DELETEd.
4. **Save** the sync token read in step 1 (not a later one: a change made by someone else
   during the pass must not be missed; the sync's own writes come back next time and are
   recognised by their etags).

Decisions worth knowing:
- The published object is the invitation (``ics.invitation``, same UID and SEQUENCE as the
  emailed one, so clients merge them) without METHOD (a CalDAV object has none) and
  without ORGANIZER and ATTENDEE: with those, servers that do implicit scheduling
  (RFC 6638: Nextcloud, iCloud, Google) would email the attendees a second invitation.
- The platform owns the meetings it publishes: edits made to them in the calendar are not
  carried back (their new etag is recorded, and the next change of the meeting replaces
  them); a published object deleted in the calendar is published again on the next pass
  while the meeting stands.
- An imported event stays the user's: later edits to it are not carried into the meeting
  (its etag is recorded), and the meeting is not published back over it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import quote

import httpx
from icalendar import Calendar, Event

from talkplatform_agents.calendar.caldav import (
    CalDavClient,
    CalDavError,
    CalendarObject,
    Changes,
    CollectionState,
)
from talkplatform_agents.calendar.external import ExternalEvent, read_events
from talkplatform_agents.calendar.ics import InviteMeeting, invitation, meeting_uid
from talkplatform_agents.calendar.links import (
    join_url,
    organizer_email,
    organizer_or_noreply,
    uid_domain,
)
from talkplatform_agents.calendar.schedule import MAX_TITLE, Schedule
from talkplatform_agents.config import Settings
from talkplatform_agents.errors import Invalid
from talkplatform_agents.store.calendar_sync import (
    MAX_HREF,
    CalendarItemView,
    CalendarSyncRepository,
    CalendarSyncView,
    Origin,
)
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.meetings import MeetingView
from talkplatform_agents.store.schedules import ScheduleRepository, ScheduleView

__all__ = [
    "CalendarLike",
    "MeetingMaker",
    "SyncOptions",
    "SyncReport",
    "SyncStore",
    "collection_url",
    "published_object",
    "sync_calendar",
    "sync_user",
]

logger = logging.getLogger(__name__)

_OUR_UID = re.compile(r"meeting-([A-Za-z0-9_-]{1,64})@(.+)")
_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SyncOptions:
    """``public_url``: the service's public URL (join links ``<url>/app/meeting/<id>``, and
    the invitations' UID domain, its host name, as ``calendar_routes`` has them)."""

    public_url: str
    category: str = "TalkPlatform"

    @property
    def base(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def domain(self) -> str:
        return uid_domain(self.base)

    def join_url(self, meeting_id: str) -> str:
        return join_url(self.base, meeting_id)


@dataclass
class SyncReport:
    """What one pass did: meeting ids published, updated, deleted (from the calendar),
    imported (a new meeting from an event) and linked (an event naming a known meeting);
    ``skipped`` says which object and why."""

    published: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def wrote(self) -> bool:
        """Whether the pass changed the calendar or created a meeting."""
        return bool(self.published or self.updated or self.deleted or self.imported)


class CalendarLike(Protocol):
    """The CalDAV operations a pass uses (``CalDavClient``; a fake in unit tests)."""

    url: str
    path: str

    async def state(self) -> CollectionState: ...
    async def changes(self, sync_token: str | None) -> Changes: ...
    async def fetch(self, hrefs: list[str]) -> list[CalendarObject]: ...
    async def put(self, href: str, data: bytes, *, etag: str | None = None) -> str | None: ...
    async def delete(self, href: str, *, etag: str | None) -> None: ...


class SyncStore(Protocol):
    """The sync's state and reads (``CalendarSyncRepository``)."""

    async def state(self, user_id: str) -> CalendarSyncView | None: ...
    async def save_state(
        self, user_id: str, collection_url: str, sync_token: str | None, ctag: str | None
    ) -> None: ...
    async def items(self, user_id: str) -> list[CalendarItemView]: ...
    async def put_item(self, item: CalendarItemView) -> None: ...
    async def forget_item(self, user_id: str, href: str) -> None: ...
    async def hosted(self, user_id: str) -> list[tuple[MeetingView, ScheduleView]]: ...
    async def meeting_exists(self, meeting_id: str) -> bool: ...


class MeetingMaker(Protocol):
    """Creates a meeting hosted by ``user_id`` with ``schedule``, in one transaction; its id."""

    async def create(self, user_id: str, title: str, schedule: Schedule) -> str: ...


class _StoreMeetingMaker:
    def __init__(self, db: Database) -> None:
        self._schedules = ScheduleRepository(db)

    async def create(self, user_id: str, title: str, schedule: Schedule) -> str:
        from talkplatform_agents.calendar.stored import record_of

        organizer = organizer_email(user_id)
        meeting, _ = await self._schedules.create(
            title=title, settings={}, host_user_id=user_id, host_name=None,
            record=record_of(schedule, (), organizer),
        )  # fmt: skip
        return meeting.id


def collection_url(template: str, user_id: str) -> str:
    """``CALDAV_URL`` with the user id (percent-encoded) in place of ``{user}``."""
    return template.replace("{user}", quote(user_id, safe="@"))


async def sync_user(
    user_id: str,
    settings: Settings,
    db: Database,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SyncReport:
    """One pass for ``user_id`` against ``CALDAV_URL`` as ``CALDAV_USERNAME``. Raises
    ``CalDavError`` when the calendar cannot be read (unreachable, refused)."""
    if not settings.caldav_url:
        raise CalDavError("CALDAV_URL is not set", url="")
    url = collection_url(settings.caldav_url, user_id)
    auth = None
    if settings.caldav_username:
        secret = settings.caldav_password.get_secret_value() if settings.caldav_password else ""
        auth = httpx.BasicAuth(settings.caldav_username, secret)
    options = SyncOptions(settings.api_url, settings.caldav_category)
    async with httpx.AsyncClient(auth=auth, timeout=_TIMEOUT_S, transport=transport) as http:
        return await sync_calendar(
            user_id, CalDavClient(http, url), CalendarSyncRepository(db),
            _StoreMeetingMaker(db), options,
        )  # fmt: skip


def published_object(meeting: MeetingView, view: ScheduleView, options: SyncOptions) -> bytes:
    """The calendar object of a hosted meeting (see the module's docstring)."""
    from talkplatform_agents.calendar.stored import schedule_of

    invite = InviteMeeting(
        id=meeting.id,
        title=meeting.title[:MAX_TITLE].strip() or "Meeting",
        schedule=schedule_of(view),
        organizer_email=organizer_or_noreply(view.record.organizer_email, options.domain),
        join_url=options.join_url(meeting.id),
        uid_domain=options.domain,
        sequence=view.sequence,
    )
    calendar = Calendar.from_ical(invitation(invite, "REQUEST"))
    calendar.pop("METHOD", None)
    for event in calendar.walk("VEVENT"):
        event.pop("ORGANIZER", None)
        event.pop("ATTENDEE", None)
    return bytes(calendar.to_ical())


async def sync_calendar(
    user_id: str,
    calendar: CalendarLike,
    store: SyncStore,
    maker: MeetingMaker,
    options: SyncOptions,
) -> SyncReport:
    """One pass (see the module's docstring)."""
    return await _Pass(user_id, calendar, store, maker, options).run()


class _Pass:
    def __init__(
        self,
        user_id: str,
        calendar: CalendarLike,
        store: SyncStore,
        maker: MeetingMaker,
        options: SyncOptions,
    ) -> None:
        self.user_id = user_id
        self.calendar = calendar
        self.store = store
        self.maker = maker
        self.options = options
        self.report = SyncReport()
        self.items: dict[str, CalendarItemView] = {}
        self.hosted: dict[str, tuple[MeetingView, ScheduleView]] = {}

    async def run(self) -> SyncReport:
        saved = await self.store.state(self.user_id)
        same = saved is not None and saved.collection_url == self.calendar.url
        token = saved.sync_token if saved is not None and same else None
        self.items = {i.href: i for i in await self.store.items(self.user_id)}
        self.hosted = {m.id: (m, v) for m, v in await self.store.hosted(self.user_id)}
        state = await self.calendar.state()
        new_token, ctag = token, state.ctag
        # Without sync tokens (a server without sync-collection) the ctag says "unchanged".
        unchanged = (
            same and saved is not None and token is None and state.sync_token is None
            and saved.ctag is not None and saved.ctag == state.ctag
        )  # fmt: skip
        if not unchanged and (token is None or state.sync_token != token):
            changes = await self.calendar.changes(token)
            new_token = changes.sync_token or state.sync_token
            await self._read(changes)
        await self._publish()
        await self.store.save_state(self.user_id, self.calendar.url, new_token, ctag)
        return self.report

    # -- reading the calendar ---------------------------------------------------------

    async def _read(self, changes: Changes) -> None:
        too_long = sorted(h for h in changes.changed if len(h) > MAX_HREF)
        for href in too_long:
            self._skip(href[:200] + "...", f"href longer than {MAX_HREF} characters")
        changes = replace(changes, changed={
            h: e for h, e in changes.changed.items() if len(h) <= MAX_HREF
        })  # fmt: skip
        removed = set(changes.removed)
        if changes.full:  # a full listing: what is not in it is gone
            removed |= {h for h in self.items if h not in changes.changed}
        for href in sorted(removed):
            if href in self.items:
                await self.store.forget_item(self.user_id, href)
                del self.items[href]
        wanted = [
            href
            for href, etag in changes.changed.items()
            if not (etag and href in self.items and self.items[href].etag == etag)
        ]
        if not wanted:
            return
        for obj in await self.calendar.fetch(sorted(wanted)):
            await self._take(obj)

    async def _take(self, obj: CalendarObject) -> None:
        known = self.items.get(obj.href)
        if known is not None:
            # Changed in the calendar since the sync saw it: see the module's docstring.
            await self._remember(replace(known, etag=obj.etag))
            return
        try:
            events = read_events(obj.data, join_base=self.options.base)
            if len(events) != 1:
                raise Invalid(f"the object holds {len(events)} events, not one", field="ics")
        except Invalid as exc:
            self._skip(obj.href, exc.message)
            return
        event = events[0]
        ours = _OUR_UID.fullmatch(event.uid)
        if ours and ours.group(2).lower() == self.options.domain.lower():
            if ours.group(1) in self.hosted:
                await self._remember(self._item(obj, event, ours.group(1), "published"))
            else:
                self._skip(obj.href, f"a published meeting {ours.group(1)} this user does not host")
            return
        if event.join_meeting_id is not None:
            if await self.store.meeting_exists(event.join_meeting_id):
                await self._remember(self._item(obj, event, event.join_meeting_id, "imported"))
                self.report.linked.append(event.join_meeting_id)
            else:
                self._skip(obj.href, f"join link to unknown meeting {event.join_meeting_id}")
            return
        wanted = self.options.category.casefold()
        if any(c.casefold() == wanted for c in event.categories) and not event.cancelled:
            await self._import(obj, event)

    async def _import(self, obj: CalendarObject, event: ExternalEvent) -> None:
        title = _plain_title(event.summary)
        meeting_id = await self.maker.create(self.user_id, title, event.schedule)
        # Remembered before the rewrite: a failed PUT must not import the event again.
        item = self._item(obj, event, meeting_id, "imported")
        await self._remember(item)
        self.report.imported.append(meeting_id)
        logger.info("calendar %s: %s became meeting %s", self.calendar.url, obj.href, meeting_id)
        try:
            linked = _with_join_link(obj.data, event.uid, self.options.join_url(meeting_id))
            etag = await self.calendar.put(obj.href, linked, etag=obj.etag)
        except (CalDavError, ValueError) as exc:
            if isinstance(exc, CalDavError) and exc.status is None:
                raise
            logger.warning("calendar %s: could not add the join link to %s: %s",
                           self.calendar.url, obj.href, exc)  # fmt: skip
            return
        await self._remember(replace(item, etag=etag))

    # -- publishing meetings ----------------------------------------------------------

    async def _publish(self) -> None:
        by_meeting = {i.meeting_id: i for i in self.items.values() if i.meeting_id}
        for meeting_id, (meeting, view) in sorted(self.hosted.items()):
            item = by_meeting.get(meeting_id)
            if item is not None and item.origin == "imported":
                continue  # the user's own event: see the module's docstring
            try:
                if view.cancelled_at is not None:
                    if item is not None:
                        await self._delete(item)
                elif item is None or item.sequence < view.sequence:
                    await self._put(meeting, view, item)
            except CalDavError as exc:
                if exc.status is None:
                    raise
                self._skip(item.href if item else meeting_id, exc.message + f" (HTTP {exc.status})")
            except Invalid as exc:
                self._skip(meeting_id, f"meeting cannot be published: {exc.message}")

    async def _put(
        self, meeting: MeetingView, view: ScheduleView, item: CalendarItemView | None
    ) -> None:
        data = published_object(meeting, view, self.options)
        href = item.href if item else f"{self.calendar.path}talkplatform-{meeting.id}.ics"
        if len(href) > MAX_HREF:
            self._skip(meeting.id, f"its href would be longer than {MAX_HREF} characters")
            return
        etag = item.etag if item else None
        try:
            new_etag = await self.calendar.put(href, data, etag=etag)
        except CalDavError as exc:
            if exc.status != 412:
                raise
            # There already (a lost state) or changed meanwhile: once more on its etag.
            found = await self.calendar.fetch([href])
            new_etag = await self.calendar.put(href, data, etag=found[0].etag if found else None)
        uid = meeting_uid(meeting.id, self.options.domain)
        await self._remember(CalendarItemView(self.user_id, href, uid, new_etag, meeting.id,
                                              "published", view.sequence))  # fmt: skip
        (self.report.updated if item else self.report.published).append(meeting.id)

    async def _delete(self, item: CalendarItemView) -> None:
        try:
            await self.calendar.delete(item.href, etag=item.etag)
        except CalDavError as exc:
            if exc.status != 412:
                raise
            await self.calendar.delete(item.href, etag=None)  # changed in the calendar
        await self.store.forget_item(self.user_id, item.href)
        del self.items[item.href]
        self.report.deleted.append(item.meeting_id or item.href)

    # -- helpers -----------------------------------------------------------------------

    def _item(
        self, obj: CalendarObject, event: ExternalEvent, meeting_id: str, origin: str
    ) -> CalendarItemView:
        kind: Origin = "published" if origin == "published" else "imported"
        return CalendarItemView(self.user_id, obj.href, event.uid, obj.etag, meeting_id,
                                kind, event.sequence)  # fmt: skip

    async def _remember(self, item: CalendarItemView) -> None:
        await self.store.put_item(item)
        self.items[item.href] = item

    def _skip(self, href: str, why: str) -> None:
        logger.warning("calendar %s: skipped %s: %s", self.calendar.url, href, why)
        self.report.skipped.append(f"{href}: {why}")


# C0/C1 control characters, DEL and Unicode line/paragraph separators: never in a title.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _plain_title(summary: str) -> str:
    """An event's SUMMARY as a meeting title: each control character (CR and LF among
    them) a space, runs of spaces one, at most ``MAX_TITLE`` characters; "Meeting" when
    nothing is left."""
    plain = " ".join(_CONTROL.sub(" ", summary).split())
    return plain[:MAX_TITLE].strip() or "Meeting"


def _with_join_link(data: bytes, uid: str, join_url: str) -> bytes:
    """The object with the join link in each VEVENT of ``uid``: URL (when it has none)
    and a line in DESCRIPTION."""
    calendar = Calendar.from_ical(data)
    for event in calendar.walk("VEVENT"):
        if not isinstance(event, Event) or str(event.get("UID", "")).strip() != uid:
            continue
        if "URL" not in event:
            event.add("URL", join_url)
        description = str(event.get("DESCRIPTION", "")).strip()
        line = f"Join the meeting: {join_url}"
        event.pop("DESCRIPTION", None)
        event.add("DESCRIPTION", f"{description}\n\n{line}" if description else line)
    return bytes(calendar.to_ical())
