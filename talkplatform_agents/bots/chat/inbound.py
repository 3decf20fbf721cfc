"""Incoming chat in either wire form, normalised to one ``ChatIn``."""

from __future__ import annotations

from dataclasses import dataclass

from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk.naming import validate_identity

__all__ = ["ChatIn", "from_legacy", "from_text_stream"]

_MAX_RECIPIENTS = 64


@dataclass(frozen=True)
class ChatIn:
    id: str
    sender: str
    text: str
    # Addressed to the bot for relaying (else the SFU delivered it to everyone already).
    relay: bool
    to: tuple[str, ...]  # private recipients; empty for a room message
    reply_to: str | None
    legacy: bool

    @property
    def private(self) -> bool:
        return bool(self.to)


def from_text_stream(
    stream_id: str, sender: str, text: str, attributes: dict[str, str] | None
) -> ChatIn:
    attrs = attributes or {}
    if not 1 <= len(stream_id) <= 128:
        raise proto.BadPayload("the stream id must be 1-128 characters")
    to = _recipients(attrs.get(proto.ATTR_TO, "").split(","))
    reply_to = attrs.get(proto.ATTR_REPLY_TO) or None
    if reply_to is not None and len(reply_to) > 128:
        raise proto.BadPayload(f"{proto.ATTR_REPLY_TO} must be at most 128 characters")
    relay = attrs.get(proto.ATTR_RELAY, "") in ("1", "true") or bool(to)
    return ChatIn(stream_id, sender, text, relay, to, reply_to, legacy=False)


def from_legacy(sender: str, payload: bytes) -> ChatIn | None:
    """``None``: a copy of a text stream the sender also sent (``ignoreLegacy``)."""
    message = proto.parse_lenient(proto.LegacyChatMessage, payload)
    if message.ignore_legacy:
        return None
    to = _recipients(message.to or [])
    return ChatIn(
        message.id,
        sender,
        message.message,
        message.relay or bool(to),
        to,
        message.reply_to,
        legacy=True,
    )


def _recipients(raw: list[str]) -> tuple[str, ...]:
    names = [name.strip() for name in raw if name.strip()]
    if len(names) > _MAX_RECIPIENTS:
        raise proto.BadPayload(f"at most {_MAX_RECIPIENTS} recipients")
    try:
        return tuple(dict.fromkeys(validate_identity(name) for name in names))
    except ValueError as exc:
        raise proto.BadPayload(str(exc)) from exc
