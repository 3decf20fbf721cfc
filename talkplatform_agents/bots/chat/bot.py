"""The chat relay bot (agent_name ``chat-relay``): persists, moderates and relays a
meeting's chat, gives late joiners its history, and aggregates reactions.

Protocol: ``talkplatform_agents.lk.chat``. Every accepted message is stored before any
other effect; one consumer task does the storing and relaying, in arrival order, so a
slow database delays chat but never reorders or drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from livekit import rtc

from talkplatform_agents.bots.chat.inbound import ChatIn, from_legacy, from_text_stream
from talkplatform_agents.bots.chat.moderation import Code, Moderator, Verdict, notice_text
from talkplatform_agents.bots.chat.notices import NoticeThrottle
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.chat.outbox import Outbox
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.store.chat import (
    ChatRepository,
    NewMessage,
    SaveOutcome,
    StoredMessage,
)

__all__ = ["ChatRelayBot"]

logger = logging.getLogger(__name__)

_AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
_BATCH = 64  # messages stored in one transaction, at most


@dataclass(frozen=True)
class _Accepted:
    chat: ChatIn
    verdict: Verdict
    sender_name: str | None


@dataclass(frozen=True)
class _Reaction:
    sender: str
    reaction: proto.ReactionIn


class ChatRelayBot:
    def __init__(
        self,
        room: rtc.Room,
        meeting_id: str,
        repo: ChatRepository,
        options: ChatOptions,
    ) -> None:
        self._room = room
        self._meeting = meeting_id
        self._repo = repo
        self._options = options
        self._hosts_see_private = options.hosts_see_private
        self._moderator = Moderator(options)
        self._throttle = NoticeThrottle()
        self._outbox = Outbox(room)
        self._queue: asyncio.Queue[_Accepted | _Reaction] = asyncio.Queue()
        self._muted: set[str] = set()
        self._moderators: set[str] = set()
        self._effects: asyncio.Queue[Coroutine[Any, Any, None]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._stopped = False  # no more effects are queued
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.stored = 0  # messages stored by this bot (tests and logs)

    @property
    def tag(self) -> str:
        return self._room.name

    async def start(self) -> None:
        self._muted = await self._repo.muted(self._meeting)
        self._moderators = await self._repo.moderators(self._meeting)
        await self._repo.record_participants(self._meeting, self._humans())
        self._room.register_text_stream_handler(proto.TOPIC_CHAT, self._on_text_stream)
        self._room.on("data_received", self._on_data)
        self._room.on("participant_connected", self._on_participant_connected)
        local = self._room.local_participant
        local.register_rpc_method(proto.RPC_DELETE, self._rpc_delete)
        local.register_rpc_method(proto.RPC_MUTE, self._rpc_mute)
        local.register_rpc_method(proto.RPC_REACTIONS, self._rpc_reactions)
        self._runner = asyncio.create_task(self._consume(), name=f"{self.tag}:store")
        self._sender = asyncio.create_task(self._send_effects(), name=f"{self.tag}:send")
        logger.info("[%s] chat relay ready (%d muted)", self.tag, len(self._muted))

    async def stop(self) -> None:
        """Store what was accepted, then cancel and await everything."""
        if self._stopping:
            return
        self._stopping = True
        self._room.unregister_text_stream_handler(proto.TOPIC_CHAT)
        with contextlib.suppress(Exception):  # never started, or the room already let go
            self._room.off("data_received", self._on_data)
            self._room.off("participant_connected", self._on_participant_connected)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                if self._runner is not None and not self._runner.done():
                    await self._queue.join()  # accepted means stored: drain first
                if self._sender is not None and not self._sender.done():
                    await self._effects.join()
        self._stopped = True
        while not self._effects.empty():
            self._effects.get_nowait().close()  # never awaited: the room is going
        # Work in flight (a history being sent, a stream being read) gets a moment to end
        # on its own, so no query is cut off in the middle; then it is cancelled.
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
        pending = [t for t in (self._runner, self._sender, *self._tasks) if t is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- receiving -----------------------------------------------------------------------

    def _on_text_stream(self, reader: rtc.TextStreamReader, sender: str) -> None:
        if self._stopping or self._is_agent(sender):
            reader.close()
            return
        self._spawn(self._read_stream(reader, sender), f"read<-{sender}")

    async def _read_stream(self, reader: rtc.TextStreamReader, sender: str) -> None:
        info = reader.info
        limit = self._options.max_stream_bytes
        parts: list[str] = []
        size = 0
        try:
            if info.size and info.size > limit:
                reader.close()
                await self._refuse(sender, Code.TOO_LARGE, info.stream_id)
                return
            async for chunk in reader:
                size += len(chunk.encode())
                if size > limit:
                    reader.close()
                    await self._refuse(sender, Code.TOO_LARGE, info.stream_id)
                    return
                parts.append(chunk)
            chat = from_text_stream(info.stream_id, sender, "".join(parts), info.attributes)
        except (proto.BadPayload, rtc.StreamError, UnicodeError) as exc:
            reader.close()
            await self._refuse(sender, Code.INVALID, info.stream_id, detail=str(exc))
            return
        await self._moderate(chat)

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else None
        if self._stopping or sender is None or self._is_agent(sender):
            return
        if packet.topic == proto.TOPIC_LEGACY_CHAT:
            self._spawn(self._legacy(sender, packet.data), f"legacy<-{sender}")
        elif packet.topic == proto.TOPIC_REACTION:
            self._spawn(self._reaction(sender, packet.data), f"reaction<-{sender}")

    async def _legacy(self, sender: str, payload: bytes) -> None:
        try:
            chat = from_legacy(sender, payload)
        except proto.BadPayload as exc:
            await self._refuse(sender, Code.INVALID, None, detail=str(exc))
            return
        if chat is not None:
            await self._moderate(chat)

    async def _moderate(self, chat: ChatIn) -> None:
        verdict = self._moderator.message(chat.sender, chat.text, muted=chat.sender in self._muted)
        if verdict.refused is not None:
            logger.info(
                "[%s] refused %s from %s: %s", self.tag, chat.id, chat.sender, verdict.refused
            )
            await self._refuse(chat.sender, verdict.refused, chat.id, text=verdict.detail)
            if not chat.relay:
                # The SFU delivered it already: tell clients to hide it.
                await self._event({"type": "rejected", "id": chat.id, "sender": chat.sender})
            return
        participant = self._room.remote_participants.get(chat.sender)
        name = participant.name if participant and participant.name else None
        self._queue.put_nowait(_Accepted(chat, verdict, name))

    async def _reaction(self, sender: str, payload: bytes) -> None:
        try:
            reaction = proto.parse_lenient(proto.ReactionIn, payload)
        except proto.BadPayload as exc:
            await self._refuse(sender, Code.INVALID, None, detail=str(exc))
            return
        refused = self._moderator.reaction(sender, muted=sender in self._muted)
        if refused is not None:
            await self._refuse(sender, refused, reaction.id)
            return
        self._queue.put_nowait(_Reaction(sender, reaction))

    # -- storing, then relaying (two tasks, each in arrival order) -----------------------

    async def _consume(self) -> None:
        """Store what was accepted, in arrival order, many to a transaction; what follows
        (relays, notices, events) goes to the effects task in the same order, so storing
        the next messages overlaps sending the last ones."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _store_batch(self, batch: list[_Accepted | _Reaction]) -> None:
        run: list[_Accepted] = []
        for item in [*batch, None]:
            if isinstance(item, _Accepted):
                run.append(item)
                continue
            if run:
                await self._store_messages(run)
                run = []
            if isinstance(item, _Reaction):
                try:
                    await self._store_reaction(item)
                except Exception:
                    logger.exception("[%s] could not store reaction %r", self.tag, item)

    async def _store_messages(self, run: list[_Accepted]) -> None:
        now = dt.datetime.now(dt.UTC)
        messages = [
            NewMessage(i.chat.id, i.chat.sender, i.sender_name, i.verdict.text, now,
                       i.chat.reply_to, i.chat.to)
            for i in run
        ]  # fmt: skip
        try:
            results = await self._repo.save_many(self._meeting, messages)
        except Exception:
            # Never a silent drop: each sender learns that their message did not make it.
            logger.exception("[%s] could not store %d messages", self.tag, len(run))
            for item in run:
                self._effect(self._refuse(item.chat.sender, Code.UNAVAILABLE, item.chat.id))
            return
        for item, (outcome, stored) in zip(run, results, strict=True):
            self._after_store(item, outcome, stored)

    def _after_store(self, item: _Accepted, outcome: SaveOutcome, stored: StoredMessage) -> None:
        chat = item.chat
        if outcome is SaveOutcome.NOT_OWNER:
            self._effect(self._refuse(chat.sender, Code.NOT_YOURS, chat.id))
        elif outcome is SaveOutcome.DELETED:
            self._effect(self._refuse(chat.sender, Code.DELETED, chat.id))
        elif outcome is SaveOutcome.DUPLICATE:
            return
        elif chat.relay:
            self.stored += outcome is SaveOutcome.CREATED
            # Who gets it is decided now, as it is stored: whoever joins later gets it as
            # history instead.
            if to := self._audience(stored, exclude=chat.sender):
                self._effect(self._outbox.message(stored, "message", to))
        else:
            self.stored += outcome is SaveOutcome.CREATED
            if item.verdict.masked or outcome is SaveOutcome.EDITED:
                edited = stored.edited_at or stored.sent_at
                event = {
                    "type": "edited",
                    "id": stored.id,
                    "message": stored.text,
                    "editTimestamp": int(edited.timestamp() * 1000),
                }
                self._effect(self._event(event))

    async def _store_reaction(self, item: _Reaction) -> None:
        reaction = item.reaction
        if reaction.message_id is not None:
            target = await self._repo.get(self._meeting, reaction.message_id)
            if target is None or not target.visible_to(item.sender, all_private=False):
                self._effect(
                    self._refuse(
                        item.sender, Code.UNKNOWN_MESSAGE, reaction.id, detail=reaction.message_id
                    )
                )
                return
        now = dt.datetime.now(dt.UTC)
        created = await self._repo.add_reaction(
            self._meeting,
            reaction.id,
            sender=item.sender,
            emoji=reaction.emoji,
            target=reaction.message_id,
            sent_at=now,
        )
        if not created:
            return
        counts = await self._repo.reaction_counts(self._meeting)
        body = {
            "id": reaction.id,
            "emoji": reaction.emoji,
            "messageId": reaction.message_id,
            "sender": item.sender,
            "timestamp": int(now.timestamp() * 1000),
            "counts": counts.messages.get(reaction.message_id or "", {}),
            "meetingCounts": counts.meeting,
        }
        self._effect(self._outbox.data(proto.TOPIC_REACTION, body, None))

    def _effect(self, effect: Coroutine[Any, Any, None]) -> None:
        if self._stopped:
            effect.close()
            return
        self._effects.put_nowait(effect)

    async def _send_effects(self) -> None:
        while True:
            effect = await self._effects.get()
            try:
                await effect
            except Exception:
                # One failed send (someone left mid-send) must not stop the others.
                logger.exception("[%s] a send failed", self.tag)
            finally:
                self._effects.task_done()

    # -- history -------------------------------------------------------------------------

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == _AGENT or self._stopping:
            return
        self._spawn(self._welcome(participant.identity), f"history->{participant.identity}")

    async def _welcome(self, identity: str) -> None:
        # Messages stored from now on are relayed to them live: history stops here, so
        # each message reaches them once.
        joined = dt.datetime.now(dt.UTC)
        await self._repo.record_participants(self._meeting, [identity])
        self._moderators = await self._repo.moderators(self._meeting)
        if self._options.history_size == 0:
            return
        history = await self._repo.history(
            self._meeting,
            identity,
            all_private=self._hosts_see_private and identity in self._moderators,
            limit=self._options.history_size,
        )
        history = [m for m in history if m.sent_at <= joined]
        for message in history:
            await self._outbox.message(message, "history", [identity])
        logger.info("[%s] sent %d messages of history to %s", self.tag, len(history), identity)

    # -- host controls (RPC) -------------------------------------------------------------

    async def _require_moderator(self, caller: str) -> None:
        # Ask the store each time: a role granted or revoked mid-meeting counts at once.
        self._moderators = await self._repo.moderators(self._meeting)
        if caller not in self._moderators:
            raise rtc.RpcError(proto.FORBIDDEN, "only the meeting's hosts may do that")

    async def _rpc_delete(self, data: rtc.RpcInvocationData) -> str:
        request = _parse(proto.DeleteRequest, data.payload)
        await self._require_moderator(data.caller_identity)
        stored = await self._repo.delete(self._meeting, request.id, by=data.caller_identity)
        if stored is None:
            raise rtc.RpcError(proto.NOT_FOUND, f"no message {request.id} in this meeting")
        logger.info("[%s] %s deleted %s", self.tag, data.caller_identity, request.id)
        await self._event({"type": "deleted", "id": stored.id, "by": data.caller_identity})
        to = self._audience(stored, exclude=None)
        if to:
            await self._outbox.message(stored, "deleted", to)
        return proto.dumps({"id": stored.id, "deleted": True})

    async def _rpc_mute(self, data: rtc.RpcInvocationData) -> str:
        request = _parse(proto.MuteRequest, data.payload)
        await self._require_moderator(data.caller_identity)
        await self._repo.set_muted(
            self._meeting, request.identity, muted=request.muted, by=data.caller_identity
        )
        if request.muted:
            self._muted.add(request.identity)
        else:
            self._muted.discard(request.identity)
        logger.info(
            "[%s] %s set chat mute of %s to %s",
            self.tag,
            data.caller_identity,
            request.identity,
            request.muted,
        )
        await self._event(
            {
                "type": "muted",
                "identity": request.identity,
                "muted": request.muted,
                "by": data.caller_identity,
            }
        )
        if request.muted and request.identity in self._room.remote_participants:
            await self._outbox.notice(
                request.identity, Code.MUTED, "A host has muted your chat.", None
            )
        return proto.dumps({"identity": request.identity, "muted": request.muted})

    async def _rpc_reactions(self, data: rtc.RpcInvocationData) -> str:
        _parse(proto.EmptyRequest, data.payload)
        counts = await self._repo.reaction_counts(self._meeting)
        return proto.dumps({"meeting": counts.meeting, "messages": counts.messages})

    # -- helpers -------------------------------------------------------------------------

    def _humans(self) -> list[str]:
        return [p.identity for p in self._room.remote_participants.values() if p.kind != _AGENT]

    def _is_agent(self, identity: str) -> bool:
        participant = self._room.remote_participants.get(identity)
        return participant is not None and participant.kind == _AGENT

    def _audience(self, message: StoredMessage, *, exclude: str | None) -> list[str]:
        """Who in the room may see ``message`` (never ``[]`` for everyone: an empty list
        means nobody here)."""
        people = [i for i in self._humans() if i != exclude]
        if not message.private:
            return people
        allowed = {message.sender, *message.recipients}
        if self._hosts_see_private:
            allowed |= self._moderators
        return [i for i in people if i in allowed]

    async def _refuse(
        self,
        sender: str,
        code: Code,
        ref: str | None,
        *,
        text: str = "",
        detail: str = "",
    ) -> None:
        body = text or notice_text(
            code, limit=self._options.max_message_chars, detail=detail, words=""
        )
        message = self._throttle.admit(sender, body)
        if message is None or sender not in self._room.remote_participants:
            return
        try:
            await self._outbox.notice(sender, code, message, ref)
        except Exception as exc:  # the sender may have left
            logger.info("[%s] notice to %s failed: %s", self.tag, sender, exc)

    async def _event(self, body: dict[str, Any]) -> None:
        try:
            await self._outbox.data(proto.TOPIC_EVENT, body, None)
        except Exception as exc:
            logger.warning("[%s] event %s not sent: %s", self.tag, body.get("type"), exc)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.tag}:{what}")
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("[%s] %s failed: %r", self.tag, task.get_name(), exc)


def _parse(model: type[proto.PayloadT], payload: str) -> proto.PayloadT:
    try:
        return proto.parse(model, payload)
    except proto.BadPayload as exc:
        raise rtc.RpcError(proto.INVALID_PAYLOAD, f"invalid payload: {exc}") from exc
