"""The green room's audio: the user's microphone back to them, live or recorded-then-played
(as Google Meet's green room does), plus what a level meter needs."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from livekit import rtc

from talkplatform_agents.dsp import to_db
from talkplatform_agents.tasks import TaskSet

__all__ = ["FRAME_MS", "SAMPLE_RATE", "AudioLoop", "FrameLevel", "LevelMeter"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
# The echo's frame: each frame costs the event loop two native round trips (in, then out),
# so 20 ms frames (Opus's own packet size) halve that against 10 ms ones, for 10 ms of delay.
FRAME_MS = 20
# Frames that arrive in a burst would queue and stay as echo delay for the rest of the
# session: past this backlog, drop them, as a jitter buffer would.
MAX_BACKLOG_S = 0.04

Mode = Literal["live", "playback"]
Phase = Literal["live", "recording", "playing"]


@dataclass(frozen=True, slots=True)
class FrameLevel:
    """One frame's energy, from which the RMS and peak of any run of frames follow. Taken
    once per frame for both the meter and the microphone check."""

    samples: int
    sum_squares: float  # of the samples in [-1, 1]
    peak: float  # of full scale

    @classmethod
    def of(cls, pcm: npt.NDArray[np.int16]) -> FrameLevel:
        if pcm.size == 0:
            return cls(0, 0.0, 0.0)
        x = pcm.astype(np.float32)
        peak = max(int(pcm.max()), -int(pcm.min()))
        return cls(pcm.size, float(np.dot(x, x)) / 32768.0**2, peak / 32768.0)

    @property
    def rms_dbfs(self) -> float:
        return _power_db(self.sum_squares, self.samples)


class LevelMeter:
    """RMS and peak of the last ``window_s`` of microphone audio."""

    def __init__(self, window_s: float = 0.1) -> None:
        self._frames: deque[FrameLevel] = deque()
        self._samples = 0
        self._window = int(window_s * SAMPLE_RATE)

    def add(self, level: FrameLevel) -> None:
        self._frames.append(level)
        self._samples += level.samples
        while self._frames and self._samples - self._frames[0].samples >= self._window:
            self._samples -= self._frames.popleft().samples

    def reading(self) -> tuple[float, float]:
        if not self._samples:
            return float("-inf"), float("-inf")
        sum_squares = sum(f.sum_squares for f in self._frames)
        return _power_db(sum_squares, self._samples), to_db(max(f.peak for f in self._frames))


def _power_db(sum_squares: float, samples: int) -> float:
    return 10.0 * math.log10(sum_squares / samples) if sum_squares > 0 else float("-inf")


class AudioLoop:
    """Reads the microphone; echoes it live, or records ``seconds`` and plays them back."""

    def __init__(
        self,
        source: rtc.AudioSource,
        on_frame: Callable[[npt.NDArray[np.int16]], None],
        on_phase: Callable[[Phase], None],
        tag: str,
    ) -> None:
        self._source = source
        self._on_frame = on_frame
        self._on_phase = on_phase
        self._tag = tag
        self.mode: Mode = "live"
        self.seconds = 6.0
        self.phase: Phase = "live"
        self.dropped_frames = 0
        self._recording: list[rtc.AudioFrame] = []
        self._recorded_s = 0.0
        self._tasks = TaskSet(tag)  # the player; stop() cancels and awaits it
        self._player: asyncio.Task[None] | None = None
        self._generation = 0  # bumped by every mode change; a stale player stops

    async def set_mode(self, mode: Mode, seconds: float) -> None:
        # Stop a playback between frames rather than cancel it inside capture_frame, and
        # never clear the source's queue: the native source can hang when its queue is
        # cleared under a capture in flight. What is queued (under 60 ms) plays out.
        self._generation += 1
        player, self._player = self._player, None
        if player is not None:
            await asyncio.wait([player])  # it ends, fails or was cancelled: all the same here
        self.mode, self.seconds = mode, seconds
        self._recording.clear()
        self._recorded_s = 0.0
        self._set_phase("live" if mode == "live" else "recording")
        logger.info("[%s] audio mode %s (%.1fs)", self._tag, mode, seconds)

    async def run(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(
            track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=FRAME_MS
        )
        try:
            async for event in stream:
                frame = event.frame
                self._on_frame(np.frombuffer(frame.data, dtype=np.int16))
                if self.mode == "live":
                    await self._echo(frame)
                elif self.phase == "recording":
                    self._record(frame)
        finally:
            self._cancel_player()
            await stream.aclose()

    async def stop(self) -> None:
        """Cancel a playback and wait for it to end. Idempotent."""
        self._player = None
        await self._tasks.aclose()

    async def _echo(self, frame: rtc.AudioFrame) -> None:
        if self._source.queued_duration > MAX_BACKLOG_S:
            self.dropped_frames += 1
            return
        await self._source.capture_frame(frame)

    def _record(self, frame: rtc.AudioFrame) -> None:
        self._recording.append(frame)
        self._recorded_s += frame.samples_per_channel / frame.sample_rate
        if self._recorded_s >= self.seconds:
            recording, self._recording = self._recording, []
            self._recorded_s = 0.0
            self._set_phase("playing")
            self._player = self._tasks.spawn(self._play(recording, self._generation), "play")

    async def _play(self, recording: list[rtc.AudioFrame], generation: int) -> None:
        started = time.monotonic()
        for frame in recording:
            if generation != self._generation:
                return
            # capture_frame waits while the source's queue is full: real-time pacing.
            await self._source.capture_frame(frame)
        await self._source.wait_for_playout()
        if generation != self._generation:
            return
        logger.debug("[%s] played %.1fs back in %.1fs", self._tag, self.seconds,
                     time.monotonic() - started)  # fmt: skip
        if self.mode == "playback":
            self._set_phase("recording")

    def _cancel_player(self) -> None:
        player, self._player = self._player, None
        if player is not None:
            player.cancel()

    def _set_phase(self, phase: Phase) -> None:
        if phase != self.phase:
            self.phase = phase
            self._on_phase(phase)
