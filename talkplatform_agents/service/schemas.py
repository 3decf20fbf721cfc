"""Request and response bodies: the platform's HTTP contract (camelCase on the wire)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from talkplatform_agents.lk.ice import IceServer
from talkplatform_agents.moderation import MeetingSettings

__all__ = [
    "ConnectionInfo",
    "CreateMeeting",
    "Health",
    "MeetingOut",
    "RecordingSettings",
    "TokenMetadata",
    "TokenRequest",
    "TokenResponse",
    "TranscriptionSettings",
    "check_recording_settings",
    "check_transcription_settings",
]


MAX_SETTINGS_BYTES = 16_384


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CreateMeeting(Wire):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)

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


class MeetingOut(Wire):
    id: str
    title: str
    settings: dict[str, Any]
    host_id: str
    room: str
    created_at: dt.datetime
    ended_at: dt.datetime | None


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
