"""Store, then send: what the chat bot accepted, in arrival order.

Two tasks. One stores accepted messages and reactions, many to a transaction, and decides
what follows from each (a relay, a notice, an event); the other sends those effects, in
the same order. So storing the next messages overlaps sending the last ones, a slow
database delays chat but never reorders or drops it, and nothing is sent that was not
stored first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from talkplatform_agents.bots.chat.context import ChatContext
from talkplatform_agents.bots.chat.inbound import ChatIn
from talkplatform_agents.bots.chat.moderation import Code, Verdict
from talkplatform_agents.bots.metrics import CHAT_MESSAGES, CHAT_RELAYED
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.store.chat import NewMessage, SaveOutcome, StoredMessage
from talkplatform_agents.tasks import TaskSet

__all__ = ["Accepted", "ChatPipeline", "Reaction"]

logger = logging.getLogger(__name__)

_BATCH = 64  # messages stored in one transaction, at most


@dataclass(frozen=True)
class Accepted:
    chat: ChatIn
    verdict: Verdict
    sender_name: str | None


@dataclass(frozen=True)
class Reaction:
    sender: str
    reaction: proto.ReactionIn


_KEPT = frozenset({SaveOutcome.CREATED, SaveOutcome.EDITED, SaveOutcome.DUPLICATE})


class ChatPipeline:
    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx
        self._queue: asyncio.Queue[Accepted | Reaction] = asyncio.Queue()
        self._effects: asyncio.Queue[Coroutine[Any, Any, None]] = asyncio.Queue()
        self._tasks = TaskSet(ctx.tag)
        self._started = False
        self._closing = False  # no more items are accepted
        self._stopped = False  # no more effects are queued
        self.stored = 0  # messages stored (tests and logs)

    def start(self) -> None:
        self._started = True
        self._tasks.spawn(self._consume(), "store")
        self._tasks.spawn(self._send_effects(), "send")

    def put(self, item: Accepted | Reaction) -> bool:
        """Accept ``item`` to be stored, then acted on. False once closing: the item was not
        accepted, and the caller must tell its sender (it would otherwise vanish)."""
        if self._closing:
            kind = "message" if isinstance(item, Accepted) else "reaction"
            ref = item.chat.id if isinstance(item, Accepted) else item.reaction.id
            logger.warning("[%s] closing: %s %s refused", self._ctx.tag, kind, ref)
            return False
        self._queue.put_nowait(item)
        return True

    async def aclose(self, timeout_s: float = 5) -> None:
        """Refuse new items, store what was accepted and send what follows (at most
        ``timeout_s``), then cancel and await both tasks. Idempotent."""
        # From here on nothing joins the queue, so the drain below has an end.
        self._closing = True
        if self._started and not self._stopped:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._queue.join()  # accepted means stored: drain first
                    await self._effects.join()
            except TimeoutError:
                logger.error(
                    "[%s] closing: %d accepted items not stored, %d effects not sent in %.0f s",
                    self._ctx.tag,
                    self._queue.qsize(),
                    self._effects.qsize(),
                    timeout_s,
                )
        self._stopped = True
        while not self._effects.empty():
            self._effects.get_nowait().close()  # never awaited: the room is going
        await self._tasks.aclose()

    # -- storing -------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store_batch(batch)
            except Exception:
                # One batch gone wrong must not end the chat for the rest of the meeting.
                logger.exception("[%s] could not handle %d items", self._ctx.tag, len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _store_batch(self, batch: list[Accepted | Reaction]) -> None:
        run: list[Accepted] = []
        for item in [*batch, None]:
            if isinstance(item, Accepted):
                run.append(item)
                continue
            if run:
                await self._store_messages(run)
                run = []
            if isinstance(item, Reaction):
                try:
                    await self._store_reaction(item)
                except Exception:
                    logger.exception("[%s] could not store reaction %r", self._ctx.tag, item)

    async def _store_messages(self, run: list[Accepted]) -> None:
        # Who gets a message live is decided at the instant it is stamped: whoever the bot
        # learns of later gets it as history instead (bots/chat/bot.py, the welcome).
        now = self._ctx.clock.now()
        people = self._ctx.roster.humans()
        messages = [
            NewMessage(i.chat.id, i.chat.sender, i.sender_name, i.verdict.text, now,
                       i.chat.reply_to, i.chat.to)
            for i in run
        ]  # fmt: skip
        try:
            results = await self._ctx.store.chat.save_many(self._ctx.meeting_id, messages)
        except Exception:
            # Never a silent drop: each sender learns that their message did not make it.
            logger.exception("[%s] could not store %d messages", self._ctx.tag, len(run))
            CHAT_MESSAGES.labels("unstored").inc(len(run))
            for item in run:
                self._effect(self._ctx.refuse(item.chat.sender, Code.UNAVAILABLE, item.chat.id))
            return
        for item, (outcome, stored) in zip(run, results, strict=True):
            self._after_store(item, outcome, stored, people)

    def _after_store(
        self, item: Accepted, outcome: SaveOutcome, stored: StoredMessage, people: list[str]
    ) -> None:
        chat = item.chat
        CHAT_MESSAGES.labels(outcome.value).inc()
        if (chat.relay or chat.to) and outcome in _KEPT:
            # A receipt: a client sending through the bot knows what the store holds, and
            # sends again what it lacks to the next bot, should this one die (the store
            # keeps one copy of a message sent twice: a DUPLICATE).
            receipt = {"type": "stored", "id": stored.id}
            self._effect(self._ctx.outbox.data(proto.TOPIC_EVENT, receipt, [chat.sender]))
        if outcome is SaveOutcome.NOT_OWNER:
            self._effect(self._ctx.refuse(chat.sender, Code.NOT_YOURS, chat.id))
        elif outcome is SaveOutcome.DELETED:
            self._effect(self._ctx.refuse(chat.sender, Code.DELETED, chat.id))
        elif outcome is SaveOutcome.DUPLICATE:
            return
        elif chat.relay:
            self.stored += outcome is SaveOutcome.CREATED
            if to := self._ctx.audience(stored, people, exclude=chat.sender):
                self._effect(self._ctx.outbox.message(stored, "message", to))
                CHAT_RELAYED.labels("private" if chat.to else "room").inc()
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
                self._effect(self._ctx.event(event))

    async def _store_reaction(self, item: Reaction) -> None:
        ctx, reaction = self._ctx, item.reaction
        if reaction.message_id is not None:
            target = await ctx.store.chat.get(ctx.meeting_id, reaction.message_id)
            if target is None or not target.visible_to(item.sender, all_private=False):
                self._effect(
                    ctx.refuse(
                        item.sender, Code.UNKNOWN_MESSAGE, reaction.id, detail=reaction.message_id
                    )
                )
                return
        now = dt.datetime.now(dt.UTC)
        created = await ctx.store.chat.add_reaction(
            ctx.meeting_id,
            reaction.id,
            sender=item.sender,
            emoji=reaction.emoji,
            target=reaction.message_id,
            sent_at=now,
        )
        if not created:
            return
        counts = await ctx.store.chat.reaction_counts(ctx.meeting_id)
        body = {
            "id": reaction.id,
            "emoji": reaction.emoji,
            "messageId": reaction.message_id,
            "sender": item.sender,
            "timestamp": int(now.timestamp() * 1000),
            "counts": counts.messages.get(reaction.message_id or "", {}),
            "meetingCounts": counts.meeting,
        }
        self._effect(ctx.outbox.data(proto.TOPIC_REACTION, body, None))

    # -- sending -------------------------------------------------------------------------

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
                logger.exception("[%s] a send failed", self._ctx.tag)
            finally:
                self._effects.task_done()
