"""One speaker's audio track through the recogniser: captions out, with times on the wall
clock.

The track's audio is received as 16 kHz mono (the SDK converts any rate and channel
count) and pushed into one recogniser stream. A stream's times count its samples from its
first frame, whose arrival fixes the stream's origin on the wall clock; a track delivers
frames continuously while it plays, so counting is exact. A muted or unsubscribed track
ends the transcriber (the owner makes a new one on unmute).

A recogniser that raises does not end the speaker's transcription: the failure is logged
and reported (``on_error``), and after a pause a new stream carries on with the audio that
follows; what the failed stream held is lost, and said so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import stt

from talkplatform_agents.store.transcriptions import Word
from talkplatform_agents.tasks import TaskSet

__all__ = ["Caption", "SpeakerOptions", "TrackTranscriber"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MAX_WORDS = 500  # a segment's words the store takes (store/transcriptions.py)


@dataclass(frozen=True)
class Caption:
    """An interim or final text of one segment of one speaker's speech."""

    segment_id: str
    speaker_identity: str
    speaker_name: str
    track_sid: str
    text: str
    final: bool
    start_ms: int  # Unix time of the speech's start
    end_ms: int
    words: tuple[Word, ...] = ()
    confidence: float = 0.0


@dataclass(frozen=True)
class SpeakerOptions:
    # Pause after a recogniser failure before a new stream, doubling to the maximum.
    retry_s: float = 1.0
    max_retry_s: float = 30.0
    # How long a stopping speaker waits for its last final.
    drain_s: float = 5.0


class TrackTranscriber:
    def __init__(
        self,
        room_name: str,
        participant: rtc.RemoteParticipant,
        track: rtc.RemoteAudioTrack,
        engine: stt.STT[Any],
        on_caption: Callable[[Caption], Awaitable[None]],
        on_error: Callable[[str, BaseException], Awaitable[None]],
        options: SpeakerOptions | None = None,
    ) -> None:
        self._room_name = room_name
        self._identity = participant.identity
        self._name = participant.name or participant.identity
        self._track = track
        self._track_sid = track.sid
        self._engine = engine
        self._on_caption = on_caption
        self._on_error = on_error
        self._options = options or SpeakerOptions()
        self._tasks = TaskSet(f"transcriber:{room_name}:{participant.identity}")
        self._stopping = asyncio.Event()
        self._stop_task: asyncio.Task[None] | None = None
        self._stream: stt.RecognizeStream | None = None
        self._segment: str | None = None
        self._speech_started_ms: int | None = None
        self._speech_ended_ms: int | None = None
        # Times relative to the stream's start only from a recogniser that streams and
        # aligns its words; one behind StreamAdapter times each utterance from its own
        # start, and many give no times at all: those are timed by the speech events.
        caps = engine.capabilities
        self._stream_times = bool(caps.aligned_transcript) and not isinstance(
            engine, stt.StreamAdapter
        )
        self.failures = 0
        self.finals = 0

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def track_sid(self) -> str:
        return self._track_sid

    def start(self) -> None:
        self._tasks.spawn(self._run(), "run")

    async def stop(self) -> None:
        """End the audio and wait (bounded) for the last final; then cancel what is left.
        Idempotent: a second caller waits for the same drain, never cuts it short."""
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(
                self._stop(), name=f"transcriber:{self._room_name}:{self._identity}:stop"
            )
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            if self._stream is not None:
                with contextlib.suppress(RuntimeError):  # already ended or closed
                    self._stream.end_input()
            await self._tasks.settle(self._options.drain_s)
            if len(self._tasks):
                logger.warning("[%s] %s: no final within %.0f s; leaving it", self._room_name,
                               self._identity, self._options.drain_s)  # fmt: skip
        await self._tasks.aclose()

    async def _run(self) -> None:
        audio = rtc.AudioStream(self._track, sample_rate=SAMPLE_RATE, num_channels=1)
        frames = aiter(audio)
        pause = self._options.retry_s
        try:
            while not self._stopping.is_set():
                finals = self.finals
                try:
                    await self._one_stream(frames)
                    return
                except Exception as exc:  # the recogniser's: carry on after a pause
                    if self.finals > finals:  # it had worked: a new fault, not the same
                        pause = self._options.retry_s
                    self.failures += 1
                    logger.error("[%s] %s: the recogniser failed on track %s: %r; a new "
                                 "stream in %.1f s", self._room_name, self._identity,
                                 self._track_sid, exc, pause)  # fmt: skip
                    await self._on_error(self._identity, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
                pause = min(pause * 2, self._options.max_retry_s)
        finally:
            await audio.aclose()

    async def _one_stream(self, frames: AsyncIterator[rtc.AudioFrameEvent]) -> None:
        stream = self._engine.stream()
        self._stream = stream
        self._segment = None
        origin: list[int] = []  # the stream's first sample, Unix ms (set by the pump)
        pump = self._tasks.spawn(self._pump(frames, stream, origin), "pump")
        if pump is None:  # stopped meanwhile
            await stream.aclose()
            return
        try:
            async for event in stream:
                await self._handle(event, origin[0] if origin else _now_ms())
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            self._stream = None
            await stream.aclose()

    async def _pump(
        self,
        frames: AsyncIterator[rtc.AudioFrameEvent],
        stream: stt.RecognizeStream,
        origin: list[int],
    ) -> None:
        samples = 0
        async for event in frames:
            if self._stopping.is_set():
                break
            frame = event.frame
            # A frame cannot arrive before it was played: its arrival, less the stream's
            # length up to its end, is the origin plus this frame's delay. The least of
            # these is the origin (frames come in a burst at first, and late whenever the
            # loop was busy, but never early).
            samples += frame.samples_per_channel
            candidate = _now_ms() - samples * 1000 // frame.sample_rate
            if not origin:
                origin.append(candidate)
            elif candidate < origin[0]:
                origin[0] = candidate
            try:
                stream.push_frame(frame)
            except RuntimeError:  # the stream failed: its reader reports why
                return
        # The track ended (unsubscribed, muted for good) or the owner stops: the last
        # utterance becomes a final.
        if not self._stopping.is_set() or self._stream is stream:
            with contextlib.suppress(RuntimeError):
                stream.end_input()

    async def _handle(self, event: stt.SpeechEvent, origin_ms: int) -> None:
        kind = event.type
        if kind is stt.SpeechEventType.START_OF_SPEECH:
            self._segment = _segment_id()
            self._speech_started_ms = _now_ms()
            self._speech_ended_ms = None
            return
        if kind is stt.SpeechEventType.END_OF_SPEECH:
            self._segment = None
            ended = event.speech_end_time  # the VAD's estimate, Unix seconds, if any
            self._speech_ended_ms = round(ended * 1000) if ended else _now_ms()
            return
        if kind not in (
            stt.SpeechEventType.INTERIM_TRANSCRIPT,
            stt.SpeechEventType.FINAL_TRANSCRIPT,
        ):
            return
        if not event.alternatives or not event.alternatives[0].text.strip():
            return
        final = kind is stt.SpeechEventType.FINAL_TRANSCRIPT
        segment = self._segment or _segment_id()
        self._segment = None if final else segment
        await self._on_caption(self._caption(segment, event.alternatives[0], final, origin_ms))

    def _caption(self, segment: str, data: stt.SpeechData, final: bool, origin_ms: int) -> Caption:
        words: tuple[Word, ...] = ()
        if self._stream_times and data.end_time > 0:
            start_ms = origin_ms + round(data.start_time * 1000)
            end_ms = max(start_ms, origin_ms + round(data.end_time * 1000))
            words = tuple(
                Word(str(w), origin_ms + round(w.start_time * 1000),
                     max(origin_ms + round(w.start_time * 1000),
                         origin_ms + round(w.end_time * 1000)))
                for w in (data.words or ())[:MAX_WORDS]
                if isinstance(w.start_time, float) and isinstance(w.end_time, float)
            )  # fmt: skip
        else:  # timed by the speech events: seen starting, and ended (or now)
            end_ms = self._speech_ended_ms if final and self._speech_ended_ms else _now_ms()
            start_ms = min(self._speech_started_ms or end_ms, end_ms)
        if final:
            self.finals += 1
        return Caption(
            segment_id=segment,
            speaker_identity=self._identity,
            speaker_name=self._name,
            track_sid=self._track_sid,
            text=" ".join(data.text.split()),
            final=final,
            start_ms=start_ms,
            end_ms=end_ms,
            words=words,
            confidence=max(0.0, min(1.0, float(data.confidence))),
        )


def _segment_id() -> str:
    return "SG_" + uuid.uuid4().hex[:16]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
