"""Calendar (UC-04): when meetings happen, the iCalendar that carries them, and the I/O
around them.

The core is pure: ``Schedule`` (a start and end in an IANA zone, an optional RRULE,
cancelled and moved occurrences) checked on the way in, ``occurrences`` expanding it with
``recurring-ical-events``, ``invitation`` writing an iTIP REQUEST or CANCEL with
``icalendar``, ``read_events`` reading events from other calendars, and ``links`` (join
link, UID domain, organiser's email). Its refusals are ``talkplatform_agents.errors.Invalid``
with a ``field`` in their context. Around it, modules that do I/O: ``mail`` (invitations
by SMTP), ``caldav`` and ``sync`` (CalDAV calendars), ``stored`` (schedules as the store
keeps them) and ``scheduler`` (opening and closing rooms as occurrences come and go).
"""

from talkplatform_agents.calendar.external import ExternalEvent, join_meeting_id, read_events
from talkplatform_agents.calendar.ics import Attendee, InviteMeeting, invitation, meeting_uid
from talkplatform_agents.calendar.schedule import Occurrence, Override, Schedule, occurrences

__all__ = [
    "Attendee",
    "ExternalEvent",
    "InviteMeeting",
    "Occurrence",
    "Override",
    "Schedule",
    "invitation",
    "join_meeting_id",
    "meeting_uid",
    "occurrences",
    "read_events",
]
