"""Persistence only: models, repositories and migrations. Imports nothing above it."""

from talkplatform_agents.store.attendance import AttendanceRepository, AttendanceView
from talkplatform_agents.store.calendar_sync import (
    CalendarItemView,
    CalendarSyncRepository,
    CalendarSyncView,
)
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.dial_ins import DialInRepository, DialInView
from talkplatform_agents.store.meetings import (
    DoorView,
    MeetingRepository,
    MeetingSnapshot,
    MeetingView,
)
from talkplatform_agents.store.migrate import upgrade
from talkplatform_agents.store.recordings import RecordingRepository, RecordingView
from talkplatform_agents.store.runs import RunStatus, RunView
from talkplatform_agents.store.schedule_actions import ActionView, ScheduleActionRepository
from talkplatform_agents.store.schedules import ScheduleRecord, ScheduleRepository, ScheduleView
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
    "ActionView",
    "AttendanceRepository",
    "AttendanceView",
    "CalendarItemView",
    "CalendarSyncRepository",
    "CalendarSyncView",
    "Database",
    "DialInRepository",
    "DialInView",
    "DoorView",
    "MeetingRepository",
    "MeetingSnapshot",
    "MeetingView",
    "RecordingRepository",
    "RecordingView",
    "RunStatus",
    "RunView",
    "ScheduleActionRepository",
    "ScheduleRecord",
    "ScheduleRepository",
    "ScheduleView",
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
