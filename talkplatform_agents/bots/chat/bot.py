"""The chat relay bot (agent_name ``chat-relay``): persists, moderates and relays a
meeting's chat, gives late joiners its history, and aggregates reactions.

Protocol: ``talkplatform_agents.lk.chat``. The bot reacts to the room's events: a message
or reaction arrives (read, parsed, moderated, then handed to the pipeline, which stores it
before any other effect: bots/chat/pipeline.py), a participant arrives (their history), a
host calls a method (bots/chat/rpc.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from livekit import rtc

from talkplatform_agents.bots.chat.context import ChatContext, ChatStore
from talkplatform_agents.bots.chat.inbound import ChatIn, from_legacy, from_text_stream
from talkplatform_agents.bots.chat.moderation import Code, Moderator
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.chat.outbox import Outbox
from talkplatform_agents.bots.chat.pipeline import Accepted, ChatPipeline, Reaction
from talkplatform_agents.bots.chat.roster import DEFAULT_ARRIVAL_WAIT_S, Roster
from talkplatform_agents.bots.chat.rpc import ChatRpc
from talkplatform_agents.bots.ratelimit import RateLimiter, Refusals
from talkplatform_agents.bots.rpc_limits import CallerLimits
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.store.chat import StoredMessage
from talkplatform_agents.tasks import TaskSet

__all__ = ["ChatRelayBot", "ChatStore", "due_history"]

logger = logging.getLogger(__name__)

_AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


class ChatRelayBot:
    def __init__(
        self,
        room: rtc.Room,
        meeting_id: str,
        store: ChatStore,
        options: ChatOptions,
        *,
        arrival_wait_s: float = DEFAULT_ARRIVAL_WAIT_S,
    ) -> None:
        roster = Roster(room, arrival_wait_s)
        self._ctx = ChatContext(room, meeting_id, store, options, roster, Outbox(room))
        self._moderator = Moderator(options)
        self._pipeline = ChatPipeline(self._ctx)
        self._rpc = ChatRpc(self._ctx)
        # Work that one event starts (reading a message, sending a history): each is owned
        # here, so that stop() ends it.
        self._work = TaskSet(room.name)
        self._stopping = False
        # A sender's packets and streams, counted before anything is read or spawned: a
        # flood is dropped here, unread, at the cost of a lookup each.
        self._inbound = RateLimiter(options.inbound_per_second, options.inbound_burst)
        self._open: dict[str, int] = {}  # text streams being read, per sender
        self._dropped = Refusals()

    @property
    def tag(self) -> str:
        return self._ctx.tag

    @property
    def stored(self) -> int:
        """Messages stored by this bot (tests and logs)."""
        return self._pipeline.stored

    async def start(self) -> None:
        ctx = self._ctx
        ctx.muted = await ctx.store.chat.muted(ctx.meeting_id)
        await ctx.load_moderators()
        await ctx.store.chat.record_participants(ctx.meeting_id, ctx.roster.humans())
        ctx.room.register_text_stream_handler(proto.TOPIC_CHAT, self._on_text_stream)
        ctx.room.on("data_received", self._on_data)
        ctx.room.on("participant_connected", self._on_participant_connected)
        # Ahead of every method: a caller's flood never reaches the store.
        ctx.room.local_participant.add_rpc_interceptor(CallerLimits(self.tag, ctx.options.rpc))
        self._rpc.register(ctx.room.local_participant)
        self._pipeline.start()
        logger.info("[%s] chat relay ready (%d muted)", self.tag, len(ctx.muted))

    async def stop(self) -> None:
        """Store what was accepted, then cancel and await everything. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        room = self._ctx.room
        room.unregister_text_stream_handler(proto.TOPIC_CHAT)
        with contextlib.suppress(Exception):  # never started, or the room already let go
            room.off("data_received", self._on_data)
            room.off("participant_connected", self._on_participant_connected)
        self._ctx.roster.close()  # a message waiting for its sender goes on now
        # Work in flight (a stream being read, a history being sent) gets a moment to end
        # on its own, so that what it accepts is stored and no query is cut off midway.
        await self._work.settle(2)
        await self._pipeline.aclose(5)
        await self._work.aclose()

    # -- messages and reactions ----------------------------------------------------------

    def _on_text_stream(self, reader: rtc.TextStreamReader, sender: str) -> None:
        if self._stopping or self._ctx.roster.is_agent(sender):
            reader.close()
            return
        open_now = self._open.get(sender, 0)
        if open_now >= self._ctx.options.max_open_streams or not self._inbound.allow(sender):
            reader.close()
            self._flooded(sender, reader.info.stream_id)
            return
        self._open[sender] = open_now + 1
        self._work.spawn(self._read_stream(reader, sender), f"read<-{sender}")

    async def _read_stream(self, reader: rtc.TextStreamReader, sender: str) -> None:
        info = reader.info
        try:
            text = await self._read_text(reader)
        finally:
            reader.close()  # unread chunks stop queueing here
            if (left := self._open.get(sender, 1) - 1) > 0:
                self._open[sender] = left
            else:
                self._open.pop(sender, None)
        if isinstance(text, tuple):
            code, detail = text
            await self._ctx.refuse(sender, code, info.stream_id, detail=detail)
            return
        try:
            chat = from_text_stream(info.stream_id, sender, text, info.attributes)
        except proto.BadPayload as exc:
            await self._ctx.refuse(sender, Code.INVALID, info.stream_id, detail=str(exc))
            return
        await self._moderate(chat)

    async def _read_text(self, reader: rtc.TextStreamReader) -> str | tuple[Code, str]:
        """The stream's text, or why it is refused (a code and the notice's detail)."""
        options = self._ctx.options
        limit = options.max_stream_bytes
        if reader.info.size and reader.info.size > limit:
            return Code.TOO_LARGE, ""
        parts: list[str] = []
        size = 0
        try:
            # A stream left open would hold its slot (of max_open_streams) for good.
            async with asyncio.timeout(options.stream_timeout_s):
                async for chunk in reader:
                    size += len(chunk.encode())
                    if size > limit:
                        return Code.TOO_LARGE, ""
                    parts.append(chunk)
        except TimeoutError:
            return Code.INVALID, f"it did not finish within {options.stream_timeout_s:g} s"
        except (rtc.StreamError, UnicodeError) as exc:
            return Code.INVALID, str(exc)
        return "".join(parts)

    def _flooded(self, sender: str, ref: str | None) -> None:
        """Something of ``sender``'s was dropped unread: over their inbound limit."""
        if (count := self._dropped.add(sender)) is not None:
            logger.warning("[%s] %s sends too fast: %d dropped unread", self.tag, sender, count)
        if (notice := self._ctx.refusal(sender, Code.RATE_LIMITED, ref)) is not None:
            self._work.spawn(notice, f"notice->{sender}")

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if self._stopping or packet.topic not in (proto.TOPIC_LEGACY_CHAT, proto.TOPIC_REACTION):
            return
        if packet.participant is None:
            # The SDK names the sender of a packet only once it knows them, so a packet
            # that overtakes its sender's arrival comes with nobody to answer. Logged as
            # a count: a flood of them must not become a flood of log lines.
            if (count := self._dropped.add("")) is not None:
                logger.warning("[%s] %d packets from an unknown sender: dropped", self.tag,
                               count)  # fmt: skip
            return
        sender = packet.participant.identity
        if packet.participant.kind == _AGENT:
            return
        if not self._inbound.allow(sender):
            self._flooded(sender, None)
            return
        if packet.topic == proto.TOPIC_LEGACY_CHAT:
            self._work.spawn(self._legacy(sender, packet.data), f"legacy<-{sender}")
        else:
            self._work.spawn(self._reaction(sender, packet.data), f"reaction<-{sender}")

    async def _legacy(self, sender: str, payload: bytes) -> None:
        try:
            chat = from_legacy(sender, payload)
        except proto.BadPayload as exc:
            await self._ctx.refuse(sender, Code.INVALID, None, detail=str(exc))
            return
        if chat is not None:
            await self._moderate(chat)

    async def _moderate(self, chat: ChatIn) -> None:
        ctx = self._ctx
        verdict = self._moderator.message(chat.sender, chat.text, muted=chat.sender in ctx.muted)
        if verdict.refused is not None:
            logger.info(
                "[%s] refused %s from %s: %s", self.tag, chat.id, chat.sender, verdict.refused
            )
            await ctx.refuse(chat.sender, verdict.refused, chat.id, text=verdict.detail)
            if not chat.relay:
                # The SFU delivered it already: tell clients to hide it.
                await ctx.event({"type": "rejected", "id": chat.id, "sender": chat.sender})
            return
        # The sender's messages wait here, in order, until the SDK knows the sender.
        name = await ctx.roster.sender_name(chat.sender)
        if not self._pipeline.put(Accepted(chat, verdict, name)):
            # The bot is closing: as when the store fails, the sender learns it was not kept.
            await ctx.refuse(chat.sender, Code.UNAVAILABLE, chat.id)

    async def _reaction(self, sender: str, payload: bytes) -> None:
        try:
            reaction = proto.parse_lenient(proto.ReactionIn, payload)
        except proto.BadPayload as exc:
            await self._ctx.refuse(sender, Code.INVALID, None, detail=str(exc))
            return
        refused = self._moderator.reaction(sender, muted=sender in self._ctx.muted)
        if refused is not None:
            await self._ctx.refuse(sender, refused, reaction.id)
            return
        if not self._pipeline.put(Reaction(sender, reaction)):
            await self._ctx.refuse(sender, Code.UNAVAILABLE, reaction.id)

    # -- arrivals: history ---------------------------------------------------------------

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        self._ctx.roster.arrived(participant)
        if participant.kind == _AGENT or self._stopping:
            return
        # From this instant, messages stored are relayed to them live (the pipeline stamps
        # each with the same clock): history stops here, so each message reaches them once.
        joined = self._ctx.clock.now()
        welcome = self._welcome(participant.identity, joined, participant.joined_at)
        self._work.spawn(welcome, f"history->{participant.identity}")

    async def _welcome(
        self, identity: str, joined: dt.datetime, session_start: dt.datetime | None
    ) -> None:
        ctx = self._ctx
        await ctx.store.chat.record_participants(ctx.meeting_id, [identity])
        moderators = await ctx.load_moderators()
        if ctx.options.history_size == 0:
            return
        history = await ctx.store.chat.history(
            ctx.meeting_id,
            identity,
            all_private=ctx.options.hosts_see_private and identity in moderators,
            limit=ctx.options.history_size,
        )
        history = due_history(history, identity, joined=joined, session_start=session_start)
        for message in history:
            await ctx.outbox.message(message, "history", [identity])
        logger.info("[%s] sent %d messages of history to %s", self.tag, len(history), identity)


def due_history(
    history: list[StoredMessage],
    identity: str,
    *,
    joined: dt.datetime,
    session_start: dt.datetime | None,
) -> list[StoredMessage]:
    """What of ``history`` goes to ``identity`` as history: what was stored before the bot
    learnt of them (``joined``; later ones they got live), except their own messages since
    their session began (``session_start``, the server's time): those they may have written
    before the bot learnt of them, and they have them."""
    since = session_start or joined
    return [
        m
        for m in history
        if m.sent_at < joined and not (m.sender == identity and m.sent_at >= since)
    ]
