"""Persistence only: models, repositories and migrations. Imports nothing above it."""

from talkplatform_agents.store.attendance import AttendanceRepository, AttendanceView
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.meetings import (
    DoorView,
    MeetingRepository,
    MeetingSnapshot,
    MeetingView,
)
from talkplatform_agents.store.migrate import upgrade
from talkplatform_agents.store.recordings import RecordingRepository, RecordingView
from talkplatform_agents.store.runs import RunStatus, RunView
from talkplatform_agents.store.transcriptions import (
    SegmentView,
    TranscriptionRepository,
    TranscriptionView,
    Word,
)
from talkplatform_agents.store.waiting import (
    Transition,
    WaitingRepository,
    WaitingStats,
    WaitingStatus,
    WaitingView,
)
from talkplatform_agents.store.webhook_events import WebhookEventRepository

__all__ = [
    "AttendanceRepository",
    "AttendanceView",
    "Database",
    "DoorView",
    "MeetingRepository",
    "MeetingSnapshot",
    "MeetingView",
    "RecordingRepository",
    "RecordingView",
    "RunStatus",
    "RunView",
    "SegmentView",
    "TranscriptionRepository",
    "TranscriptionView",
    "Transition",
    "WaitingRepository",
    "WaitingStats",
    "WaitingStatus",
    "WaitingView",
    "WebhookEventRepository",
    "Word",
    "upgrade",
]
