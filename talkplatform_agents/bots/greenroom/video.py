"""The green room's video: the camera comes back as a preview, optionally with the
background blurred, and every frame feeds the camera check."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import cv2
import numpy as np
from livekit import rtc

from talkplatform_agents.bots.greenroom.analysis import CameraCheck
from talkplatform_agents.bots.greenroom.blur import Segmenter, blur_background

__all__ = ["VideoLoop"]

logger = logging.getLogger(__name__)

_THUMBNAIL = (32, 18)  # enough to tell black, frozen and moving apart


class VideoLoop:
    def __init__(self, room: rtc.Room, camera: CameraCheck, model_path: Path, tag: str) -> None:
        self._room = room
        self._camera = camera
        self._model_path = model_path
        self._tag = tag
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

    async def run(self, track: rtc.Track) -> None:
        # Capacity 1: when blur falls behind, show the newest frame, never a growing queue.
        stream = rtc.VideoStream(track, capacity=1, format=rtc.VideoBufferType.RGBA)
        try:
            async for event in stream:
                await self._on_frame(event.frame)
        finally:
            await stream.aclose()

    async def _on_frame(self, frame: rtc.VideoFrame) -> None:
        rgba: np.ndarray = np.frombuffer(frame.data, dtype=np.uint8).reshape(
            frame.height, frame.width, 4
        )
        luma = cv2.cvtColor(np.ascontiguousarray(rgba), cv2.COLOR_RGBA2GRAY)
        thumbnail = cv2.resize(luma, _THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
        self._camera.add(time.monotonic(), thumbnail, frame.width, frame.height)
        source = await self._preview_source(frame.width, frame.height)
        width, height = self._size
        if not self.blur and (frame.width, frame.height) == self._size:
            source.capture_frame(frame)
            return
        if self.blur and self._segmenter is not None:
            rgba = await asyncio.to_thread(_blurred, self._segmenter, rgba)
        if rgba.shape[:2] != (height, width):
            rgba = cv2.resize(rgba, (width, height))
        out = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba.tobytes())
        source.capture_frame(out)

    async def _preview_source(self, width: int, height: int) -> rtc.VideoSource:
        if self._source is None:
            # The preview keeps the first frame's size; later sizes are scaled to it.
            self._source = rtc.VideoSource(width, height)
            self._size = (width, height)
            track = rtc.LocalVideoTrack.create_video_track("preview", self._source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
            await self._room.local_participant.publish_track(track, options)
            logger.info("[%s] preview published at %dx%d", self._tag, width, height)
        return self._source


def _blurred(segmenter: Segmenter, rgba: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(rgba[:, :, :3])
    out = blur_background(rgb, segmenter.mask(rgb))
    return np.dstack([out, rgba[:, :, 3]])
