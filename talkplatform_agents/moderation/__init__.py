"""Moderation: the waiting room's door and the hosts' controls, shared by the REST routes
and the moderator bot so both enforce the same rules. Uses the store and lk/ only; its
refusals are the package's ``ApiError`` tree (``talkplatform_agents.errors``)."""

from talkplatform_agents.moderation.controls import HostControls
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.policy import MeetingSettings
from talkplatform_agents.moderation.waiting_room import EntryGranted, WaitingRoom

__all__ = ["EntryGranted", "HostControls", "MeetingSettings", "ModerationDeps", "WaitingRoom"]
