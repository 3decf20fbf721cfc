"""The meeting chat's wire protocol (the chat relay bot, agent_name ``chat-relay``).

Compatible with LiveKit's client components, in both of their forms:

- Current: text streams on ``lk.chat``. The stream id is the message id; a second stream
  with the same id from the same sender is an edit.
- Legacy: reliable data packets on ``lk-chat-topic``, JSON
  ``{"id", "timestamp", "message", "editTimestamp"?}``; the same id from the same sender is
  an edit. Components set ``"ignoreLegacy": true`` when they also sent the text stream.

Stock clients broadcast: every participant, the bot included, gets the message directly
from the SFU, and the bot only persists it (moderation can then only take it back: a
``deleted`` event, a notice to the sender). TalkPlatform clients send through the bot so
that moderation happens before anyone sees a message: they address the text stream to the
bot alone with one of these attributes (legacy packets: the JSON fields ``relay``/``to``):

- ``tp.relay: "1"``: a room message; the bot relays it to everyone else.
- ``tp.to: "alice,bob"``: a private message; the bot relays it to those identities only
  (and to the meeting's hosts when its policy says so).
- ``tp.replyTo``: the id of the message this one answers (optional, any form).

What the bot sends on ``lk.chat`` (text streams whose stream id is the message id; the
same message also goes out as a legacy packet with ``ignoreLegacy: true``, so current
clients show it once and legacy clients show it too). Attributes say what it is:
``tp.kind`` (``message`` | ``history`` | ``notice`` | ``deleted``), ``tp.sender``,
``tp.senderName``, ``tp.timestamp`` (ms), ``tp.edited`` (ms), ``tp.private`` (``"1"``),
``tp.replyTo``, and for notices ``tp.code`` and ``tp.ref`` (the message concerned).
History (the last N messages, oldest first) and notices are addressed to one participant.
History holds what was stored before the bot learnt that the participant joined (later
messages reach them live), and never their own messages of the current visit, even those
written before the bot learnt of them. ``tp.senderName`` is the name in the sender's token.

Other topics (reliable data, JSON):

- ``tp.chat.reaction``: clients send ``{"id", "emoji", "messageId"?}`` to the bot; the bot
  relays ``{"id", "emoji", "messageId", "sender", "timestamp", "counts", "meetingCounts"}``
  to everyone (``counts``: that message's totals per emoji; ``meetingCounts``: the
  meeting's). Clients show reactions from the bot only.
- ``tp.chat.event`` (from the bot): ``{"type": "deleted", "id", "by"}``,
  ``{"type": "edited", "id", "message", "editTimestamp"}`` (an edit, or a masked word in a
  message the SFU had already delivered), ``{"type": "muted", "identity", "muted", "by"}``,
  and to the sender of a message sent through the bot (room or private), once it is
  stored: ``{"type": "stored", "id"}``, the receipt. A client keeps what has no receipt
  and sends it again (same id) to the next chat bot, should this one die before storing
  it; the store keeps one copy, and the receipt comes again.

RPC methods on the bot (hosts and co-hosts only, as the store says; JSON payloads):

- ``chat.delete`` ``{"id"}`` → ``{"id", "deleted": true}``
- ``chat.mute`` ``{"identity", "muted": true|false}`` → ``{"identity", "muted"}``
- ``chat.reactions`` ``{}`` (anyone) → ``{"meeting": {emoji: n}, "messages": {id: {emoji: n}}}``

RPC errors: 2400 invalid payload, 2403 not a host, 2404 no such message, 2429 too many calls
from this caller (wait and call again).

Limits per sender, beside the moderation rules' (``bots/chat/options.py``): chat packets and
text streams together (what is over it is dropped unread, answered by a throttled
``rate_limited`` notice), a few text streams open at a time, and a deadline to finish one.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, Field, FiniteFloat, StrictBool, StrictInt, StrictStr

from talkplatform_agents.lk.payloads import BadPayload, Payload, PayloadT, parse

__all__ = [
    "ATTR_CODE",
    "ATTR_EDITED",
    "ATTR_KIND",
    "ATTR_PRIVATE",
    "ATTR_REF",
    "ATTR_RELAY",
    "ATTR_REPLY_TO",
    "ATTR_SENDER",
    "ATTR_SENDER_NAME",
    "ATTR_TIMESTAMP",
    "ATTR_TO",
    "FORBIDDEN",
    "INVALID_PAYLOAD",
    "NOT_FOUND",
    "RPC_DELETE",
    "RPC_MUTE",
    "RPC_REACTIONS",
    "TOO_MANY_REQUESTS",
    "TOPIC_CHAT",
    "TOPIC_EVENT",
    "TOPIC_LEGACY_CHAT",
    "TOPIC_REACTION",
    "BadPayload",
    "DeleteRequest",
    "EmptyRequest",
    "LegacyChatMessage",
    "MuteRequest",
    "Payload",
    "PayloadT",
    "ReactionIn",
    "dumps",
    "parse",
    "parse_lenient",
]

TOPIC_CHAT = "lk.chat"
TOPIC_LEGACY_CHAT = "lk-chat-topic"
TOPIC_REACTION = "tp.chat.reaction"
TOPIC_EVENT = "tp.chat.event"

ATTR_RELAY = "tp.relay"
ATTR_TO = "tp.to"
ATTR_REPLY_TO = "tp.replyTo"
ATTR_KIND = "tp.kind"
ATTR_SENDER = "tp.sender"
ATTR_SENDER_NAME = "tp.senderName"
ATTR_TIMESTAMP = "tp.timestamp"
ATTR_EDITED = "tp.edited"
ATTR_PRIVATE = "tp.private"
ATTR_CODE = "tp.code"
ATTR_REF = "tp.ref"

RPC_DELETE = "chat.delete"
RPC_MUTE = "chat.mute"
RPC_REACTIONS = "chat.reactions"

INVALID_PAYLOAD = 2400
FORBIDDEN = 2403
NOT_FOUND = 2404
TOO_MANY_REQUESTS = 2429

_ID = Field(min_length=1, max_length=128)


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Lenient(Payload):
    # Clients add fields of their own (``from``, ``attachedFiles``...): ignore them.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class LegacyChatMessage(_Lenient):
    id: StrictStr = _ID
    # JSON has no NaN or infinity; a number too large for a float (1e999) is not a time.
    timestamp: StrictInt | FiniteFloat = 0
    message: StrictStr
    edit_timestamp: StrictInt | FiniteFloat | None = Field(default=None, alias="editTimestamp")
    ignore_legacy: StrictBool = Field(default=False, alias="ignoreLegacy")
    relay: StrictBool = False
    to: list[StrictStr] | None = None
    reply_to: StrictStr | None = Field(default=None, alias="replyTo", max_length=128)


class ReactionIn(_Lenient):
    id: StrictStr = _ID
    emoji: StrictStr = Field(min_length=1, max_length=32)
    message_id: StrictStr | None = Field(default=None, alias="messageId", max_length=128)


class DeleteRequest(Payload):
    id: str = _ID


class MuteRequest(Payload):
    identity: str = Field(min_length=1, max_length=128)
    muted: bool = True


class EmptyRequest(Payload):
    pass


def parse_lenient(model: type[PayloadT], payload: bytes) -> PayloadT:
    """Parse a data packet's bytes: invalid UTF-8 and malformed JSON are ``BadPayload``."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload(f"not UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        raise BadPayload("empty payload")
    return parse(model, text)
