"""Starting and stopping recordings on the service's side, the same for a host's REST call
and for a meeting that records itself (``settings.recording.auto``).

A start writes the recording (``starting``) first, then dispatches the recorder into the
meeting room with the recording's id as its job metadata. If the dispatch fails, the
recording ends ``failed`` with the reason, so it is listed (nothing is lost) and does not
block the next start; the caller gets the failure (502 or 503). A dispatch that reached
livekit-server is not retried here: the server holds it until a worker takes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Protocol

from livekit import api

from talkplatform_agents.errors import ApiError, Conflict
from talkplatform_agents.lk.naming import (
    RECORDER_AGENT_NAME,
    RoomKind,
    meeting_room_name,
    parse_room,
)
from talkplatform_agents.lk.recording import (
    NOTICE_FAILED,
    TOPIC_NOTICE,
    job_metadata,
    notice_payload,
)
from talkplatform_agents.lk.server_api import as_api_error
from talkplatform_agents.service.schemas import RecordingSettings
from talkplatform_agents.store import (
    MeetingRepository,
    RecordingRepository,
    RecordingView,
    RunStatus,
)

__all__ = [
    "AUTO_REQUESTER",
    "RECORDER_SILENT_S",
    "RecorderDispatch",
    "auto_record",
    "auto_records",
    "start_recording",
    "stop_recording",
]

logger = logging.getLogger(__name__)

# Who asked, for a recording the meeting's settings started.
AUTO_REQUESTER = "settings.recording.auto"
# A stopping recording whose recorder has not checked in for this long is taken for
# abandoned when a host asks again (the recorder checks in every few seconds).
RECORDER_SILENT_S = 60.0


class RecorderDispatch(Protocol):
    """What starting a recording needs of livekit-server (``ServerApi`` is one)."""

    async def dispatch(self, room: str, agent_name: str, metadata: str = "") -> str: ...

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None: ...


async def start_recording(
    recordings: RecordingRepository, server: RecorderDispatch, meeting_id: str, requested_by: str
) -> RecordingView:
    """A new recording of the meeting, its recorder dispatched. ``Conflict`` while one runs;
    livekit-server's failure (502, 503) once the recording is marked failed."""
    room = meeting_room_name(meeting_id)
    recording = await recordings.start(meeting_id, requested_by)
    try:
        await server.dispatch(room, RECORDER_AGENT_NAME, job_metadata(recording.id))
    except Exception as exc:
        error = as_api_error(exc)
        reason = error.message if error else f"{type(exc).__name__}: {exc}"
        logger.warning("[%s] recording %s: the recorder could not be dispatched: %s",
                       room, recording.id, reason)  # fmt: skip
        await recordings.finish(
            recording.id, RunStatus.FAILED, f"the recorder could not be dispatched: {reason}"
        )
        await _tell_failed(server, room, recording.id, reason)
        if error is None:
            raise  # a bug: the service's logged 500
        raise type(error)(
            f"the recorder could not be dispatched: {error.message}",
            meetingId=meeting_id,
            recordingId=recording.id,
        ) from exc
    logger.info("[%s] recording %s requested by %s", room, recording.id, requested_by)
    return recording


async def stop_recording(
    recordings: RecordingRepository, server: RecorderDispatch, recording: RecordingView
) -> RecordingView:
    """Ask the recording to stop (the recorder learns it at its next check-in); end it at
    once if no recorder began, or if its recorder fell silent after an earlier stop."""
    silent_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=RECORDER_SILENT_S)
    stopped = await recordings.request_stop(recording.id, silent_since=silent_since)
    stopped = stopped or recording
    room = meeting_room_name(recording.meeting_id)
    logger.info("[%s] recording %s: stop asked (%s)", room, recording.id, stopped.status)
    if stopped.status is RunStatus.FAILED and recording.status.running:
        # Its recorder is gone, so nobody else says that recording is off.
        await _tell_failed(server, room, recording.id, stopped.error or "")
    return stopped


def auto_records(settings: dict[str, object]) -> bool:
    """Whether the meeting's settings ask it to record itself (malformed: no, logged)."""
    value = settings.get("recording")
    if value is None:
        return False
    try:
        return RecordingSettings.model_validate(value).auto
    except ValueError as exc:
        logger.warning("settings.recording is malformed (%s): not recording on its own", exc)
        return False


async def auto_record(
    meetings: MeetingRepository,
    recordings: RecordingRepository,
    server: RecorderDispatch,
    event: api.WebhookEvent,
) -> RecordingView | None:
    """On someone joining a meeting room whose settings say ``recording.auto``: start a
    recording, unless one was made since the room started (running, or stopped by a host:
    a stop holds for the rest of that room's life). Never raises: a webhook is no place to
    fail for this, so failures are logged. The recording started, if any."""
    if event.event != "participant_joined":
        return None
    if event.participant.kind == api.ParticipantInfo.Kind.AGENT:
        return None
    ref = parse_room(event.room.name)
    if ref.kind is not RoomKind.MEETING:
        return None
    try:
        meeting = await meetings.get(ref.key)
        if meeting is None or meeting.ended_at is not None or not auto_records(meeting.settings):
            return None
        since = _room_created(event.room) or meeting.room_started_at
        made = await recordings.of_meeting(meeting.id)
        if any(since is None or r.created_at >= since for r in made):
            return None
        return await start_recording(recordings, server, meeting.id, AUTO_REQUESTER)
    except Conflict:
        return None  # another service process started it
    except ApiError as exc:
        logger.warning("[%s] recording on its own failed: %s", event.room.name, exc.message)
    except Exception:
        logger.exception("[%s] recording on its own failed", event.room.name)
    return None


def _room_created(room: api.Room) -> dt.datetime | None:
    """When livekit-server created this room (the webhook's word, so never the previous
    session's, as the store's ``room_started_at`` may be while webhooks race)."""
    if room.creation_time_ms:
        return dt.datetime.fromtimestamp(room.creation_time_ms / 1000, dt.UTC)
    if room.creation_time:
        return dt.datetime.fromtimestamp(room.creation_time, dt.UTC)
    return None


async def _tell_failed(server: RecorderDispatch, room: str, recording_id: str, why: str) -> None:
    """Everyone in the room hears that the recording failed; best effort (livekit-server
    may be what failed)."""
    payload = notice_payload(recording_id, NOTICE_FAILED, int(time.time() * 1000), why)
    try:
        await server.send_data(room, TOPIC_NOTICE, payload)
    except Exception as exc:
        logger.info("[%s] recording %s: failure notice not sent: %s", room, recording_id, exc)
