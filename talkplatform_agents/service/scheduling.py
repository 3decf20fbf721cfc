"""Scheduled meetings between the API and the store: the calendar core's ``Schedule``
checked on the way in (its ``Invalid`` answered as a 422), stored as wall-clock text, and
read back into a ``Schedule`` for listings and invitations."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import BackgroundTasks

from talkplatform_agents.calendar import Attendee, InviteMeeting, Schedule, invitation, links
from talkplatform_agents.calendar.ics import PhoneLine
from talkplatform_agents.calendar.links import join_url, organizer_or_noreply, uid_domain
from talkplatform_agents.calendar.mail import SmtpServer, invitation_email, send_email
from talkplatform_agents.calendar.stored import record_of, schedule_of
from talkplatform_agents.config import Settings
from talkplatform_agents.errors import Invalid, Unprocessable
from talkplatform_agents.moderation.dial_in import DialIn
from talkplatform_agents.roles import MODERATOR_ROLES, Role
from talkplatform_agents.service.auth import AppUser
from talkplatform_agents.service.schemas import CreateMeeting, OverrideOut, ScheduleOut
from talkplatform_agents.store import (
    Database,
    MeetingView,
    ScheduleRepository,
    ScheduleView,
)

__all__ = [
    "Invitations",
    "checked",
    "create_scheduled",
    "organizer_email",
    "people_of",
    "phone_line",
    "schedule_out",
    "sees_attendees",
]


logger = logging.getLogger(__name__)

Method = Literal["REQUEST", "CANCEL"]


class Invitations:
    """A scheduled meeting's invitation: its join link and UID domain (from the service's
    public URL, ``TOKEN_SERVICE_URL``), and, with ``SMTP_URL``, its email to attendees."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.api_url.rstrip("/")
        self.domain = uid_domain(self.base)
        self.smtp = SmtpServer.from_url(settings.smtp_url) if settings.smtp_url else None

    def join(self, meeting_id: str) -> str:
        return join_url(self.base, meeting_id)

    def invite(
        self, meeting: MeetingView, view: ScheduleView, phone: PhoneLine | None = None
    ) -> InviteMeeting:
        """What the meeting's invitation says. Without an organiser's email (a user id
        that is not one) the organiser is ``noreply@`` the service's host."""
        return InviteMeeting(
            id=meeting.id,
            title=meeting.title,
            schedule=schedule_of(view),
            organizer_email=organizer_or_noreply(view.record.organizer_email, self.domain),
            join_url=self.join(meeting.id),
            uid_domain=self.domain,
            attendees=tuple(
                Attendee(email=a) if "@" in a else Attendee(user_id=a)
                for a in view.record.attendees
            ),
            sequence=view.sequence,
            phone=phone,
        )

    def mail(
        self,
        tasks: BackgroundTasks,
        meeting: MeetingView,
        view: ScheduleView,
        method: Method,
        *,
        to: Sequence[str] | None = None,
        recurrence_id: dt.datetime | None = None,
        phone: PhoneLine | None = None,
    ) -> None:
        """Email the invitation (``method``; with ``recurrence_id``, a CANCEL of that one
        occurrence) to ``to``, or to every attendee with an email, after the response is
        sent. Nothing without ``SMTP_URL``; a failure is logged, never the API's."""
        recipients = [a for a in (view.record.attendees if to is None else to) if "@" in a]
        if self.smtp is None or not recipients:
            return
        # Everything the email needs is built here, inside the try: the change is already
        # stored, so a title or address the message cannot carry costs only the email.
        try:
            invite = self.invite(meeting, view, phone)
            calendar = invitation(invite, method, recurrence_id=recurrence_id)
            verb = "Cancelled" if method == "CANCEL" else "Invitation"
            by_phone = (
                f"Join by phone: {', '.join(phone.numbers)}, then PIN {phone.pin}#\n"
                if phone
                else ""
            )
            updated = method == "REQUEST" and view.sequence > 0
            message = invitation_email(
                sender=invite.organizer_email,
                sender_name=None,
                recipients=recipients,
                subject=f"{'Updated invitation' if updated else verb}: {meeting.title}",
                text=f"{meeting.title}\n\nJoin the meeting: {invite.join_url}\n{by_phone}",
                calendar=calendar,
                method=method,
                domain=self.domain,
            )
        except Invalid as exc:  # the change is made; only its email is not
            logger.warning("meeting %s: no invitation email: %s", meeting.id, exc.message)
            return
        except Exception:
            logger.exception("meeting %s: no invitation email", meeting.id)
            return
        tasks.add_task(self._send, self.smtp, message, recipients, meeting.id)

    @staticmethod
    async def _send(
        server: SmtpServer, message: Any, recipients: list[str], meeting_id: str
    ) -> None:
        try:
            await send_email(server, message, recipients)
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("meeting %s: invitation email to %d attendee(s) failed: %s: %s",
                           meeting_id, len(recipients), type(exc).__name__, exc)  # fmt: skip
        except Exception:  # a background task: logged here, never raised after the reply
            logger.exception("meeting %s: invitation email failed", meeting_id)
        else:
            logger.info("meeting %s: invitation emailed to %d attendee(s)", meeting_id,
                        len(recipients))  # fmt: skip


@contextmanager
def checked() -> Iterator[None]:
    """The calendar core's refusals (``Invalid``, a 400 elsewhere) as this API's 422."""
    try:
        yield
    except Invalid as error:
        raise Unprocessable.of(error) from None


def organizer_email(user: AppUser) -> str | None:
    """The organiser's calendar address: the user id when it is an email."""
    return links.organizer_email(user.user_id)


def people_of(user: AppUser) -> list[str]:
    """How ``user`` appears among attendees: by user id, and by email when it is one."""
    email = organizer_email(user)
    return [user.user_id, *([email] if email and email != user.user_id else [])]


def sees_attendees(role: Role | None, user: AppUser, view: ScheduleView) -> bool:
    """Whether ``user`` (with ``role`` in the meeting) may read who is invited: the
    meeting's hosts and co-hosts, and its attendees; not everyone with its id."""
    return role in MODERATOR_ROLES or bool(set(people_of(user)) & set(view.record.attendees))


async def create_scheduled(
    db: Database, body: CreateMeeting, user: AppUser
) -> tuple[MeetingView, ScheduleView]:
    """A meeting with its schedule, checked first, then stored in one transaction."""
    assert body.start is not None and body.end is not None and body.timezone is not None
    with checked():
        schedule = Schedule.parse(body.start, body.end, body.timezone, body.recurrence or None)
    record = record_of(schedule, body.attendees or [], organizer_email(user))
    return await ScheduleRepository(db).create(
        title=body.title,
        settings=body.settings,
        host_user_id=user.user_id,
        host_name=user.name,
        record=record,
    )


def schedule_out(view: ScheduleView, *, private: bool = True) -> ScheduleOut:
    """The schedule as the API shows it; without ``private`` (a caller who is neither a
    host nor an attendee, ``sees_attendees``) no attendees and no organiser's email."""
    schedule = schedule_of(view)
    return ScheduleOut(
        start=schedule.start,
        end=schedule.end,
        timezone=schedule.timezone,
        recurrence=schedule.rrule,
        exdates=list(schedule.exdates),
        overrides=[
            OverrideOut(recurrence_id=o.recurrence_id, start=o.start, end=o.end, title=o.title)
            for o in schedule.overrides
            if not o.cancelled
        ],
        attendees=list(view.record.attendees) if private else [],
        organizer_email=view.record.organizer_email if private else None,
        sequence=view.sequence,
        cancelled_at=view.cancelled_at,
        updated_at=view.updated_at,
    )


async def phone_line(dial_in: DialIn | None, meeting_id: str) -> PhoneLine | None:
    """The meeting's dial-in for its invitation, when the service has phones."""
    found = await dial_in.line(meeting_id) if dial_in is not None else None
    return PhoneLine(*found) if found is not None else None
