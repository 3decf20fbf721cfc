"""Persistence only: models, repositories and migrations. Imports nothing above it."""

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.meetings import MeetingRepository, MeetingView
from talkplatform_agents.store.migrate import upgrade

__all__ = ["Database", "MeetingRepository", "MeetingView", "upgrade"]
