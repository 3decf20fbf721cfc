"""What the bot sends: chat in both wire forms, events, reactions."""

from __future__ import annotations

import time
import uuid
from typing import Any

from livekit import rtc

from talkplatform_agents.lk import chat as proto
from talkplatform_agents.store.chat import StoredMessage

__all__ = ["Outbox", "message_attributes"]


def message_attributes(message: StoredMessage, kind: str) -> dict[str, str]:
    attrs = {
        proto.ATTR_KIND: kind,
        proto.ATTR_SENDER: message.sender,
        proto.ATTR_TIMESTAMP: str(_ms(message.sent_at.timestamp())),
    }
    if message.sender_name:
        attrs[proto.ATTR_SENDER_NAME] = message.sender_name
    if message.edited_at is not None:
        attrs[proto.ATTR_EDITED] = str(_ms(message.edited_at.timestamp()))
    if message.private:
        attrs[proto.ATTR_PRIVATE] = "1"
    if message.reply_to:
        attrs[proto.ATTR_REPLY_TO] = message.reply_to
    return attrs


class Outbox:
    """Sends through the bot's local participant. ``to=None`` is everyone in the room."""

    def __init__(self, room: rtc.Room) -> None:
        self._room = room

    async def chat(
        self,
        message_id: str,
        text: str,
        attributes: dict[str, str],
        to: list[str] | None,
        *,
        timestamp_ms: int | None = None,
        edit_timestamp_ms: int | None = None,
    ) -> None:
        """A text stream on ``lk.chat`` whose id is the message id, then the same message as
        a legacy packet that current clients ignore."""
        local = self._room.local_participant
        writer = await local.stream_text(
            destination_identities=to,
            topic=proto.TOPIC_CHAT,
            attributes=attributes,
            stream_id=message_id,
        )
        try:
            await writer.write(text)
        finally:
            await writer.aclose()
        legacy: dict[str, Any] = {
            **{key.removeprefix("tp."): value for key, value in attributes.items()},
            "id": message_id,
            "timestamp": timestamp_ms or _ms(time.time()),
            "message": text,
            "ignoreLegacy": True,
        }
        if edit_timestamp_ms is not None:
            legacy["editTimestamp"] = edit_timestamp_ms
        await self.data(proto.TOPIC_LEGACY_CHAT, legacy, to)

    async def message(self, message: StoredMessage, kind: str, to: list[str] | None) -> None:
        await self.chat(
            message.id,
            "(message deleted)" if message.deleted else message.text,
            message_attributes(message, "deleted" if message.deleted else kind),
            to,
            timestamp_ms=_ms(message.sent_at.timestamp()),
            edit_timestamp_ms=_ms(message.edited_at.timestamp()) if message.edited_at else None,
        )

    async def notice(self, to: str, code: str, text: str, ref: str | None = None) -> None:
        attrs = {proto.ATTR_KIND: "notice", proto.ATTR_CODE: code}
        if ref:
            attrs[proto.ATTR_REF] = ref[:128]
        await self.chat(f"notice-{uuid.uuid4().hex}", text, attrs, [to])

    async def data(self, topic: str, body: dict[str, Any], to: list[str] | None) -> None:
        await self._room.local_participant.publish_data(
            proto.dumps(body).encode(),
            reliable=True,
            destination_identities=to or [],
            topic=topic,
        )


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
