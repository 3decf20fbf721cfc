"""Recording's wire protocol (UC-11): how the recorder bot is dispatched, how everyone in
the meeting sees that recording is on, and the hosts' RPCs on the recorder.

**Dispatch.** The token service dispatches the bot ``recorder`` (``naming.
RECORDER_AGENT_NAME``) into the meeting room ``meeting-<id>`` only (never the lobby, so
nobody waiting is recorded), and only when a recording is asked for (a host's REST call,
the CLI, or the meeting's ``settings.recording.auto``), with the job metadata
``{"recordingId": "<id>"}`` (``RecordingJob``). The recording's state lives in the store
(``store/recordings.py``), not in the bot, so a recorder that is replaced carries on the
same recording in a new part.

**Consent: everyone can see that recording is on**, two ways:

- The participant attribute ``tp.recording: "1"`` (``ATTR_RECORDING``) on the recorder's own
  participant, set once it writes media and set to ``"0"`` when it stops. Recording is on
  while some participant in the room carries ``tp.recording: "1"``. LiveKit has no room
  attributes, only room metadata (one string that the server API replaces whole), and
  livekit-server's own flag (``Room.active_recording``, ``room.isRecording`` in the client
  SDKs) is raised only for a participant whose token has the ``recorder`` grant or kind
  EGRESS, which a dispatched agent's token has neither of (livekit/protocol
  ``agent/token.go``). The recorder's own attribute is therefore the standard place it can
  write: every client sees it (late joiners too, with the participant list), and it goes
  away with the recorder, so a recorder that died never leaves a stale "recording" behind.
  The recorder must not be ``hidden`` (hidden participants are not listed to others).
- A notice on the data topic ``tp.recording.notice`` (``TOPIC_NOTICE``, reliable, to
  everyone in the meeting room) on each change: ``{"recordingId", "status": "started" |
  "stopped" | "failed", "at": <Unix ms>, "error"?: str}`` (``RecordingNotice``; ``error``
  only with ``failed``, the reason in words). A client shows it as Zoom and Meet do ("This
  meeting is being recorded").

**RPC methods on the recorder** (callers must be hosts or co-hosts of the meeting in the
store, never as a client claims): ``recording.stop`` ``{}`` → ``{"id", "status"}``, and
``recording.status`` ``{}`` → ``{"id", "status", "parts", "startedAt"}``. Errors as the
moderator's (``lk/waiting.py``): the HTTP status plus 2000 (2403 not a host, 2503 store
unreachable, ...).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from talkplatform_agents.lk.payloads import Payload, dumps
from talkplatform_agents.lk.runs import MAX_ERROR, RunId, clip_error

__all__ = [
    "ATTR_RECORDING",
    "ATTR_RECORDING_OFF",
    "ATTR_RECORDING_ON",
    "MAX_ERROR",
    "NOTICE_FAILED",
    "NOTICE_STARTED",
    "NOTICE_STOPPED",
    "RPC_RECORDING_STATUS",
    "RPC_RECORDING_STOP",
    "TOPIC_NOTICE",
    "NoticeStatus",
    "RecordingJob",
    "RecordingNotice",
    "job_metadata",
    "notice_payload",
]

ATTR_RECORDING = "tp.recording"
ATTR_RECORDING_ON = "1"
ATTR_RECORDING_OFF = "0"

TOPIC_NOTICE = "tp.recording.notice"
NOTICE_STARTED: Final = "started"
NOTICE_STOPPED: Final = "stopped"
NOTICE_FAILED: Final = "failed"
NoticeStatus = Literal["started", "stopped", "failed"]

RPC_RECORDING_STOP = "recording.stop"
RPC_RECORDING_STATUS = "recording.status"


class RecordingJob(Payload):
    """The recorder's job metadata: which recording (a row in the store) this job records.
    Read it with ``payloads.parse(RecordingJob, ctx.job.metadata)``."""

    model_config = ConfigDict(populate_by_name=True)

    recording_id: RunId = Field(alias="recordingId")


class RecordingNotice(Payload):
    """What everyone in the meeting room hears on ``tp.recording.notice``. Send it with
    ``notice_payload``."""

    model_config = ConfigDict(populate_by_name=True)

    recording_id: RunId = Field(alias="recordingId")
    status: NoticeStatus
    at: int = Field(ge=0, description="Unix time in milliseconds")
    error: str | None = Field(default=None, max_length=MAX_ERROR)


def job_metadata(recording_id: str) -> str:
    """The dispatch's metadata for recording ``recording_id``."""
    return dumps(RecordingJob(recording_id=recording_id).model_dump(by_alias=True))


def notice_payload(
    recording_id: str, status: NoticeStatus, at_ms: int, error: str | None = None
) -> str:
    """The JSON of a ``tp.recording.notice`` message."""
    notice = RecordingNotice(
        recording_id=recording_id, status=status, at=at_ms, error=clip_error(error)
    )
    return dumps(notice.model_dump(by_alias=True, exclude_none=True))
