"""Room and agent names: the platform's contract with frontends and bots."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "ACTIVE_ATTRIBUTE",
    "AGENT_NAME_ATTRIBUTE",
    "CHAT_AGENT_NAME",
    "ECHO_AGENT_NAME",
    "LOBBY_AGENTS",
    "MEETING_AGENTS",
    "RECORDER_AGENT_NAME",
    "TRANSCRIBER_AGENT_NAME",
    "WAITING_ROOM_AGENT_NAME",
    "RoomKind",
    "RoomRef",
    "agents_for_room",
    "greenroom_room_name",
    "lobby_room_name",
    "meeting_room_name",
    "parse_room",
    "validate_identity",
]

ECHO_AGENT_NAME = "greenroom-echo"
WAITING_ROOM_AGENT_NAME = "waiting-room"
CHAT_AGENT_NAME = "chat-relay"
# Not one of MEETING_AGENTS: dispatched into a meeting room only while it is recorded
# (lk/recording.py).
RECORDER_AGENT_NAME = "recorder"
# Likewise, only while the meeting is transcribed (lk/transcription.py).
TRANSCRIBER_AGENT_NAME = "transcriber"

# The bots every meeting room and every lobby room must have. The token service dispatches
# them, and its reconciler re-dispatches any that is missing.
MEETING_AGENTS: tuple[str, ...] = (WAITING_ROOM_AGENT_NAME, CHAT_AGENT_NAME)
LOBBY_AGENTS: tuple[str, ...] = (WAITING_ROOM_AGENT_NAME,)

# livekit-agents sets this attribute on each bot's participant to the bot's agent name.
AGENT_NAME_ATTRIBUTE = "lk.agent.name"
# Set to "1" by a bot once it serves its room: a later duplicate of it yields to it, and a
# client may take it as "this is the bot to talk to" (bots/election.py).
ACTIVE_ATTRIBUTE = "tp.bot.active"
# Every participant's role in the meeting (``roles.Role``), set from their token.
ROLE_ATTRIBUTE = "role"

# LiveKit accepts most strings; we keep identities to a set that is safe in room names,
# log lines and URLs.
_IDENTITY = re.compile(r"^[A-Za-z0-9_.@:+-]{1,128}$")
_LOBBY_SUFFIX = "-lobby"


def validate_identity(identity: str) -> str:
    if not _IDENTITY.fullmatch(identity):
        # The reason may go back to whoever sent it: name a long identity by its start.
        shown = repr(identity) if len(identity) <= 140 else f"{identity[:128]!r}..."
        shown = shown if len(shown) <= 300 else shown[:297] + "..."
        raise ValueError(f"identity {shown} must be 1-128 characters of letters, digits and _.@:+-")
    return identity


def meeting_room_name(meeting_id: str) -> str:
    return f"meeting-{meeting_id}"


def lobby_room_name(meeting_id: str) -> str:
    """The waiting room: a separate room, because livekit-server delivers room-wide data to
    every participant whatever their subscribe permission."""
    return f"meeting-{meeting_id}{_LOBBY_SUFFIX}"


def greenroom_room_name(identity: str) -> str:
    """Green rooms are per user, so nobody else's media is ever in them."""
    return f"greenroom-{validate_identity(identity)}"


class RoomKind(enum.StrEnum):
    MEETING = "meeting"
    LOBBY = "lobby"
    GREENROOM = "greenroom"
    OTHER = "other"


@dataclass(frozen=True)
class RoomRef:
    kind: RoomKind
    key: str  # the meeting id, the green room's identity, or the whole name (OTHER)


def parse_room(room: str) -> RoomRef:
    """What a room name says about the room. Meeting ids never end in ``-lobby`` (they are
    hex uuids), so the lobby suffix is unambiguous."""
    if room.startswith("greenroom-") and len(room) > len("greenroom-"):
        return RoomRef(RoomKind.GREENROOM, room.removeprefix("greenroom-"))
    if room.startswith("meeting-"):
        rest = room.removeprefix("meeting-")
        if rest.endswith(_LOBBY_SUFFIX) and len(rest) > len(_LOBBY_SUFFIX):
            return RoomRef(RoomKind.LOBBY, rest.removesuffix(_LOBBY_SUFFIX))
        if rest:
            return RoomRef(RoomKind.MEETING, rest)
    return RoomRef(RoomKind.OTHER, room)


def agents_for_room(room: str) -> tuple[str, ...]:
    """The bots that belong in ``room``."""
    kind = parse_room(room).kind
    if kind is RoomKind.GREENROOM:
        return (ECHO_AGENT_NAME,)
    if kind is RoomKind.MEETING:
        return MEETING_AGENTS
    if kind is RoomKind.LOBBY:
        return LOBBY_AGENTS
    return ()
