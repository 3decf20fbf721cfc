"""Moderation: the waiting room's door and the hosts' controls, shared by the REST routes
and the moderator bot so both enforce the same rules. Uses the store and lk/ only."""

from talkplatform_agents.moderation.controls import HostControls
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.door import EntryGranted, WaitingRoom
from talkplatform_agents.moderation.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    ModerationError,
    NotFound,
)
from talkplatform_agents.moderation.policy import MeetingSettings

__all__ = [
    "Conflict",
    "EntryGranted",
    "Forbidden",
    "Gone",
    "HostControls",
    "Invalid",
    "MeetingSettings",
    "ModerationDeps",
    "ModerationError",
    "NotFound",
    "WaitingRoom",
]
