"""Everything that knows LiveKit's wire details: roles and grants, token minting, room names,
agent names and the topics that bots and clients share."""

from talkplatform_agents.lk.grants import grants_for, permissions_document
from talkplatform_agents.lk.naming import (
    ECHO_AGENT_NAME,
    greenroom_room_name,
    meeting_room_name,
)
from talkplatform_agents.lk.tokens import Credentials, MintedToken, mint_token
from talkplatform_agents.roles import Role  # the one role type, beside the grants per role

__all__ = [
    "ECHO_AGENT_NAME",
    "Credentials",
    "MintedToken",
    "Role",
    "grants_for",
    "greenroom_room_name",
    "meeting_room_name",
    "mint_token",
    "permissions_document",
]
