"""The moderator bot: waiting room and host controls in meeting rooms and their lobbies."""

from talkplatform_agents.bots.moderator.bot import (
    ModeratorBot,
    ModeratorOptions,
    moderator_session,
)

__all__ = ["ModeratorBot", "ModeratorOptions", "moderator_session"]
