"""Room and agent names: the platform's contract with frontends and bots."""

from __future__ import annotations

import re

__all__ = [
    "ECHO_AGENT_NAME",
    "greenroom_room_name",
    "meeting_room_name",
    "validate_identity",
]

ECHO_AGENT_NAME = "greenroom-echo"

# LiveKit accepts most strings; we keep identities to a set that is safe in room names,
# log lines and URLs.
_IDENTITY = re.compile(r"^[A-Za-z0-9_.@:+-]{1,128}$")


def validate_identity(identity: str) -> str:
    if not _IDENTITY.fullmatch(identity):
        raise ValueError(
            f"identity {identity!r} must be 1-128 characters of letters, digits and _.@:+-"
        )
    return identity


def meeting_room_name(meeting_id: str) -> str:
    return f"meeting-{meeting_id}"


def greenroom_room_name(identity: str) -> str:
    """Green rooms are per user, so nobody else's media is ever in them."""
    return f"greenroom-{validate_identity(identity)}"
