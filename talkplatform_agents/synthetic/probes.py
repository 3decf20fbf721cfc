"""Per-track receivers: read a subscribed track, decode its markers, keep measurements."""

from __future__ import annotations

import asyncio
import bisect
import logging
import statistics
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc

from talkplatform_agents.dsp import dominant_hz
from talkplatform_agents.synthetic.audio import SAMPLE_RATE, MarkerDecoder, level_dbfs
from talkplatform_agents.synthetic.video import decode_marker

__all__ = ["AudioProbe", "MarkerLog", "ReceivedMarker", "VideoProbe", "percentile"]

logger = logging.getLogger(__name__)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation, None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(min(int(q), 99), 1) - 1]


class MarkerLog:
    """When each audio marker left its sender: (tag, seq) -> wall time. Shared by the
    publishers and receivers of one process, whose clocks are the same clock."""

    def __init__(self, keep: int = 1024) -> None:
        self._sent: OrderedDict[tuple[int, int], float] = OrderedDict()
        self._keep = keep
        self._count = 0

    def record(self, tag: int, seq: int, at: float) -> None:
        # Sequence numbers wrap at 256: the newest send of (tag, seq) is the one that counts.
        self._sent[(tag, seq)] = at
        self._count += 1
        self._sent.move_to_end((tag, seq))
        while len(self._sent) > self._keep:
            self._sent.popitem(last=False)

    @property
    def sent_count(self) -> int:
        return self._count

    def sent_at(self, tag: int, seq: int) -> float | None:
        return self._sent.get((tag, seq))


@dataclass(frozen=True)
class ReceivedMarker:
    tag: int
    seq: int
    received_at: float
    latency_ms: float | None  # None when the sender is not in this process's MarkerLog


@dataclass
class AudioProbe:
    """Decodes tone markers and levels from one remote audio track."""

    sender: str
    track_sid: str
    log: MarkerLog
    notify: asyncio.Event = field(default_factory=asyncio.Event)
    markers: list[ReceivedMarker] = field(default_factory=list)
    frames: int = 0
    rms_dbfs: float = float("-inf")
    peak_dbfs: float = float("-inf")
    first_frame_at: float | None = None
    _decoder: MarkerDecoder = field(default_factory=MarkerDecoder)
    _samples: int = 0
    # (stream position of a frame's first sample, its arrival time), for the last ~5 s
    _arrivals: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=500))
    _recent: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=10))

    async def run(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                self.feed(np.frombuffer(event.frame.data, dtype=np.int16), time.time())
        finally:
            await stream.aclose()

    def feed(self, samples: np.ndarray, arrived: float) -> None:
        if self.first_frame_at is None:
            self.first_frame_at = arrived
        self.frames += 1
        self._arrivals.append((self._samples, arrived))
        self._samples += samples.size
        self._recent.append(samples)
        # Levels over the last 100 ms: what a meter would show now.
        self.rms_dbfs, self.peak_dbfs = level_dbfs(np.concatenate(self._recent))
        for found in self._decoder.feed(samples):
            self._on_marker(found.tag, found.seq, self._arrival_of(found.sample))

    def dominant_hz(self) -> float | None:
        """The strongest frequency heard over the last 100 ms (None: silence)."""
        if not self._recent:
            return None
        return dominant_hz(np.concatenate(self._recent), SAMPLE_RATE)

    def _arrival_of(self, sample: int) -> float:
        starts = [start for start, _ in self._arrivals]
        index = max(bisect.bisect_right(starts, sample) - 1, 0)
        return self._arrivals[index][1]

    def _on_marker(self, tag: int, seq: int, received_at: float) -> None:
        sent = self.log.sent_at(tag, seq)
        latency = (received_at - sent) * 1000 if sent is not None else None
        self.markers.append(ReceivedMarker(tag, seq, received_at, latency))
        self.notify.set()

    def latencies_ms(self, tag: int | None = None) -> list[float]:
        return [
            m.latency_ms
            for m in self.markers
            if m.latency_ms is not None and (tag is None or m.tag == tag)
        ]


@dataclass
class VideoProbe:
    """Decodes frame markers, size and latency from one remote video track."""

    sender: str
    track_sid: str
    frames: int = 0
    decoded: int = 0
    width: int = 0
    height: int = 0
    first_frame_at: float | None = None
    last_frame_number: int | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))

    async def run(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA)
        try:
            async for event in stream:
                frame = event.frame
                rgba = np.frombuffer(frame.data, dtype=np.uint8).reshape(
                    frame.height, frame.width, 4
                )
                self.feed(rgba, time.time())
        finally:
            await stream.aclose()

    def feed(self, rgba: np.ndarray, arrived: float) -> None:
        if self.first_frame_at is None:
            self.first_frame_at = arrived
        self.frames += 1
        self.height, self.width = rgba.shape[:2]
        marker = decode_marker(rgba)
        if marker is None:
            return
        self.decoded += 1
        self.last_frame_number = marker.frame
        now_ms = int(arrived * 1000) & 0xFFFFFFFF
        self.latencies.append(float((now_ms - marker.capture_ms) & 0xFFFFFFFF))
