"""The green room's video: the camera comes back as a preview, optionally with the
background blurred, and sampled frames feed the camera check.

The event loop that receives the frames also answers the user's RPCs and echoes their
voice, so it only routes frames: an unblurred frame of the preview's size goes straight
back out as it came. All image work (the camera check's thumbnails, blur, scaling) runs on
one worker thread per video track, which takes only the newest frame and skips the rest.
Blur is paced by its own cost (``RateGovernor``): on a busy machine the blurred preview
runs at fewer frames per second instead of starving everything else.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from livekit import rtc

from talkplatform_agents.bots.greenroom.analysis import CameraCheck
from talkplatform_agents.bots.greenroom.blur import Segmenter, blur_background
from talkplatform_agents.bots.greenroom.pacing import FrameSchedule, NewestSlot, RateGovernor

__all__ = ["BlurPacing", "VideoLoop"]

logger = logging.getLogger(__name__)

_THUMBNAIL = (32, 18)  # enough to tell black, frozen and moving apart
_SAMPLE_PERIOD_S = 0.2  # the camera check's sampling: black and frozen need no more
# Formats whose first plane is 8-bit luma at the frame's size (strides are normalised).
_LUMA_FIRST = (
    rtc.VideoBufferType.I420,
    rtc.VideoBufferType.I420A,
    rtc.VideoBufferType.I422,
    rtc.VideoBufferType.I444,
    rtc.VideoBufferType.NV12,
)

Thumbnail = npt.NDArray[np.float32]


@dataclass(frozen=True)
class BlurPacing:
    """Blur takes at most about ``share`` of the wall clock, at ``min_fps`` to ``max_fps``."""

    max_fps: float = 15.0
    min_fps: float = 1.0
    share: float = 0.25

    def governor(self) -> RateGovernor:
        return RateGovernor(max_fps=self.max_fps, min_fps=self.min_fps, share=self.share)


class VideoLoop:
    def __init__(
        self,
        room: rtc.Room,
        camera: CameraCheck,
        model_path: Path,
        tag: str,
        pacing: BlurPacing | None = None,
    ) -> None:
        self._room = room
        self._camera = camera
        self._model_path = model_path
        self._tag = tag
        self._pacing = pacing or BlurPacing()
        self._segmenter: Segmenter | None = None
        self._source: rtc.VideoSource | None = None
        self._size = (0, 0)
        self.blur = False

    async def enable_blur(self, enabled: bool) -> None:
        """Raises BlurUnavailable when the model cannot be loaded."""
        if enabled and self._segmenter is None:
            self._segmenter = await asyncio.to_thread(Segmenter, self._model_path)
        self.blur = enabled
        logger.info("[%s] blur %s", self._tag, "on" if enabled else "off")

    def _blurring(self) -> Segmenter | None:
        """Read by the worker thread for each frame: blur switched off takes effect at once."""
        return self._segmenter if self.blur else None

    async def run(self, track: rtc.Track) -> None:
        # Capacity 1, and the frame's own buffer type: nothing queues, nothing is converted
        # unless the worker needs it.
        stream = rtc.VideoStream(track, capacity=1)
        worker = _FrameWorker(
            self._tag, self._camera.sample, self._blurring, self._pacing.governor()
        )
        try:
            async for event in stream:
                await self._route(event.frame, worker)
        finally:
            # The native stream first, in its own step: a second cancellation (a device
            # switch, then stop()) may cut the wait for the thread short, never this.
            try:
                await stream.aclose()
            finally:
                await worker.aclose()

    async def _route(self, frame: rtc.VideoFrame, worker: _FrameWorker) -> None:
        now = time.monotonic()
        self._camera.frame(now, frame.width, frame.height)
        source = self._source or await self._publish_preview(frame.width, frame.height)
        if not self.blur and (frame.width, frame.height) == self._size:
            source.capture_frame(frame)
        # Every frame is offered; the worker takes what it has time for.
        worker.offer(_Frame(frame, now, source, self._size))

    async def _publish_preview(self, width: int, height: int) -> rtc.VideoSource:
        # The preview keeps the first frame's size; later sizes are scaled to it.
        self._source = source = rtc.VideoSource(width, height)
        self._size = (width, height)
        track = rtc.LocalVideoTrack.create_video_track("preview", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
        await self._room.local_participant.publish_track(track, options)
        logger.info("[%s] preview published at %dx%d", self._tag, width, height)
        return source


@dataclass(frozen=True)
class _Frame:
    frame: rtc.VideoFrame
    at: float  # arrival, time.monotonic()
    preview: rtc.VideoSource
    size: tuple[int, int]  # the preview's


class _FrameWorker:
    """One thread for one video track's image work. It samples the camera check every
    ``_SAMPLE_PERIOD_S`` and, while blur is on or the size differs from the preview's,
    processes the newest frame at the governor's pace: it wakes for whichever is due first
    (``FrameSchedule``). A failure stops it, and the next ``offer`` raises it on the event
    loop."""

    def __init__(
        self,
        tag: str,
        on_sample: Callable[[float, Thumbnail], None],
        blurring: Callable[[], Segmenter | None],
        governor: RateGovernor,
    ) -> None:
        self._tag = tag
        self._loop = asyncio.get_running_loop()
        self._on_sample = on_sample
        self._blurring = blurring
        self._governor = governor
        self._slot: NewestSlot[_Frame] = NewestSlot()
        self._schedule = FrameSchedule(_SAMPLE_PERIOD_S)
        self._error: Exception | None = None
        self.shown = 0  # frames blurred or scaled onto the preview
        self.sampled = 0  # frames read by the camera check
        self._thread = threading.Thread(target=self._run, name=f"{tag}:video", daemon=True)
        self._thread.start()

    def offer(self, item: _Frame) -> None:
        if not self._slot.put(item) and self._error is not None:
            raise RuntimeError(f"[{self._tag}] video worker failed") from self._error

    async def aclose(self) -> None:
        """Stop the thread and wait for it (at most one frame's work). Idempotent."""
        self._slot.close()
        await asyncio.to_thread(self._thread.join)
        cost = self._governor.cost_s
        logger.info(
            "[%s] video worker: %d frames blurred or scaled (%.0f ms each on average: %.1f fps),"
            " %d sampled, %d left for newer ones",
            self._tag,
            self.shown,
            (cost or 0.0) * 1000,
            self._governor.fps,
            self.sampled,
            self._slot.replaced,
        )

    def _run(self) -> None:
        not_before = 0.0
        try:
            while (item := self._slot.take(not_before)) is not None:
                not_before = self._handle(item)
        except Exception as exc:  # handed to the event loop by the next offer
            logger.exception("[%s] video worker failed", self._tag)
            self._error = exc
            self._slot.close()

    def _handle(self, item: _Frame) -> float:
        """Work on one frame; return when the next may be taken."""
        sample, show = self._schedule.due(time.monotonic())
        if sample:
            self._deliver(item.at, _thumbnail(item.frame))
            self.sampled += 1
        segmenter = self._blurring()
        frame = item.frame
        # Unblurred at the preview's size, the event loop passed the frame on as it came.
        showing = segmenter is not None or (frame.width, frame.height) != item.size
        if showing and show:
            self._show(item, segmenter)
        return self._schedule.wake_at(showing)

    def _show(self, item: _Frame, segmenter: Segmenter | None) -> None:
        started = time.monotonic()
        rgba = _rgba(item.frame)
        if segmenter is not None:
            rgba = _blurred(segmenter, rgba)
        if rgba.shape[:2] != (item.size[1], item.size[0]):
            rgba = np.asarray(cv2.resize(rgba, item.size, interpolation=cv2.INTER_AREA))
        height, width = rgba.shape[:2]
        item.preview.capture_frame(
            rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba.tobytes())
        )
        self.shown += 1
        self._schedule.shown(self._governor.next_at(started, time.monotonic() - started))

    def _deliver(self, at: float, thumbnail: Thumbnail) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_sample, at, thumbnail)
        except RuntimeError:  # the loop has closed: nobody is left to read the check
            self._slot.close()


def _thumbnail(frame: rtc.VideoFrame) -> Thumbnail:
    """A small full-range luma copy of the frame, for the camera check."""
    if frame.type not in _LUMA_FIRST:
        frame = frame.convert(rtc.VideoBufferType.I420)
    luma = np.frombuffer(frame.data, dtype=np.uint8, count=frame.width * frame.height)
    small = cv2.resize(
        luma.reshape(frame.height, frame.width), _THUMBNAIL, interpolation=cv2.INTER_AREA
    )
    # Decoded video is limited range (16-235): stretch it, so black reads as about 0.
    full: Thumbnail = (small.astype(np.float32) - 16.0) * np.float32(255.0 / 219.0)
    return np.clip(full, 0.0, 255.0, out=full)


def _rgba(frame: rtc.VideoFrame) -> npt.NDArray[np.uint8]:
    if frame.type != rtc.VideoBufferType.RGBA:
        frame = frame.convert(rtc.VideoBufferType.RGBA)
    return np.frombuffer(frame.data, dtype=np.uint8).reshape(frame.height, frame.width, 4)


def _blurred(segmenter: Segmenter, rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    rgb = np.ascontiguousarray(rgba[:, :, :3])
    out = blur_background(rgb, segmenter.mask(rgb))
    return np.dstack([out, rgba[:, :, 3]])
