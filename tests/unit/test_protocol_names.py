"""Every wire name a client depends on, pinned to the string README.md documents: a constant
that drifts from the documentation (or the documentation from it) fails here, not in a
client that silently never hears a topic or calls a method nobody registered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from talkplatform_agents.lk import (
    bot_status,
    chat,
    greenroom,
    naming,
    recording,
    transcription,
    waiting,
)

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")

WIRE_NAMES: list[tuple[str, str]] = [
    # The moderator bot's RPC methods (lk/waiting.py).
    (waiting.RPC_WAITING_LIST, "waiting.list"),
    (waiting.RPC_WAITING_ADMIT, "waiting.admit"),
    (waiting.RPC_WAITING_ADMIT_MANY, "waiting.admit_many"),
    (waiting.RPC_WAITING_ADMIT_ALL, "waiting.admit_all"),
    (waiting.RPC_WAITING_DENY, "waiting.deny"),
    (waiting.RPC_WAITING_MESSAGE, "waiting.message"),
    (waiting.RPC_WAITING_RETURN, "waiting.return"),
    (waiting.RPC_HOST_MUTE, "host.mute"),
    (waiting.RPC_HOST_MUTE_ALL, "host.mute_all"),
    (waiting.RPC_HOST_REMOVE, "host.remove"),
    (waiting.RPC_HOST_LOCK, "host.lock"),
    (waiting.RPC_HOST_PASS, "host.pass"),
    (waiting.RPC_HOST_ADD_COHOST, "host.add_cohost"),
    (waiting.RPC_HOST_END, "host.end"),
    # The waiting room's topics.
    (waiting.TOPIC_QUEUE, "tp.waiting.queue"),
    (waiting.TOPIC_STATUS, "tp.waiting.status"),
    (waiting.TOPIC_MESSAGE, "tp.waiting.message"),
    (waiting.TOPIC_CHAT, "tp.waiting.chat"),
    # The green room's RPCs and topics (lk/greenroom.py).
    (greenroom.RPC_SET_AUDIO_MODE, "greenroom.set_audio_mode"),
    (greenroom.RPC_SET_BLUR, "greenroom.set_blur"),
    (greenroom.RPC_SET_PREVIEW, "greenroom.set_preview"),
    (greenroom.RPC_GET_REPORT, "greenroom.get_report"),
    (greenroom.TOPIC_LEVEL, "tp.greenroom.level"),
    (greenroom.TOPIC_STATE, "tp.greenroom.state"),
    (greenroom.TOPIC_REPORT, "tp.greenroom.report"),
    # Chat's topics, attributes and RPCs (lk/chat.py).
    (chat.TOPIC_CHAT, "lk.chat"),
    (chat.TOPIC_LEGACY_CHAT, "lk-chat-topic"),
    (chat.TOPIC_REACTION, "tp.chat.reaction"),
    (chat.TOPIC_EVENT, "tp.chat.event"),
    (chat.ATTR_RELAY, "tp.relay"),
    (chat.ATTR_TO, "tp.to"),
    (chat.ATTR_REPLY_TO, "tp.replyTo"),
    (chat.RPC_DELETE, "chat.delete"),
    (chat.RPC_MUTE, "chat.mute"),
    (chat.RPC_REACTIONS, "chat.reactions"),
    # Recording's consent signals and the recorder's RPCs (lk/recording.py).
    (recording.ATTR_RECORDING, "tp.recording"),
    (recording.TOPIC_NOTICE, "tp.recording.notice"),
    (recording.RPC_RECORDING_STOP, "recording.stop"),
    (recording.RPC_RECORDING_STATUS, "recording.status"),
    (naming.RECORDER_AGENT_NAME, "recorder"),
    # Transcription: LiveKit's caption convention, our flag and notices (lk/transcription.py).
    (transcription.TOPIC_CAPTIONS, "lk.transcription"),
    (transcription.ATTR_SEGMENT_ID, "lk.segment_id"),
    (transcription.ATTR_TRACK_ID, "lk.transcribed_track_id"),
    (transcription.ATTR_FINAL, "lk.transcription_final"),
    (transcription.ATTR_TRANSCRIBING, "tp.transcribing"),
    (transcription.TOPIC_NOTICE, "tp.transcription"),
    (transcription.RPC_TRANSCRIPTION_STOP, "transcription.stop"),
    (transcription.RPC_TRANSCRIPTION_STATUS, "transcription.status"),
    (naming.TRANSCRIBER_AGENT_NAME, "transcriber"),
    # The bots as the server dispatches them, and how a bot tells it serves its room.
    (naming.ECHO_AGENT_NAME, "greenroom-echo"),
    (naming.WAITING_ROOM_AGENT_NAME, "waiting-room"),
    (naming.CHAT_AGENT_NAME, "chat-relay"),
    (naming.AGENT_NAME_ATTRIBUTE, "lk.agent.name"),
    (naming.ACTIVE_ATTRIBUTE, "tp.bot.active"),
    # The service's word to hosts that a bot is missing (lk/bot_status.py).
    (bot_status.TOPIC_BOTS_MISSING, "tp.bots.missing"),
    (naming.ROLE_ATTRIBUTE, "role"),
]


@pytest.mark.parametrize(("constant", "documented"), WIRE_NAMES, ids=[d for _, d in WIRE_NAMES])
def test_the_constant_is_the_documented_name(constant: str, documented: str) -> None:
    assert constant == documented


@pytest.mark.parametrize("documented", [d for _, d in WIRE_NAMES])
def test_the_readme_documents_the_name(documented: str) -> None:
    # As code in the README: `name`, `name {payload}` or `name: value`; not a longer name.
    assert re.search(rf"`{re.escape(documented)}[` :]", README), documented


def test_no_two_wire_names_collide() -> None:
    names = [d for _, d in WIRE_NAMES]
    assert len(names) == len(set(names))
