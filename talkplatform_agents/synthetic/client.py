"""What every synthetic client shares: a plain ``rtc.Room`` participant's timed join, the
tasks it owns, its leaving, and the pumps that feed its published media on a real-time grid.

The synthetic participant (``participant.py``) and the load run's members (``load/``) are
both built on it, so that a tone, a camera and a join behave the same in a test, in the
green-room check and under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import numpy as np
from livekit import rtc

from talkplatform_agents.synthetic.audio import SAMPLE_RATE, ToneConfig, ToneGenerator
from talkplatform_agents.synthetic.probes import MarkerLog
from talkplatform_agents.tasks import OnError, TaskSet

__all__ = ["ClientState", "Draw", "RoomClient", "pump_frames", "pump_tone", "ticks"]

logger = logging.getLogger(__name__)

AUDIO_FRAME_MS = 10
# A microphone never bursts: past this much queued audio, a pump lets the queue drain.
MAX_AUDIO_BACKLOG_S = 0.03
# (frame index, wall time in ms) -> an RGBA image
Draw = Callable[[int, int], np.ndarray]


class ClientState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


def _unity() -> float:
    return 1.0


class RoomClient:
    """One participant's room: joined once, left once. ``label`` tags its tasks; a task's
    failure goes to ``on_error``."""

    def __init__(self, label: str, on_error: OnError) -> None:
        self.room = rtc.Room()
        self.state = ClientState.NEW
        self._tasks = TaskSet(label, on_error)

    @property
    def running(self) -> bool:
        return self.state is ClientState.RUNNING

    async def join(self, url: str, token: str, *, auto_subscribe: bool, timeout_s: float) -> float:
        """Connect; return how long the join took (s). On failure the client is stopped
        and the SDK's error (``rtc.ConnectError``) propagates."""
        if self.state is not ClientState.NEW:
            raise RuntimeError(f"cannot join a room client that is {self.state.value}")
        started = time.perf_counter()
        try:
            # No outer timeout: cancelling a join in flight leaves the native SDK working on
            # it (and able to panic the process later). Its per-attempt timeout bounds it.
            await self.room.connect(
                url,
                token,
                rtc.RoomOptions(auto_subscribe=auto_subscribe, connect_timeout=timeout_s),
            )
        except BaseException:
            self.state = ClientState.STOPPED
            raise
        self.state = ClientState.RUNNING
        return time.perf_counter() - started

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None] | None:
        """Run ``work`` as a task of this client while it is in the room, and return it (to
        cancel it early); else close it and return None."""
        if not self.running:
            work.close()
            return None
        return self._tasks.spawn(work, what)

    async def leave(self, last_words: Callable[[], Awaitable[None]] | None = None) -> None:
        """Take no new task, run ``last_words`` (while still in the room: a last measure),
        cancel and await every task, then disconnect. Idempotent."""
        if self.state is ClientState.STOPPED:
            return
        was_running = self.running
        self.state = ClientState.STOPPED
        try:
            if last_words is not None and was_running:
                await last_words()
        finally:
            await self._tasks.aclose()
            if self.room.isconnected():  # disconnecting a room whose join failed upsets the SDK
                with contextlib.suppress(Exception):
                    await self.room.disconnect()

    async def publish_tone(
        self,
        track_name: str,
        tone: ToneConfig,
        marker_log: MarkerLog,
        gain: Callable[[], float] = _unity,
    ) -> asyncio.Task[None] | None:
        """Publish the marked tone as a microphone, and pump it; returns the pump."""
        source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=50)
        track = rtc.LocalAudioTrack.create_audio_track(track_name, source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        return self.spawn(pump_tone(source, tone, marker_log, gain), "audio")

    async def publish_frames(
        self,
        track_name: str,
        source: rtc.VideoSource,
        options: rtc.TrackPublishOptions,
        draw: Draw,
        fps: int,
        *,
        what: str,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        """Publish ``source`` with ``options`` and pump ``draw``'s images into it."""
        track = rtc.LocalVideoTrack.create_video_track(track_name, source)
        await self.room.local_participant.publish_track(track, options)
        self.spawn(pump_frames(source, draw, fps, on_frame), what)


async def ticks(period_s: float) -> AsyncIterator[float]:
    """Yield the wall time on a fixed real-time grid; after a stall, skip ahead instead of
    bursting (a camera or a microphone never sends a backlog)."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        yield time.time()
        next_at += period_s
        delay = next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.2:
            next_at = loop.time()


async def pump_tone(
    source: rtc.AudioSource,
    tone: ToneConfig,
    marker_log: MarkerLog,
    gain: Callable[[], float] = _unity,
) -> None:
    """Feed the marked tone in 10 ms frames, logging when each marker enters WebRTC.
    ``gain`` is read every frame (0 is a silent microphone)."""
    generator = ToneGenerator(tone)
    per_frame = SAMPLE_RATE * AUDIO_FRAME_MS // 1000
    async for now in ticks(AUDIO_FRAME_MS / 1000):
        if source.queued_duration > MAX_AUDIO_BACKLOG_S:
            # After a stall, let the queue drain rather than carry the backlog as latency
            # for the rest of the call.
            continue
        chunk, starts = generator.next_chunk(per_frame)
        # These samples enter WebRTC after what is already queued.
        enters_at = now + source.queued_duration
        for seq, _pos in starts:
            marker_log.record(tone.tag, seq, enters_at)
        scaled = np.clip(chunk * (32767 * gain()), -32768, 32767)
        pcm = scaled.astype("<i2").tobytes()
        await source.capture_frame(rtc.AudioFrame(pcm, SAMPLE_RATE, 1, per_frame))


async def pump_frames(
    source: rtc.VideoSource,
    draw: Draw,
    fps: int,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Feed ``draw``'s images at ``fps``, each stamped with its capture time."""
    index = 0
    async for now in ticks(1 / fps):
        image = draw(index, int(now * 1000))
        height, width = image.shape[:2]
        frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, image.tobytes())
        source.capture_frame(frame, timestamp_us=int(now * 1e6))
        index += 1
        if on_frame is not None:
            on_frame()
