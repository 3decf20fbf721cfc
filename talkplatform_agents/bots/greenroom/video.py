"""The green room's video: sampled frames of the camera feed the camera check and, only
while the user asks for it, the camera comes back as a preview, optionally with the
background blurred.

The check needs little: the bot asks for the camera's smallest simulcast layer and reads a
thumbnail twice a second. Without a preview the bot encodes no video at all.

The event loop that receives the frames also answers the user's RPCs and echoes their
voice, so it only routes frames: an unblurred frame of the preview's size goes straight
back out as it came, and a frame goes to the worker thread only when it has work due. All
image work (the camera check's thumbnails, blur, scaling) runs on one worker thread per
video track, which takes only the newest frame and skips the rest. Blur is paced by its own
cost (``RateGovernor``): on a busy machine the blurred preview runs at fewer frames per
second instead of starving everything else.
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

__all__ = ["SAMPLE_PERIOD_S", "BlurPacing", "VideoLoop"]

logger = logging.getLogger(__name__)

_THUMBNAIL = (32, 18)  # enough to tell black, frozen and moving apart
# The camera check's sampling: four thumbnails in its 2 s window tell black and frozen.
SAMPLE_PERIOD_S = 0.5
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
    """The camera's check, and its preview while ``preview`` is on (``set_preview``)."""

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
        # The preview while published. Sources are never closed here: the worker thread may
        # still hold one, and it is freed with the last frame that refers to it.
        self._source: rtc.VideoSource | None = None
        self._publication: rtc.LocalTrackPublication | None = None
        self._size = (0, 0)
        self._publishing = asyncio.Lock()  # one publish or unpublish at a time
        self.preview = False
        self.blur = False

    async def set_preview(self, enabled: bool) -> None:
        """On: the preview is published with the camera's next frame. Off: unpublished now,
        and blur goes off with it."""
        self.preview = enabled
        if not enabled:
            self.blur = False
            await self._unpublish()
        logger.info("[%s] preview %s", self._tag, "on" if enabled else "off")

    async def enable_blur(self, enabled: bool) -> None:
        """Blur the preview's background; on turns the preview on. Raises BlurUnavailable
        when the model cannot be loaded."""
        if enabled and self._segmenter is None:
            self._segmenter = await asyncio.to_thread(Segmenter, self._model_path)
        self.blur = enabled
        if enabled:
            self.preview = True
        logger.info("[%s] blur %s", self._tag, "on" if enabled else "off")

    def _blurring(self) -> Segmenter | None:
        """Read by the worker thread for each frame: blur switched off takes effect at once."""
        return self._segmenter if self.blur else None

    async def run(self, track: rtc.Track, publication: rtc.RemoteTrackPublication) -> None:
        _request_smallest_layer(publication, self._tag)
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
        source = self._source
        if self.preview and source is None:
            source = await self._publish_preview(frame.width, frame.height)
        size = self._size
        same_size = (frame.width, frame.height) == size
        if source is not None and not self.blur and same_size:
            source.capture_frame(frame)
        # Only a frame with work due wakes the worker: a sample, or a preview frame to blur
        # or scale when the governor allows one.
        showing = source is not None and (self.blur or not same_size)
        if worker.wants(now, showing):
            worker.offer(_Frame(frame, now, source if showing else None, size))

    async def _publish_preview(self, width: int, height: int) -> rtc.VideoSource | None:
        async with self._publishing:
            if not self.preview or self._source is not None:
                return self._source  # switched off, or published, while this waited
            # The preview keeps the first frame's size; later sizes are scaled to it.
            source = rtc.VideoSource(width, height)
            track = rtc.LocalVideoTrack.create_video_track("preview", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
            publication = await self._room.local_participant.publish_track(track, options)
            self._source, self._publication, self._size = source, publication, (width, height)
        logger.info("[%s] preview published at %dx%d", self._tag, width, height)
        return source

    async def _unpublish(self) -> None:
        async with self._publishing:
            publication, self._publication, self._source = self._publication, None, None
            if publication is None:
                return
            await self._room.local_participant.unpublish_track(publication.sid)
        logger.info("[%s] preview unpublished", self._tag)


def _request_smallest_layer(publication: rtc.RemoteTrackPublication, tag: str) -> None:
    """The check reads 32x18 thumbnails: the smallest simulcast layer is plenty, and the
    cheapest to receive and decode. A camera sent as one layer comes as it is."""
    try:
        publication.set_video_quality(rtc.VideoQuality.VIDEO_QUALITY_LOW)
    except ValueError:  # not simulcast: there is no smaller layer to ask for
        logger.info(
            "[%s] camera %s is one layer (%dx%d): taken as sent",
            tag,
            publication.sid,
            publication.width,
            publication.height,
        )
        return
    logger.info("[%s] camera %s: smallest simulcast layer requested", tag, publication.sid)


@dataclass(frozen=True)
class _Frame:
    frame: rtc.VideoFrame
    at: float  # arrival, time.monotonic()
    preview: rtc.VideoSource | None  # where a blurred or scaled frame goes; None: sample only
    size: tuple[int, int]  # the preview's


class _FrameWorker:
    """One thread for one video track's image work. It samples the camera check every
    ``SAMPLE_PERIOD_S`` and, while blur is on or the size differs from the preview's,
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
        self._schedule = FrameSchedule(SAMPLE_PERIOD_S)
        self._error: Exception | None = None
        self.shown = 0  # frames blurred or scaled onto the preview
        self.sampled = 0  # frames read by the camera check
        self._thread = threading.Thread(target=self._run, name=f"{tag}:video", daemon=True)
        self._thread.start()

    def wants(self, now: float, showing: bool) -> bool:
        """Whether a frame taken at ``now`` has work due (asked on the event loop)."""
        return self._schedule.wanted(now, showing)

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
        frame, preview = item.frame, item.preview
        # Unblurred at the preview's size, the event loop passed the frame on as it came.
        blur_or_scale = segmenter is not None or (frame.width, frame.height) != item.size
        showing = preview is not None and blur_or_scale
        if preview is not None and showing and show:
            self._show(item, preview, segmenter)
        return self._schedule.wake_at(showing)

    def _show(self, item: _Frame, preview: rtc.VideoSource, segmenter: Segmenter | None) -> None:
        started = time.monotonic()
        rgba = _rgba(item.frame)
        if segmenter is not None:
            rgba = _blurred(segmenter, rgba)
        if rgba.shape[:2] != (item.size[1], item.size[0]):
            rgba = np.asarray(cv2.resize(rgba, item.size, interpolation=cv2.INTER_AREA))
        height, width = rgba.shape[:2]
        preview.capture_frame(
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
