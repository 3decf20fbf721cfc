"""The waiting room's and host controls' wire protocol: data topics, RPC methods, payloads.

The moderator bot (agent_name ``waiting-room``) runs in the meeting room and in its lobby
(``meeting-<id>-lobby``). Waiting participants only ever sit in the lobby: livekit-server
delivers room-wide data to everyone in a room, whatever their subscribe permission.

Data topics (JSON, reliable, targeted). The service sends them through the server API
(``SendData``), so they come from no participant: clients must ignore these topics from a
participant (any participant may publish data, and a forged ``returned`` or ``admitted``
would move people out of the meeting, or into a room of its sender's choosing), and follow an
``admitted``/``returned`` only to this meeting's own rooms on the server they already use:
- ``tp.waiting.queue``, to hosts and co-hosts in the meeting room, on every change and to
  each host on arrival: ``{"event": "snapshot"|"knock"|"left"|"admitted"|"denied"|
  "returned", "identity"?: str, "waiting": [{"identity", "name", "since"}]}`` (``since``
  is ISO 8601 UTC; the list is first come, first served).
- ``tp.waiting.status``, to a waiting participant in the lobby:
  ``{"status": "waiting_for_host"|"waiting"|"admitted"|"denied"|"ended", ...}``. An
  ``admitted`` status carries ``token``, ``wsUrl`` and ``room`` for the meeting (the same
  token ``POST /api/v1/livekit/token`` now returns); ``denied`` may carry ``reason``.
  In the meeting room, ``{"status": "returned", "token", "wsUrl", "room"}`` sends a
  participant back to the lobby just before the server removes them from the meeting.
- ``tp.waiting.message``: a host's message to waiting participants, ``{"from", "text"}``.
- ``tp.waiting.chat``: a waiting participant's message to the hosts (send it to the bot in
  the lobby as ``{"text"}``; hosts receive ``{"identity", "name", "text"}``). Data sent to
  a bot has no answer: one sent to a duplicate bot just as it leaves is gone. So the pages
  use ``POST /api/v1/meetings/{id}/waiting-room/note`` ``{"text"}`` instead, which relays
  the same message and answers how many hosts it reached (``hostsReached``).

RPC methods on the bot in the meeting room (callers must be hosts or co-hosts of the
meeting in the store; host-only ones say so). Payloads are JSON; answers are JSON:
- ``waiting.list`` ``{}``; ``waiting.admit`` ``{"identity"}``; ``waiting.admit_all`` ``{}``;
  ``waiting.admit_many`` ``{"identities": [...]}`` (answers who was admitted and who was
  not waiting); ``waiting.deny`` ``{"identity", "reason"?}``; ``waiting.message``
  ``{"text", "identity"?}`` (no identity: everyone waiting); ``waiting.return``
  ``{"identity"}``.
- ``host.mute`` ``{"identity", "trackSid"?, "source"?}`` (default: their microphone);
  ``host.mute_all`` ``{}`` (everyone but hosts and co-hosts); ``host.remove``
  ``{"identity"}``; ``host.lock`` ``{"locked": bool}``; and, host only, ``host.pass``
  ``{"identity"}``, ``host.add_cohost`` ``{"identity"}``, ``host.end`` ``{}``.

Errors are ``RpcError`` with the HTTP status plus 2000: 2400 invalid payload, 2403 not a
host, 2404 not waiting / not present, 2409 conflict, 2410 meeting ended, 2429 too many calls
from this caller (each caller may make ``RpcLimits.per_second`` calls a second after a burst,
with a few at a time: wait and call again), 2502 livekit-server answered with an error, 2503
the database or livekit-server unreachable (try again).

A waiting participant's ``tp.waiting.chat`` messages are limited too (a few a second); those
over the limit are dropped.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from talkplatform_agents.lk.payloads import Payload

__all__ = [
    "HOST_ONLY_METHODS",
    "RPC_ERROR_BASE",
    "RPC_HOST_ADD_COHOST",
    "RPC_HOST_END",
    "RPC_HOST_LOCK",
    "RPC_HOST_MUTE",
    "RPC_HOST_MUTE_ALL",
    "RPC_HOST_PASS",
    "RPC_HOST_REMOVE",
    "RPC_TOO_MANY_REQUESTS",
    "RPC_WAITING_ADMIT",
    "RPC_WAITING_ADMIT_ALL",
    "RPC_WAITING_ADMIT_MANY",
    "RPC_WAITING_DENY",
    "RPC_WAITING_LIST",
    "RPC_WAITING_MESSAGE",
    "RPC_WAITING_RETURN",
    "TOPIC_CHAT",
    "TOPIC_MESSAGE",
    "TOPIC_QUEUE",
    "TOPIC_STATUS",
    "DenyRequest",
    "EmptyRequest",
    "IdentitiesRequest",
    "IdentityRequest",
    "LockRequest",
    "MessageRequest",
    "MuteRequest",
    "WaitingChat",
]

TOPIC_QUEUE = "tp.waiting.queue"
TOPIC_STATUS = "tp.waiting.status"
TOPIC_MESSAGE = "tp.waiting.message"
TOPIC_CHAT = "tp.waiting.chat"

RPC_WAITING_LIST = "waiting.list"
RPC_WAITING_ADMIT = "waiting.admit"
RPC_WAITING_ADMIT_ALL = "waiting.admit_all"
RPC_WAITING_ADMIT_MANY = "waiting.admit_many"
RPC_WAITING_DENY = "waiting.deny"
RPC_WAITING_MESSAGE = "waiting.message"
RPC_WAITING_RETURN = "waiting.return"
RPC_HOST_MUTE = "host.mute"
RPC_HOST_MUTE_ALL = "host.mute_all"
RPC_HOST_REMOVE = "host.remove"
RPC_HOST_LOCK = "host.lock"
RPC_HOST_PASS = "host.pass"
RPC_HOST_ADD_COHOST = "host.add_cohost"
RPC_HOST_END = "host.end"

RPC_ERROR_BASE = 2000  # + the HTTP status of the same failure through REST
# Every bot answers a caller over its per-caller limit with this (bots/rpc_limits.py).
RPC_TOO_MANY_REQUESTS = RPC_ERROR_BASE + 429
HOST_ONLY_METHODS = frozenset({RPC_HOST_PASS, RPC_HOST_ADD_COHOST, RPC_HOST_END})

MAX_TEXT = 2000
_IDENTITY = Field(min_length=1, max_length=128)


class EmptyRequest(Payload):
    pass


class IdentityRequest(Payload):
    identity: str = _IDENTITY


class IdentitiesRequest(Payload):
    identities: list[Annotated[str, _IDENTITY]] = Field(min_length=1, max_length=500)


class DenyRequest(Payload):
    identity: str = _IDENTITY
    reason: str | None = Field(default=None, max_length=500)


class MessageRequest(Payload):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    identity: str | None = Field(default=None, min_length=1, max_length=128)


class MuteRequest(Payload):
    identity: str = _IDENTITY
    track_sid: str | None = Field(default=None, alias="trackSid", max_length=64)
    source: Literal["microphone", "camera", "screen_share", "screen_share_audio"] = "microphone"


class LockRequest(Payload):
    locked: bool


class WaitingChat(Payload):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
