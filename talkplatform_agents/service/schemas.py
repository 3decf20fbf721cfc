"""Request and response bodies: the platform's HTTP contract (camelCase on the wire)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from talkplatform_agents.calendar.links import EMAIL
from talkplatform_agents.lk.ice import IceServer
from talkplatform_agents.moderation import MeetingSettings

__all__ = [
    "ConnectionInfo",
    "CreateMeeting",
    "Health",
    "MeetingOut",
    "OccurrenceChange",
    "OccurrenceList",
    "OccurrenceOut",
    "OverrideOut",
    "RecordingSettings",
    "ScheduleChange",
    "ScheduleOut",
    "SeriesChangeOut",
    "TokenMetadata",
    "TokenRequest",
    "TokenResponse",
    "TranscriptionSettings",
    "check_attendees",
    "check_recording_settings",
    "check_title",
    "check_transcription_settings",
    "is_email",
]


MAX_SETTINGS_BYTES = 16_384


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# An attendee: an email (lower-cased on the way in), or a user id of the platform.
_EMAIL = EMAIL  # the calendar's (calendar/links.py): one rule for invitations
_USER_ID = re.compile(r"[^@\s<>()\[\]\\,;:\"]{1,128}")
MAX_ATTENDEES = 200
Attendees = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=320)]], Field(max_length=MAX_ATTENDEES)
]
When = Annotated[str, Field(min_length=1, max_length=64)]
Recurrence = Annotated[str, Field(max_length=1000)]
Zone = Annotated[str, Field(min_length=1, max_length=64)]


def is_email(text: str) -> bool:
    """Whether ``text`` is an address an invitation can carry (as the calendar core's)."""
    return bool(_EMAIL.fullmatch(text))


# C0 and C1 control characters (CR and LF among them) and DEL: a title ends up in email
# headers and iCalendar lines, where a line break is a new header or property.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_title(value: str) -> str:
    """A meeting's title as given: a ValueError when it holds a control character (a
    line break among them) or nothing but spaces."""
    if _CONTROL.search(value):
        raise ValueError("a title must not hold control characters such as line breaks")
    if not value.strip():
        raise ValueError("a title must not be only spaces")
    return value


def check_attendees(value: list[str]) -> list[str]:
    """Emails (lower-cased) and user ids, each once, in the order given; a ValueError
    naming the first that is neither."""
    seen: dict[str, None] = {}
    for raw in value:
        text = raw.strip()
        if "@" in text:
            if not _EMAIL.fullmatch(text):
                raise ValueError(f"attendee {raw!r} is not an email address")
            text = text.lower()
        elif not _USER_ID.fullmatch(text):
            raise ValueError(f"attendee {raw!r} is neither an email address nor a user id")
        seen.setdefault(text, None)
    return list(seen)


class CreateMeeting(Wire):
    """A meeting, maybe scheduled: ``start``, ``end`` and ``timezone`` (IANA) go together
    (ISO 8601 times; without an offset, wall-clock times in the zone), and ``recurrence``
    (an RRULE value) and ``attendees`` (emails or user ids) need them."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)
    start: When | None = None
    end: When | None = None
    timezone: Zone | None = None
    recurrence: Recurrence | None = None
    attendees: Attendees | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return check_title(value)

    @field_validator("attendees")
    @classmethod
    def _attendees(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_attendees(value)

    @model_validator(mode="after")
    def _scheduled_together(self) -> Self:
        times = [self.start, self.end, self.timezone]
        if any(t is not None for t in times) and not all(t is not None for t in times):
            raise ValueError("start, end and timezone go together: give all three or none")
        if self.start is None and (self.recurrence is not None or self.attendees is not None):
            raise ValueError("recurrence and attendees need a start, an end and a timezone")
        return self

    @property
    def scheduled(self) -> bool:
        return self.start is not None

    @field_validator("settings")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = json.dumps(value, allow_nan=False)
        except ValueError as exc:
            raise ValueError("settings must be plain JSON (no NaN or Infinity)") from exc
        if len(encoded) > MAX_SETTINGS_BYTES:
            raise ValueError(f"settings must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
        # Refused now, not at every later token request: a meeting nobody could join.
        try:
            MeetingSettings.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"settings.{where}: {first['msg']}") from exc
        check_recording_settings(value)
        check_transcription_settings(value)
        return value


class RecordingSettings(BaseModel):
    """``settings.recording``: ``{"auto": true}`` records the meeting room from its first
    participant on (service/recording.py). Checked when settings are written; read
    leniently later (a meeting stored before this check records as if it were absent)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    auto: bool = False


class TranscriptionSettings(BaseModel):
    """``settings.transcription``: ``auto`` transcribes the meeting room from its first
    participant on (service/transcription.py); ``participants_may_read`` lets the meeting's
    participants, not only its hosts and co-hosts, read its transcript and analytics.
    Checked when settings are written, read leniently later (as ``RecordingSettings``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    auto: bool = False
    participants_may_read: bool = False


def check_recording_settings(settings: dict[str, Any]) -> None:
    """A ValueError that names the fault when ``settings.recording`` is not valid."""
    _check_section(settings, "recording", RecordingSettings)


def check_transcription_settings(settings: dict[str, Any]) -> None:
    """A ValueError that names the fault when ``settings.transcription`` is not valid."""
    _check_section(settings, "transcription", TranscriptionSettings)


def _check_section(settings: dict[str, Any], key: str, model: type[BaseModel]) -> None:
    if key not in settings or settings[key] is None:
        return
    try:
        model.model_validate(settings[key])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in (key, *first["loc"]))
        raise ValueError(f"settings.{where}: {first['msg']}") from exc


class OverrideOut(Wire):
    """One occurrence moved or retitled: ``recurrence_id`` is its original start."""

    recurrence_id: dt.datetime
    start: dt.datetime
    end: dt.datetime
    title: str | None


class ScheduleOut(Wire):
    """When a meeting happens, times in its zone. ``exdates``: the original starts of
    cancelled occurrences; ``sequence``: its invitations' SEQUENCE, raised by each change;
    ``cancelled_at``: when the whole series was cancelled."""

    start: dt.datetime
    end: dt.datetime
    timezone: str
    recurrence: str | None
    exdates: list[dt.datetime]
    overrides: list[OverrideOut]
    attendees: list[str]
    organizer_email: str | None
    sequence: int
    cancelled_at: dt.datetime | None
    updated_at: dt.datetime


class SeriesChangeOut(ScheduleOut):
    """The schedule after a change to the series; ``reset_occurrences``: the original
    starts (in the old zone) of the cancelled and moved occurrences the change forgot (a
    new start, zone or recurrence does: they belonged to the old pattern), empty when
    none were."""

    reset_occurrences: list[dt.datetime] = Field(default_factory=list)


class MeetingOut(Wire):
    id: str
    title: str
    settings: dict[str, Any]
    host_id: str
    room: str
    created_at: dt.datetime
    ended_at: dt.datetime | None
    schedule: ScheduleOut | None = None


class ScheduleChange(Wire):
    """A change to a whole series; what is left out stays. ``recurrence`` null or "" makes
    it a single meeting. A new start, zone or recurrence forgets the cancelled and moved
    occurrences (they belonged to the old pattern; the answer's ``resetOccurrences`` lists
    them). A new zone alone keeps the recurrence's UNTIL at the same local date and time."""

    model_config = ConfigDict(extra="forbid")

    start: When | None = None
    end: When | None = None
    timezone: Zone | None = None
    recurrence: Recurrence | None = None
    attendees: Attendees | None = None

    @field_validator("attendees")
    @classmethod
    def _attendees(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_attendees(value)


class OccurrenceChange(Wire):
    """One occurrence moved (``start``, ``end``; a new start alone keeps its length) or
    retitled (``title``)."""

    model_config = ConfigDict(extra="forbid")

    start: When | None = None
    end: When | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else check_title(value)


class OccurrenceOut(Wire):
    """One meeting on the calendar: ``recurrence_id`` (its original start) names it for
    changes; times in the meeting's zone."""

    meeting_id: str
    title: str
    recurrence_id: dt.datetime
    start: dt.datetime
    end: dt.datetime
    timezone: str
    recurring: bool
    join_url: str


class OccurrenceList(Wire):
    occurrences: list[OccurrenceOut]
    # More meetings matched than one listing reads: narrow the window.
    truncated: bool = False


class TokenRequest(Wire):
    model_config = ConfigDict(extra="forbid")

    meeting_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class TokenMetadata(BaseModel):
    role: str
    permissions: dict[str, Any]


class TokenResponse(Wire):
    # "joined": a meeting token; "waiting": a lobby token (the waiting room), after which
    # the lobby bot's tp.waiting.status messages say what happens (lk/waiting.py).
    status: Literal["joined", "waiting"] = "joined"
    token: str
    ws_url: str
    identity: str
    name: str
    room: str
    expires_at: dt.datetime
    metadata: TokenMetadata


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]


class ConnectionInfo(Wire):
    ws_url: str
    ice_servers: list[IceServer]  # the one ICE type: as configured, as clients get it
    server: Literal["ok", "degraded", "unreachable"]
    server_detail: str
