"""Starting and stopping transcriptions on the service's side, the same for a host's REST
call and for a meeting that transcribes itself (``settings.transcription.auto``): a bot run
(``service/runs.py``) of the transcriber, which the meeting room hears of on
``tp.transcription``. And what a transcript's reader is shown (who may read, the span its
times are counted in).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from livekit import api

from talkplatform_agents.lk import transcription as proto
from talkplatform_agents.lk.naming import TRANSCRIBER_AGENT_NAME
from talkplatform_agents.service.runs import BOT_SILENT_S, RunControl, RunDispatch
from talkplatform_agents.service.schemas import TranscriptionSettings
from talkplatform_agents.store import (
    MeetingRepository,
    MeetingView,
    TranscriptionRepository,
    TranscriptionView,
)

__all__ = [
    "AUTO_REQUESTER",
    "TRANSCRIPTION",
    "TranscriptSpan",
    "auto_transcribe",
    "transcript_span",
    "transcription_settings",
]

TRANSCRIPTION = RunControl(
    noun="transcription",
    bot="transcriber",
    id_key="transcriptionId",
    agent_name=TRANSCRIBER_AGENT_NAME,
    job_metadata=proto.job_metadata,
    notice_topic=proto.TOPIC_NOTICE,
    notice_payload=proto.notice_payload,
    settings_key="transcription",
    settings_model=TranscriptionSettings,
)
# Who asked, for a transcription the meeting's settings started.
AUTO_REQUESTER = TRANSCRIPTION.auto_requester


async def auto_transcribe(
    meetings: MeetingRepository,
    transcriptions: TranscriptionRepository,
    server: RunDispatch,
    event: api.WebhookEvent,
) -> TranscriptionView | None:
    """The webhook's part: ``RunControl.auto_start`` of a transcription."""
    return await TRANSCRIPTION.auto_start(meetings, transcriptions, server, event)


def transcription_settings(meeting: MeetingView) -> TranscriptionSettings:
    """The meeting's ``settings.transcription`` (malformed: the defaults, logged)."""
    return TRANSCRIPTION.settings(meeting)


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
    # Only what a transcriber began counts: a start whose dispatch failed, or one stopped
    # before a bot came, transcribed nothing, and must not stretch the span.
    began = [t for t in made if t.started_at is not None] or made
    if not began:
        at = _ms(meeting.room_started_at or meeting.created_at)
        return TranscriptSpan(at, at)
    first = began[0]
    origin = _ms(first.started_at or first.created_at)
    last = began[-1]
    now = now or dt.datetime.now(dt.UTC)
    if last.ended_at is not None:
        end = _ms(last.ended_at)
    elif last.seen_at is not None and last.seen_at < now - dt.timedelta(seconds=BOT_SILENT_S):
        end = _ms(last.seen_at)  # its transcriber went silent: the transcript ends there
    else:
        end = _ms(now)
    return TranscriptSpan(origin, max(origin, end))


def _ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)
