"""The chat relay bot: relay throughput with persistence on SQLite, and end-to-end delivery
latency through the bot beside direct participant-to-participant delivery, in one run.

    .venv/bin/python bench/chat_relay.py [--messages 1000] [--latency-messages 200]

Inside a fresh network namespace: the real livekit-server and the chat bot, whose store is
SQLite. Participant A sends, participant B receives, in a meeting room with the bot.

- Throughput: A sends ``--messages`` chat messages through the bot as fast as it can (text
  streams addressed to the bot); the bot stores each one, then relays it to B. The rate is
  messages over the time from A's first send to B's last receipt, and every one must be in
  the store. Baseline: the same messages as text streams straight from A to B.
- Latency: A sends ``--latency-messages`` spaced messages through the bot, then as reliable
  data packets straight to B (the baseline the ratio divides by), then as text streams
  straight to B. Both ends share one clock.

The bot's rate limit is lifted for the run (``CHAT_MESSAGES_PER_SECOND``): the benchmark
measures the relay, not the limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE, CHAT_AGENT_NAME, meeting_room_name
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.chat import ChatRepository
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant, percentile
from talkplatform_agents.synthetic.participant import TextMessage

LATENCY_GAP_S = 0.02
DIRECT_TOPIC = "bench.direct"


async def _bot(participant: SyntheticParticipant) -> str:
    async with asyncio.timeout(90):
        while True:
            for p in participant.room.remote_participants.values():
                if p.attributes.get(AGENT_NAME_ATTRIBUTE) == CHAT_AGENT_NAME:
                    return p.identity
            await asyncio.sleep(0.1)


async def _collect(
    queue: asyncio.Queue[TextMessage], sender: str, count: int, timeout_s: float
) -> dict[str, float]:
    """Receipt times of ``count`` text streams from ``sender``, by text."""
    received: dict[str, float] = {}
    async with asyncio.timeout(timeout_s):
        while len(received) < count:
            message = await queue.get()
            if message.sender == sender:
                received[message.text] = message.received_at
    return received


async def _throughput(
    a: SyntheticParticipant,
    b_texts: asyncio.Queue[TextMessage],
    to: str,
    attributes: dict[str, str],
    prefix: str,
    count: int,
    from_: str,
) -> tuple[float, float]:
    """Send ``count`` messages back to back; (messages a second, seconds)."""
    collecting = asyncio.create_task(_collect(b_texts, from_, count, 120 + count / 10))
    started = time.time()
    for i in range(count):
        await a.send_text(f"{prefix}{i}", topic=proto.TOPIC_CHAT, to=[to], attributes=attributes)
    received = await collecting
    seconds = max(received.values()) - started
    return count / seconds, seconds


async def _latency_text(
    a: SyntheticParticipant,
    b_texts: asyncio.Queue[TextMessage],
    to: str,
    attributes: dict[str, str],
    prefix: str,
    count: int,
    from_: str,
) -> list[float]:
    collecting = asyncio.create_task(_collect(b_texts, from_, count, 60 + count))
    sent: dict[str, float] = {}
    for i in range(count):
        text = f"{prefix}{i}"
        sent[text] = time.time()
        await a.send_text(text, topic=proto.TOPIC_CHAT, to=[to], attributes=attributes)
        await asyncio.sleep(LATENCY_GAP_S)
    received = await collecting
    return [(received[t] - sent[t]) * 1000 for t in sent]


async def _latency_data(
    a: SyntheticParticipant, b: SyntheticParticipant, count: int
) -> list[float]:
    sent: dict[bytes, float] = {}
    for i in range(count):
        payload = f"d{i}".encode()
        sent[payload] = time.time()
        await a.send_data(payload, topic=DIRECT_TOPIC, to=[b.identity])
        await asyncio.sleep(LATENCY_GAP_S)
    latencies: list[float] = []
    async with asyncio.timeout(60):
        while len(latencies) < count:
            message = await b.next_data(DIRECT_TOPIC)
            latencies.append((message.received_at - sent[message.payload]) * 1000)
    return latencies


def _ratio(numerator: list[float], denominator: list[float], q: float) -> float:
    top, bottom = percentile(numerator, q), percentile(denominator, q)
    return top / bottom if top is not None and bottom else float("nan")


def _row(path: str, values: list[float]) -> dict[str, object]:
    return {
        "path": path,
        "messages": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "max_ms": max(values, default=float("nan")),
    }


async def _measure(stack: Stack, messages: int, latency_messages: int) -> None:
    settings: Settings = stack.child_settings
    db = Database(settings.database_url)
    meeting = await MeetingRepository(db).create(
        title="bench", settings={"chat": {"historySize": 0}}, host_user_id="bench-a", host_name="A"
    )
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())

    def token(identity: str) -> str:
        return mint_token(
            creds, identity=identity, name=identity, room=meeting_room_name(meeting.id),
            role=Role.PARTICIPANT, ttl=dt.timedelta(minutes=30),
            dispatch_agents=(CHAT_AGENT_NAME,),
        ).jwt  # fmt: skip

    def participant(identity: str) -> SyntheticParticipant:
        return SyntheticParticipant(
            ParticipantConfig(
                url=settings.livekit_url, token=token(identity),
                publish_audio=False, publish_video=False,
            )
        )  # fmt: skip

    a, b = participant("bench-a"), participant("bench-b")
    b_texts = b.listen_text(proto.TOPIC_CHAT)
    relay = {proto.ATTR_RELAY: "1"}
    try:
        async with a, b:
            bot = await _bot(a)
            await _bot(b)
            via_rate, via_s = await _throughput(a, b_texts, bot, relay, "t", messages, bot)
            stored = len(await ChatRepository(db).history(meeting.id, None, limit=messages + 10))
            direct_rate, direct_s = await _throughput(
                a, b_texts, b.identity, {}, "u", messages, a.identity
            )
            via_ms = await _latency_text(a, b_texts, bot, relay, "l", latency_messages, bot)
            data_ms = await _latency_data(a, b, latency_messages)
            text_ms = await _latency_text(
                a, b_texts, b.identity, {}, "m", latency_messages, a.identity
            )
    finally:
        await db.aclose()
    if stored < messages:
        raise SystemExit(f"only {stored} of {messages} messages were stored")
    rows = [
        _row("via bot A->SFU->bot(store)->SFU->B, text stream", via_ms),
        _row("direct A->SFU->B, data packet", data_ms),
        _row("direct A->SFU->B, text stream", text_ms),
    ]
    report(
        "chat_relay",
        rows,
        {
            "relay_msgs_per_s": via_rate,
            "relay_seconds": via_s,
            "stored": stored,
            "direct_text_msgs_per_s": direct_rate,
            "direct_text_seconds": direct_s,
            "throughput_ratio_relay_over_direct": via_rate / direct_rate,
            "latency_p50_ratio_bot_over_data": _ratio(via_ms, data_ms, 50),
            "latency_p95_ratio_bot_over_data": _ratio(via_ms, data_ms, 95),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument(
        "--synchronous",
        choices=("full", "normal"),
        default="full",
        help="the SQLite store's fsync level (DATABASE_URL ?synchronous=)",
    )
    args = parser.parse_args()
    run_in_local_stack(
        lambda stack: _measure(stack, args.messages, args.latency_messages),
        sqlite_synchronous=args.synchronous,
        CHAT_MESSAGES_PER_SECOND=1e6,
        CHAT_MESSAGE_BURST=1_000_000,
    )


if __name__ == "__main__":
    main()
