"""Where captions go: to everyone in the room as LiveKit transcriptions, and (finals) to the
store.

**To the room**, in the order spoken, one text stream per caption on ``lk.transcription``,
sent on behalf of the speaker (``lk/transcription.py``). One sender task keeps them in
order; an interim that a newer caption of its segment overtook in the queue is skipped
(it would be replaced at once anyway), a final never is.

**To the store**, each final as a transcript segment. The store may be away for a while
(a restart, a fail-over): segments wait in memory, in order, and are retried with a
growing pause; storing one twice is harmless (its id is its key). What is still waiting
when the bot must leave is written for a bounded time, and a count of any left is logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass

from livekit import rtc

from talkplatform_agents.bots.transcriber.speaker import Caption
from talkplatform_agents.lk import transcription as proto
from talkplatform_agents.store.transcriptions import SegmentView, TranscriptionRepository
from talkplatform_agents.tasks import TaskSet

__all__ = ["CaptionOptions", "Captions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionOptions:
    # Captions waiting to be sent; past this, the oldest interims are dropped first.
    max_queued: int = 256
    retry_s: float = 0.5
    max_retry_s: float = 10.0
    # How long leaving waits for finals still to be stored.
    flush_s: float = 10.0


class Captions:
    def __init__(
        self,
        room: rtc.Room,
        transcriptions: TranscriptionRepository,
        meeting_id: str,
        transcription_id: str,
        options: CaptionOptions | None = None,
    ) -> None:
        self._room = room
        self._room_name = room.name
        self._runs = transcriptions
        self._meeting_id = meeting_id
        self._transcription_id = transcription_id
        self._options = options or CaptionOptions()
        self._outbox: collections.deque[Caption] = collections.deque()
        self._to_store: collections.deque[SegmentView] = collections.deque()
        self._sent = asyncio.Event()
        self._stored = asyncio.Event()
        self._drained = asyncio.Event()  # set whenever nothing waits to be sent or stored
        self._sending = False
        self._tasks = TaskSet(f"captions:{room.name}")
        self.finals = 0
        self.stored = 0

    def start(self) -> None:
        self._tasks.spawn(self._send_loop(), "send")
        self._tasks.spawn(self._store_loop(), "store")

    async def put(self, caption: Caption) -> None:
        if len(self._outbox) >= self._options.max_queued:
            self._drop_an_interim()
        self._outbox.append(caption)
        self._sent.set()
        if caption.final:
            self.finals += 1
            self._to_store.append(self._segment(caption))
            self._stored.set()

    async def aclose(self) -> None:
        """Send and store what waits (bounded by ``flush_s``), then stop. Idempotent."""
        if self._to_store or self._outbox or self._sending:
            self._drained.clear()
            self._check_drained()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self._options.flush_s)
        if self._outbox:
            logger.warning("[%s] %d caption(s) not shown before leaving", self._room_name,
                           len(self._outbox))  # fmt: skip
        if self._to_store:
            logger.error("[%s] %d final caption(s) could not be stored before leaving",
                         self._room_name, len(self._to_store))  # fmt: skip
        await self._tasks.aclose()

    def _check_drained(self) -> None:
        if not (self._to_store or self._outbox or self._sending):
            self._drained.set()

    def _drop_an_interim(self) -> None:
        for caption in self._outbox:
            if not caption.final:
                self._outbox.remove(caption)
                return
        self._outbox.popleft()  # finals only: the oldest is still stored, just not shown

    async def _send_loop(self) -> None:
        while True:
            await self._sent.wait()
            self._sent.clear()
            while self._outbox:
                caption = self._outbox.popleft()
                if not caption.final and any(
                    c.segment_id == caption.segment_id and not c.final for c in self._outbox
                ):
                    continue  # a newer interim of the same segment waits: it says more
                self._sending = True
                try:
                    await self._publish(caption)
                except Exception as exc:  # the room's connection: the next one may pass
                    logger.warning("[%s] caption %s not sent: %r", self._room_name,
                                   caption.segment_id, exc)  # fmt: skip
                finally:
                    self._sending = False
            self._check_drained()

    async def _publish(self, caption: Caption) -> None:
        writer = await self._room.local_participant.stream_text(
            topic=proto.TOPIC_CAPTIONS,
            attributes=proto.caption_attributes(
                caption.segment_id, caption.track_sid, caption.final
            ),
            sender_identity=caption.speaker_identity,
        )
        try:
            await writer.write(caption.text)
        finally:
            await writer.aclose()

    async def _store_loop(self) -> None:
        pause = self._options.retry_s
        while True:
            await self._stored.wait()
            self._stored.clear()
            while self._to_store:
                segment = self._to_store[0]
                try:
                    await self._runs.add_segment(segment)
                except ValueError as exc:  # a segment the store refuses: never will take it
                    logger.error("[%s] segment %s refused by the store: %s", self._room_name,
                                 segment.id, exc)  # fmt: skip
                except Exception as exc:
                    logger.warning("[%s] segment %s not stored yet (%r); again in %.1f s",
                                   self._room_name, segment.id, exc, pause)  # fmt: skip
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, self._options.max_retry_s)
                    continue
                else:
                    self.stored += 1
                self._to_store.popleft()
                pause = self._options.retry_s
            self._check_drained()

    def _segment(self, caption: Caption) -> SegmentView:
        return SegmentView(
            id=caption.segment_id,
            meeting_id=self._meeting_id,
            transcription_id=self._transcription_id,
            speaker_identity=caption.speaker_identity,
            speaker_name=caption.speaker_name,
            track_sid=caption.track_sid,
            start_ms=caption.start_ms,
            end_ms=caption.end_ms,
            text=caption.text,
            words=caption.words,
            confidence=caption.confidence,
        )
