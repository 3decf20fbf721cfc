"""A microphone that speaks prepared clips: a published audio track of any rate and
channel count that plays silence until it is told to ``say`` something, like a person who
speaks now and then. It reports when each clip went out, on the wall clock, so a test can
compare what a listener made of it with when it was said.

The source's queue is kept short (``queue_ms``) so that a clip's reported start is within
that of when its first sample left for the network.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from livekit import rtc

from talkplatform_agents.tasks import TaskSet

__all__ = ["SpeechTrack", "Spoken"]

_FRAME_MS = 10


@dataclass(frozen=True)
class Spoken:
    start_ms: int  # Unix time the clip's first sample was handed to the track
    end_ms: int  # ... and its last


@dataclass
class _Clip:
    samples: npt.NDArray[np.int16]  # (n, channels)
    done: asyncio.Future[Spoken]
    started: asyncio.Event | None = None


class SpeechTrack:
    def __init__(
        self,
        room: rtc.Room,
        *,
        sample_rate: int = 16_000,
        channels: int = 1,
        name: str = "microphone",
        queue_ms: int = 40,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        self._room = room
        self.sample_rate = sample_rate
        self.channels = channels
        self._name = name
        self._source = rtc.AudioSource(sample_rate, channels, queue_size_ms=queue_ms)
        self._clips: asyncio.Queue[_Clip] = asyncio.Queue()
        self._tasks = TaskSet(f"speech:{room.name}")
        self.publication: rtc.LocalTrackPublication | None = None

    async def start(self) -> None:
        track = rtc.LocalAudioTrack.create_audio_track(self._name, self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        self.publication = await self._room.local_participant.publish_track(track, options)
        self._tasks.spawn(self._play(), "play")

    async def say(
        self, samples: npt.NDArray[np.int16], started: asyncio.Event | None = None
    ) -> Spoken:
        """Play ``samples`` (shape ``(n, channels)``, or ``(n,)`` for mono) after whatever is
        queued; when it has gone out, its times. ``started`` is set as it begins."""
        clip = samples.reshape(-1, 1) if samples.ndim == 1 else samples
        if clip.shape[1] != self.channels:
            raise ValueError(f"a {clip.shape[1]}-channel clip on a {self.channels}-channel track")
        done: asyncio.Future[Spoken] = asyncio.get_running_loop().create_future()
        await self._clips.put(_Clip(clip.astype(np.int16, copy=False), done, started))
        return await done

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await self._source.aclose()

    async def _play(self) -> None:
        step = self.sample_rate * _FRAME_MS // 1000
        silence = np.zeros((step, self.channels), dtype=np.int16)
        while True:
            try:
                clip = self._clips.get_nowait()
            except asyncio.QueueEmpty:
                await self._push(silence)
                continue
            start_ms = _now_ms()
            if clip.started is not None:
                clip.started.set()
            for at in range(0, len(clip.samples), step):
                chunk = clip.samples[at : at + step]
                if len(chunk) < step:
                    chunk = np.concatenate([chunk, silence[: step - len(chunk)]])
                await self._push(chunk)
            if not clip.done.done():
                clip.done.set_result(Spoken(start_ms, _now_ms()))

    async def _push(self, chunk: npt.NDArray[np.int16]) -> None:
        frame = rtc.AudioFrame(
            np.ascontiguousarray(chunk).tobytes(), self.sample_rate, self.channels, len(chunk)
        )
        await self._source.capture_frame(frame)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
