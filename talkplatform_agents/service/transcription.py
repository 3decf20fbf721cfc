"""Starting and stopping transcriptions on the service's side, the same for a host's REST
call and for a meeting that transcribes itself (``settings.transcription.auto``); and what
a transcript's reader is shown (who may read, the span its times are counted in).

As recordings (service/recording.py): a start writes the transcription (``starting``) first,
then dispatches the transcriber into the meeting room with the transcription's id as its
job metadata. If the dispatch fails, the transcription ends ``failed`` with the reason, so
it is listed (nothing is lost) and does not block the next start; the caller gets the
failure (502 or 503), and the room hears a ``tp.transcription`` ``failed`` notice (best
effort).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from livekit import api

from talkplatform_agents.errors import ApiError, Conflict
from talkplatform_agents.lk.naming import (
    TRANSCRIBER_AGENT_NAME,
    RoomKind,
    meeting_room_name,
    parse_room,
)
from talkplatform_agents.lk.server_api import as_api_error
from talkplatform_agents.lk.transcription import (
    NOTICE_FAILED,
    TOPIC_NOTICE,
    job_metadata,
    notice_payload,
)
from talkplatform_agents.service.schemas import TranscriptionSettings
from talkplatform_agents.store import (
    MeetingRepository,
    MeetingView,
    RunStatus,
    TranscriptionRepository,
    TranscriptionView,
)

__all__ = [
    "AUTO_REQUESTER",
    "TRANSCRIBER_SILENT_S",
    "TranscriberDispatch",
    "TranscriptSpan",
    "auto_transcribe",
    "start_transcription",
    "stop_transcription",
    "transcript_span",
    "transcription_settings",
]

logger = logging.getLogger(__name__)

# Who asked, for a transcription the meeting's settings started.
AUTO_REQUESTER = "settings.transcription.auto"
# A stopping transcription whose transcriber has not checked in for this long is taken for
# abandoned when a host asks again (the transcriber checks in every few seconds).
TRANSCRIBER_SILENT_S = 60.0


class TranscriberDispatch(Protocol):
    """What starting a transcription needs of livekit-server (``ServerApi`` is one)."""

    async def dispatch(self, room: str, agent_name: str, metadata: str = "") -> str: ...

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None: ...


async def start_transcription(
    transcriptions: TranscriptionRepository,
    server: TranscriberDispatch,
    meeting_id: str,
    requested_by: str,
) -> TranscriptionView:
    """A new transcription of the meeting, its transcriber dispatched. ``Conflict`` while
    one runs; livekit-server's failure (502, 503) once the transcription is marked failed."""
    room = meeting_room_name(meeting_id)
    transcription = await transcriptions.start(meeting_id, requested_by)
    try:
        await server.dispatch(room, TRANSCRIBER_AGENT_NAME, job_metadata(transcription.id))
    except Exception as exc:
        error = as_api_error(exc)
        reason = error.message if error else f"{type(exc).__name__}: {exc}"
        logger.warning("[%s] transcription %s: the transcriber could not be dispatched: %s",
                       room, transcription.id, reason)  # fmt: skip
        await transcriptions.finish(
            transcription.id,
            RunStatus.FAILED,
            f"the transcriber could not be dispatched: {reason}",
        )
        await _tell_failed(server, room, transcription.id, reason)
        if error is None:
            raise  # a bug: the service's logged 500
        raise type(error)(
            f"the transcriber could not be dispatched: {error.message}",
            meetingId=meeting_id,
            transcriptionId=transcription.id,
        ) from exc
    logger.info("[%s] transcription %s requested by %s", room, transcription.id, requested_by)
    return transcription


async def stop_transcription(
    transcriptions: TranscriptionRepository,
    server: TranscriberDispatch,
    transcription: TranscriptionView,
) -> TranscriptionView:
    """Ask the transcription to stop (the transcriber learns it at its next check-in); end
    it at once if no transcriber began, or if its transcriber fell silent after an earlier
    stop."""
    silent_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=TRANSCRIBER_SILENT_S)
    stopped = await transcriptions.request_stop(transcription.id, silent_since=silent_since)
    stopped = stopped or transcription
    room = meeting_room_name(transcription.meeting_id)
    logger.info("[%s] transcription %s: stop asked (%s)", room, transcription.id,
                stopped.status)  # fmt: skip
    if stopped.status is RunStatus.FAILED and transcription.status.running:
        # Its transcriber is gone, so nobody else says that transcription is off.
        await _tell_failed(server, room, transcription.id, stopped.error or "")
    return stopped


def transcription_settings(meeting: MeetingView) -> TranscriptionSettings:
    """The meeting's ``settings.transcription`` (malformed: the defaults, logged)."""
    value = meeting.settings.get("transcription")
    if value is None:
        return TranscriptionSettings()
    try:
        return TranscriptionSettings.model_validate(value)
    except ValueError as exc:
        logger.warning("[%s] settings.transcription is malformed (%s): the defaults apply",
                       meeting_room_name(meeting.id), exc)  # fmt: skip
        return TranscriptionSettings()


async def auto_transcribe(
    meetings: MeetingRepository,
    transcriptions: TranscriptionRepository,
    server: TranscriberDispatch,
    event: api.WebhookEvent,
) -> TranscriptionView | None:
    """On someone joining a meeting room whose settings say ``transcription.auto``: start a
    transcription, unless one was made since the room started (running, or stopped by a
    host: a stop holds for the rest of that room's life). Never raises: a webhook is no
    place to fail for this, so failures are logged. The transcription started, if any."""
    if event.event != "participant_joined":
        return None
    if event.participant.kind == api.ParticipantInfo.Kind.AGENT:
        return None
    ref = parse_room(event.room.name)
    if ref.kind is not RoomKind.MEETING:
        return None
    try:
        meeting = await meetings.get(ref.key)
        if meeting is None or meeting.ended_at is not None:
            return None
        if not transcription_settings(meeting).auto:
            return None
        since = _room_created(event.room) or meeting.room_started_at
        made = await transcriptions.of_meeting(meeting.id)
        if any(since is None or t.created_at >= since for t in made):
            return None
        return await start_transcription(transcriptions, server, meeting.id, AUTO_REQUESTER)
    except Conflict:
        return None  # another service process started it
    except ApiError as exc:
        logger.warning("[%s] transcribing on its own failed: %s", event.room.name, exc.message)
    except Exception:
        logger.exception("[%s] transcribing on its own failed", event.room.name)
    return None


@dataclass(frozen=True)
class TranscriptSpan:
    """What a transcript's times count from, and the span its analytics cover (Unix ms)."""

    origin_ms: int  # the first transcription's start (else its creation)
    end_ms: int  # the last one's end, now while one runs; never before the origin


def transcript_span(
    meeting: MeetingView, made: list[TranscriptionView], now: dt.datetime | None = None
) -> TranscriptSpan:
    """The span of the meeting's transcript from its transcriptions (oldest first). With
    none: an empty span at the meeting room's last start (else the meeting's creation)."""
    if not made:
        at = _ms(meeting.room_started_at or meeting.created_at)
        return TranscriptSpan(at, at)
    first = made[0]
    origin = _ms(first.started_at or first.created_at)
    last = made[-1]
    if last.status.running or last.ended_at is None:
        end = _ms(now or dt.datetime.now(dt.UTC))
    else:
        end = _ms(last.ended_at)
    return TranscriptSpan(origin, max(origin, end))


def _ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)


def _room_created(room: api.Room) -> dt.datetime | None:
    """When livekit-server created this room (the webhook's word, so never the previous
    session's, as the store's ``room_started_at`` may be while webhooks race)."""
    if room.creation_time_ms:
        return dt.datetime.fromtimestamp(room.creation_time_ms / 1000, dt.UTC)
    if room.creation_time:
        return dt.datetime.fromtimestamp(room.creation_time, dt.UTC)
    return None


async def _tell_failed(
    server: TranscriberDispatch, room: str, transcription_id: str, why: str
) -> None:
    """Everyone in the room hears that the transcription failed; best effort (livekit-server
    may be what failed)."""
    payload = notice_payload(transcription_id, NOTICE_FAILED, int(time.time() * 1000), why)
    try:
        await server.send_data(room, TOPIC_NOTICE, payload)
    except Exception as exc:
        logger.info("[%s] transcription %s: failure notice not sent: %s", room,
                    transcription_id, exc)  # fmt: skip
