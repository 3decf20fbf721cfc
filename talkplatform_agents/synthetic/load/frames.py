"""A cheap receiver for one remote video track under load: it reads only the luma plane
(the barcode is black and white), and keeps size, frame rate, freezes and latency.

A freeze is WebRTC's: a gap between frames longer than both three times the average gap
and the average plus 150 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from livekit import rtc

from talkplatform_agents.synthetic.screen import ScreenPattern
from talkplatform_agents.synthetic.video import decode_marker

__all__ = ["FrameProbe"]

_LUMA_TYPES = {
    rtc.VideoBufferType.I420,
    rtc.VideoBufferType.I420A,
    rtc.VideoBufferType.NV12,
    rtc.VideoBufferType.I422,
    rtc.VideoBufferType.I444,
}
_SCREEN_CHECK_EVERY = 5  # frames: the readability check costs a full-frame compare


@dataclass
class FrameProbe:
    sender: str
    track_sid: str
    screen: bool = False  # a screen share: check readability too
    live_latency: bool = True  # False for a pre-encoded clip, whose timestamps are fixed
    frames: int = 0
    decoded: int = 0
    width: int = 0
    height: int = 0
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    freezes: int = 0
    freeze_ms: float = 0.0
    max_width: int = 0
    max_height: int = 0  # of the widest frame
    best_psnr_db: float | None = None
    size_changed: asyncio.Event = field(default_factory=asyncio.Event)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=400))
    _gaps: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    _page: ScreenPattern | None = None

    async def run(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for event in stream:
                self.feed_frame(event.frame, time.time())
        finally:
            await stream.aclose()

    def feed_frame(self, frame: rtc.VideoFrame, arrived: float) -> None:
        if frame.type not in _LUMA_TYPES:
            frame = frame.convert(rtc.VideoBufferType.I420)
        plane = frame.get_plane(0)
        if plane is None:
            return
        luma = np.frombuffer(plane, dtype=np.uint8)
        stride = luma.size // frame.height
        y = luma.reshape(frame.height, stride)[:, : frame.width]
        self.feed(y, arrived)

    def feed(self, y: npt.NDArray[np.uint8], arrived: float) -> None:
        height, width = y.shape
        if self.first_frame_at is None:
            self.first_frame_at = arrived
        elif self.last_frame_at is not None:
            self._note_gap((arrived - self.last_frame_at) * 1000)
        self.last_frame_at = arrived
        self.frames += 1
        if (width, height) != (self.width, self.height):
            self.width, self.height = width, height
            if width > self.max_width:
                self.max_width, self.max_height = width, height
            self.size_changed.set()
        marker = decode_marker(y[:, :, None])
        if marker is not None:
            self.decoded += 1
            if self.live_latency:
                now_ms = int(arrived * 1000) & 0xFFFFFFFF
                self.latencies.append(float((now_ms - marker.capture_ms) & 0xFFFFFFFF))
        if self.screen and self.frames % _SCREEN_CHECK_EVERY == 1:
            self._check_readable(y)

    def _note_gap(self, gap_ms: float) -> None:
        if len(self._gaps) >= 5:
            average = sum(self._gaps) / len(self._gaps)
            if gap_ms > max(3 * average, average + 150):
                self.freezes += 1
                self.freeze_ms += gap_ms
        self._gaps.append(gap_ms)

    def _check_readable(self, y: npt.NDArray[np.uint8]) -> None:
        height, width = y.shape
        if self._page is None or (self._page.width, self._page.height) != (width, height):
            try:
                self._page = ScreenPattern(width, height)
            except ValueError:
                return
        psnr = self._page.readability_db(y)
        if psnr is not None and (self.best_psnr_db is None or psnr > self.best_psnr_db):
            self.best_psnr_db = round(psnr, 2)

    def fps(self) -> float | None:
        if self.first_frame_at is None or self.last_frame_at is None or self.frames < 2:
            return None
        span = self.last_frame_at - self.first_frame_at
        return round((self.frames - 1) / span, 2) if span > 0 else None
