"""Scheduled meetings over HTTP (UC-04): the caller's calendar, changes to a series or to
one occurrence, and the iCalendar invitation.

``POST /api/v1/meetings`` (routes.py) creates a scheduled meeting. Here:

- ``GET /api/v1/meetings?from=&to=``: the occurrences, in the window, of the scheduled
  meetings the caller hosts (a standing role) or is invited to (an attendee by user id or,
  when the user id is one, by email); recurring meetings expanded, cancelled ones left out;
- ``PATCH /api/v1/meetings/{id}/schedule``, ``DELETE`` it: change or cancel the series;
- ``PATCH``/``DELETE /api/v1/meetings/{id}/occurrences/{recurrence_id}``: move or retitle
  one occurrence, or cancel it (an EXDATE); ``recurrence_id`` is its original start;
- ``GET /api/v1/meetings/{id}/invite.ics``: METHOD:REQUEST, or CANCEL once cancelled.

Changes are for the meeting's hosts and co-hosts; every one raises the invitations'
SEQUENCE. The calendar core's refusals are 422s that name the field; a change that raced
another (the sequence it read moved) is a 409; a change to a cancelled series, or to a
meeting that has ended, a 410.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response

from talkplatform_agents.calendar import (
    Override,
    Schedule,
    invitation,
    occurrences,
)
from talkplatform_agents.calendar.localtime import local_time, zone
from talkplatform_agents.calendar.rules import until_in_zone
from talkplatform_agents.calendar.schedule import MAX_WINDOW, wall_end
from talkplatform_agents.calendar.stored import record_of, schedule_of
from talkplatform_agents.errors import Forbidden, Gone, NotFound, Unprocessable
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.service.auth import AppUser
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.openapi import BODY, LOGIN, MEETING, STORE, errors
from talkplatform_agents.service.routes import NO_STORE, Context, User
from talkplatform_agents.service.scheduling import (
    Invitations,
    checked,
    people_of,
    phone_line,
    schedule_out,
    sees_attendees,
)
from talkplatform_agents.service.schemas import (
    OccurrenceChange,
    OccurrenceList,
    OccurrenceOut,
    ScheduleChange,
    ScheduleOut,
    SeriesChangeOut,
)
from talkplatform_agents.store import MeetingView, ScheduleRepository, ScheduleView
from talkplatform_agents.store.schedules import MAX_LISTED

__all__ = ["calendar_router"]

logger = logging.getLogger(__name__)

_BASE = "/api/v1/meetings/{meeting_id}"
_CHANGE = errors(LOGIN, STORE, MEETING, BODY, 403, 409, 410)
_ICS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An iTIP invitation (RFC 5546): METHOD:REQUEST, or CANCEL.",
        "content": {"text/calendar": {"schema": {"type": "string"}}},
    }
}
# A listing's window lies in these years (meetings in localtime.py's 1970-2199).
_EARLIEST, _LATEST = 1900, 2300
# A recurrence id in the path: an ISO 8601 time (with or without an offset).
RecurrenceId = Annotated[str, Path(min_length=1, max_length=64)]


def calendar_router(links: Invitations) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/meetings", responses=errors(LOGIN, STORE))
    async def list_occurrences(
        user: User,
        ctx: Context,
        response: Response,
        start: Annotated[dt.datetime, Query(alias="from")],
        end: Annotated[dt.datetime, Query(alias="to")],
    ) -> OccurrenceList:
        """The occurrences of the caller's scheduled meetings (as host, co-host or
        attendee) that overlap [``from``, ``to``): ISO 8601 times with a UTC offset, at
        most 400 days apart. Sorted by start; ``truncated`` when more meetings matched than
        one listing reads."""
        response.headers.update(NO_STORE)
        _check_window(start, end)
        found = await ScheduleRepository(ctx.db).overlapping(start, end, people=people_of(user))
        listed = _listed(links, found, start, end)
        listed.sort(key=lambda o: (o.start.astimezone(dt.UTC), o.meeting_id))
        return OccurrenceList(occurrences=listed, truncated=len(found) >= MAX_LISTED)

    @router.patch(_BASE + "/schedule", responses=_CHANGE)
    async def change_series(
        meeting_id: str, body: ScheduleChange, user: User, ctx: Context, tasks: BackgroundTasks
    ) -> SeriesChangeOut:
        """Change the whole series (hosts and co-hosts); what the body leaves out stays.
        Attendees with an email get the new invitation (SMTP_URL), removed ones a CANCEL.

        A new ``start``, ``timezone`` or ``recurrence`` resets the cancelled and moved
        occurrences (they belonged to the old pattern): the answer's ``resetOccurrences``
        lists their original starts. A new zone keeps the recurrence's UNTIL at the same
        wall-clock date and time ("until 10 March" stays 10 March there)."""
        meeting, view = await _hosted(ctx, meeting_id, user)
        record = view.record
        given = body.model_fields_set
        new_pattern = bool(given & {"start", "timezone", "recurrence"})
        recurrence = (body.recurrence or None) if "recurrence" in given else record.rrule
        if not given:
            raise Unprocessable("nothing to change: give start, end, timezone, recurrence "
                                "or attendees", field="body")  # fmt: skip
        current = schedule_of(view)
        with checked():
            tz = body.timezone or record.timezone
            if recurrence and "recurrence" not in given and zone(tz).key != record.timezone:
                recurrence = until_in_zone(recurrence, current.zone)
            end: str | dt.datetime = body.end or record.end_local
            if body.start and not body.end:  # a new start alone keeps the length
                start = local_time(body.start, zone(tz), field="start")
                end = wall_end(start, current.wall_duration)
            schedule = Schedule.parse(
                body.start or record.start_local,
                end,
                tz,
                recurrence,
                exdates=() if new_pattern else current.exdates,
                overrides=() if new_pattern else current.overrides,
            )
        reset = (
            sorted([*current.exdates, *(o.recurrence_id for o in current.overrides)], key=_utc)
            if new_pattern
            else []
        )
        attendees = body.attendees if body.attendees is not None else list(record.attendees)
        saved = await ScheduleRepository(ctx.db).update(
            meeting_id,
            record_of(schedule, attendees, record.organizer_email),
            if_sequence=view.sequence,
        )
        logger.info("meeting %s: series changed by %s (sequence %d, %d occurrence(s) reset)",
                    meeting_id, user.user_id, saved.sequence, len(reset))  # fmt: skip
        phone = await phone_line(ctx.dial_in, meeting_id) if links.smtp else None
        links.mail(tasks, meeting, saved, "REQUEST", phone=phone)
        removed = tuple(a for a in record.attendees if a not in saved.record.attendees)
        if removed:  # RFC 5546: a CANCEL names the attendees it removes as ATTENDEEs
            gone = replace(saved, record=replace(saved.record, attendees=removed))
            links.mail(tasks, meeting, gone, "CANCEL")
        return SeriesChangeOut(
            **schedule_out(saved).model_dump(), reset_occurrences=[_in(d, current) for d in reset]
        )

    @router.delete(_BASE + "/schedule", responses=errors(LOGIN, STORE, MEETING, 403))
    async def cancel_series(
        meeting_id: str, user: User, ctx: Context, tasks: BackgroundTasks
    ) -> ScheduleOut:
        """Cancel the whole series (hosts and co-hosts): its invitation becomes a
        METHOD:CANCEL (emailed to attendees with SMTP_URL), and it leaves every listing.
        Cancelling it again changes nothing."""
        meeting, view = await _hosted(ctx, meeting_id, user, cancelled_too=True)
        saved = await ScheduleRepository(ctx.db).cancel(meeting_id)
        logger.info("meeting %s: series cancelled by %s", meeting_id, user.user_id)
        if view.cancelled_at is None:
            links.mail(tasks, meeting, saved, "CANCEL")
        return schedule_out(saved)

    _occurrence_routes(router, links)
    return router


def _occurrence_routes(router: APIRouter, links: Invitations) -> None:
    """One occurrence's changes, and the invitation."""

    @router.patch(_BASE + "/occurrences/{recurrence_id}", responses=_CHANGE)
    async def change_occurrence(
        meeting_id: str,
        recurrence_id: RecurrenceId,
        body: OccurrenceChange,
        user: User,
        ctx: Context,
        tasks: BackgroundTasks,
    ) -> ScheduleOut:
        """Move or retitle one occurrence of a series, named by its original start."""
        meeting, view = await _hosted(ctx, meeting_id, user)
        with checked():
            changed = _moved(schedule_of(view), recurrence_id, body)
        saved = await _save(ctx, view, changed, user, f"occurrence {recurrence_id} changed")
        phone = await phone_line(ctx.dial_in, meeting_id) if links.smtp else None
        links.mail(tasks, meeting, saved, "REQUEST", phone=phone)
        return schedule_out(saved)

    @router.delete(_BASE + "/occurrences/{recurrence_id}", responses=_CHANGE)
    async def cancel_occurrence(
        meeting_id: str,
        recurrence_id: RecurrenceId,
        user: User,
        ctx: Context,
        tasks: BackgroundTasks,
    ) -> ScheduleOut:
        """Cancel one occurrence of a series (an EXDATE), named by its original start."""
        meeting, view = await _hosted(ctx, meeting_id, user)
        schedule = schedule_of(view)
        with checked():
            changed = schedule.with_exdate(recurrence_id)
            rid = local_time(recurrence_id, schedule.zone, field="recurrence_id")
        saved = await _save(ctx, view, changed, user, f"occurrence {recurrence_id} cancelled")
        links.mail(tasks, meeting, saved, "CANCEL", recurrence_id=rid)
        return schedule_out(saved)

    @router.get(
        _BASE + "/invite.ics",
        response_class=Response,
        responses={**_ICS, **errors(LOGIN, STORE, MEETING, 403)},
    )
    async def invite(meeting_id: str, user: User, ctx: Context) -> Response:
        """The meeting's invitation for calendar clients (hosts, co-hosts and attendees):
        METHOD:REQUEST with the join link, or METHOD:CANCEL once the series is cancelled.
        Its UID stays; its SEQUENCE is raised by every change."""
        meeting, view = await _scheduled(ctx, meeting_id)
        role = await ctx.meetings.role(meeting_id, user.user_id)
        if not sees_attendees(role, user, view):
            raise Forbidden("only the meeting's hosts and attendees read its invitation")
        method: Literal["REQUEST", "CANCEL"] = (
            "CANCEL" if view.cancelled_at is not None else "REQUEST"
        )
        phone = await phone_line(ctx.dial_in, meeting_id) if method == "REQUEST" else None
        invite = links.invite(meeting, view, phone)
        with checked():
            body = invitation(invite, method)
        return Response(
            content=body,
            media_type=f"text/calendar; charset=utf-8; method={method}",
            headers={
                **NO_STORE,
                "Content-Disposition": f'inline; filename="meeting-{meeting.id}.ics"',
            },
        )


def _listed(
    links: Invitations,
    found: list[tuple[MeetingView, ScheduleView]],
    start: dt.datetime,
    end: dt.datetime,
) -> list[OccurrenceOut]:
    listed: list[OccurrenceOut] = []
    for meeting, view in found:
        schedule = schedule_of(view)
        with checked():
            expanded = occurrences(schedule, start, end)
        listed += [
            OccurrenceOut(
                meeting_id=meeting.id,
                title=occurrence.title_override or meeting.title,
                recurrence_id=occurrence.recurrence_id,
                start=occurrence.start,
                end=occurrence.end,
                timezone=schedule.timezone,
                recurring=schedule.recurring,
                join_url=links.join(meeting.id),
            )
            for occurrence in expanded
        ]
    return listed


def _moved(schedule: Schedule, recurrence_id: str, body: OccurrenceChange) -> Schedule:
    """``schedule`` with one occurrence moved or retitled; a new start alone keeps the
    occurrence's length, a change keeps what an earlier one of it set and this one not."""
    tz = schedule.zone
    rid = local_time(recurrence_id, tz, field="recurrence_id")
    # The occurrence as the expansion has it: its wall-clock length, which across a DST
    # change is an hour more or less in real time (retitling it keeps its end).
    earlier = next(
        (o for o in schedule.overrides if _utc(o.recurrence_id) == _utc(rid)),
        Override(rid, rid, wall_end(rid, schedule.wall_duration)),
    )
    start = local_time(body.start, tz, field="start") if body.start else earlier.start
    if body.end:
        end = local_time(body.end, tz, field="end")
    elif not body.start:
        end = earlier.end
    else:
        length = earlier.end.replace(tzinfo=None) - earlier.start.replace(tzinfo=None)
        end = wall_end(start, length)
    title = body.title.strip() if body.title is not None else earlier.title
    return schedule.with_override(Override(rid, start, end, title or None))


def _check_window(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("from and to need a UTC offset (2026-03-01T00:00:00Z)", field="from")
    try:
        first, last = _utc(start), _utc(end)
    except OverflowError:
        first = last = dt.datetime.min.replace(tzinfo=dt.UTC)
    if first.year < _EARLIEST or last.year > _LATEST:
        raise Unprocessable(f"from and to lie in years {_EARLIEST} to {_LATEST}", field="from")
    if last <= first:
        raise Unprocessable("to is not after from", field="to")
    if last - first > MAX_WINDOW:
        raise Unprocessable(f"a window spans at most {MAX_WINDOW.days} days", field="to")


async def _scheduled(ctx: ServiceContext, meeting_id: str) -> tuple[MeetingView, ScheduleView]:
    meeting = await ctx.meetings.get(meeting_id)
    if meeting is None:
        raise NotFound("meeting not found", meetingId=meeting_id)
    view = await ScheduleRepository(ctx.db).get(meeting_id)
    if view is None:
        raise NotFound("the meeting has no schedule", meetingId=meeting_id)
    return meeting, view


async def _hosted(
    ctx: ServiceContext, meeting_id: str, user: AppUser, *, cancelled_too: bool = False
) -> tuple[MeetingView, ScheduleView]:
    meeting, view = await _scheduled(ctx, meeting_id)
    if await ctx.meetings.role(meeting_id, user.user_id) not in MODERATOR_ROLES:
        raise Forbidden("only the meeting's hosts change its schedule", meetingId=meeting_id)
    if meeting.ended_at is not None:
        raise Gone("the meeting has ended: its schedule no longer changes", meetingId=meeting_id)
    if view.cancelled_at is not None and not cancelled_too:
        raise Gone("the meeting's series is cancelled", meetingId=meeting_id)
    return meeting, view


async def _save(
    ctx: ServiceContext, view: ScheduleView, schedule: Schedule, user: AppUser, what: str
) -> ScheduleView:
    record = record_of(schedule, view.record.attendees, view.record.organizer_email)
    saved = await ScheduleRepository(ctx.db).update(
        view.meeting_id, record, if_sequence=view.sequence
    )
    logger.info("meeting %s: %s by %s (sequence %d)", view.meeting_id, what, user.user_id,
                saved.sequence)  # fmt: skip
    return saved


def _in(moment: dt.datetime, schedule: Schedule) -> dt.datetime:
    return moment.astimezone(schedule.zone)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)
