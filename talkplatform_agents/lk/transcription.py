"""Transcription's wire protocol (UC-11): how the transcriber bot is dispatched, how its
captions reach clients, and how everyone sees that the meeting is transcribed.

**Dispatch.** As the recorder's (``lk/recording.py``): the token service dispatches the bot
``transcriber`` (``naming.TRANSCRIBER_AGENT_NAME``) into the meeting room ``meeting-<id>``
only, when a host asks (REST, CLI) or the meeting's ``settings.transcription.auto`` says so,
with the job metadata ``{"transcriptionId": "<id>"}`` (``TranscriptionJob``). The
transcription's state and its segments live in the store (``store/transcriptions.py``).

**Captions, the LiveKit way** (livekit-agents' convention, shown by components-js
``useTranscriptions`` with no custom code): a text stream on topic ``lk.transcription``
(``TOPIC_CAPTIONS``) per caption, sent by the transcriber *on behalf of* the speaker
(``sender_identity`` is the speaker's identity), with the attributes

- ``lk.segment_id``: one id for a segment's interim texts and its final text;
- ``lk.transcribed_track_id``: the speaker's audio track sid;
- ``lk.transcription_final``: ``"false"`` for an interim text, ``"true"`` for the final one.

Each text is the segment's whole text so far (an interim replaces the one before it).

**Everyone can see that transcription is on**: the participant attribute
``tp.transcribing: "1"`` (``ATTR_TRANSCRIBING``) on the transcriber's own participant while it
transcribes (``"0"`` when it stops). LiveKit has no room attributes (only room metadata, one
string the server API replaces whole); the bot's own attribute goes away with the bot, so a
transcriber that died never leaves a stale flag. And a notice on the data topic
``tp.transcription`` (``TOPIC_NOTICE``, reliable, to everyone): ``{"transcriptionId",
"status": "started" | "stopped" | "failed" | "error", "at": <Unix ms>, "error"?: str}``.
``error`` is a recogniser failure the bot carried on after (one speaker's audio was not
transcribed for a while); ``failed`` ends the transcription.

**RPC methods on the transcriber** (hosts and co-hosts, as the store says):
``transcription.stop`` ``{}`` → ``{"id", "status"}``, ``transcription.status`` ``{}`` →
``{"id", "status", "startedAt", "speakers"}``. Errors as the moderator's (2403, 2503, ...).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from talkplatform_agents.lk.payloads import Payload, dumps
from talkplatform_agents.lk.runs import MAX_ERROR, RunId, clip_error

__all__ = [
    "ATTR_FINAL",
    "ATTR_SEGMENT_ID",
    "ATTR_TRACK_ID",
    "ATTR_TRANSCRIBING",
    "MAX_ERROR",
    "NOTICE_ERROR",
    "NOTICE_FAILED",
    "NOTICE_STARTED",
    "NOTICE_STOPPED",
    "RPC_TRANSCRIPTION_STATUS",
    "RPC_TRANSCRIPTION_STOP",
    "TOPIC_CAPTIONS",
    "TOPIC_NOTICE",
    "NoticeStatus",
    "TranscriptionJob",
    "TranscriptionNotice",
    "caption_attributes",
    "job_metadata",
    "notice_payload",
]

TOPIC_CAPTIONS = "lk.transcription"
ATTR_SEGMENT_ID = "lk.segment_id"
ATTR_TRACK_ID = "lk.transcribed_track_id"
ATTR_FINAL = "lk.transcription_final"

ATTR_TRANSCRIBING = "tp.transcribing"

TOPIC_NOTICE = "tp.transcription"
NOTICE_STARTED: Final = "started"
NOTICE_STOPPED: Final = "stopped"
NOTICE_FAILED: Final = "failed"
NOTICE_ERROR: Final = "error"
NoticeStatus = Literal["started", "stopped", "failed", "error"]

RPC_TRANSCRIPTION_STOP = "transcription.stop"
RPC_TRANSCRIPTION_STATUS = "transcription.status"


class TranscriptionJob(Payload):
    """The transcriber's job metadata: which transcription (a row in the store) it serves."""

    model_config = ConfigDict(populate_by_name=True)

    transcription_id: RunId = Field(alias="transcriptionId")


class TranscriptionNotice(Payload):
    """What everyone in the meeting room hears on ``tp.transcription``."""

    model_config = ConfigDict(populate_by_name=True)

    transcription_id: RunId = Field(alias="transcriptionId")
    status: NoticeStatus
    at: int = Field(ge=0, description="Unix time in milliseconds")
    error: str | None = Field(default=None, max_length=MAX_ERROR)


def caption_attributes(segment_id: str, track_sid: str, final: bool) -> dict[str, str]:
    """A caption text stream's attributes."""
    return {
        ATTR_SEGMENT_ID: segment_id,
        ATTR_TRACK_ID: track_sid,
        ATTR_FINAL: "true" if final else "false",
    }


def job_metadata(transcription_id: str) -> str:
    return dumps(TranscriptionJob(transcription_id=transcription_id).model_dump(by_alias=True))


def notice_payload(
    transcription_id: str, status: NoticeStatus, at_ms: int, error: str | None = None
) -> str:
    """The JSON of a ``tp.transcription`` notice."""
    notice = TranscriptionNotice(
        transcription_id=transcription_id, status=status, at=at_ms, error=clip_error(error)
    )
    return dumps(notice.model_dump(by_alias=True, exclude_none=True))
