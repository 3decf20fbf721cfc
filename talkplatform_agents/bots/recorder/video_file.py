"""One WebM/VP8 file: a camera or screen-share track's recording.

Frames carry their own time (milliseconds from the file's start, from when each arrived),
so a variable frame rate, a stall or a paused track are kept as they happened. The file has
one fixed size; a frame of another size (the sender switched simulcast layer, or turned
the phone) is scaled to it.
"""

from __future__ import annotations

from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from talkplatform_agents.bots.recorder.container import (
    WriteFailed,
    close_quietly,
    guarded,
    open_output,
)

__all__ = ["Vp8FileWriter"]

_TIME_BASE = Fraction(1, 1000)
# Bits per pixel per frame when no bitrate is given: plenty for talking heads and slides.
_BITS_PER_PIXEL = 0.1
_MIN_BITRATE = 100_000


class Vp8FileWriter:
    """Encodes frames to a WebM/VP8 file at ``path``, closing a cluster every ``cluster_ms``
    so that a killed process leaves a playable file missing at most about that much."""

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: int,
        *,
        bitrate: int | None = None,
        keyframe_s: float = 2.0,
        cluster_ms: int = 1000,
        cpu_used: int = 8,
    ) -> None:
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"the size must be even and at least 16x16, got {width}x{height}")
        if not 1 <= fps <= 120:
            raise ValueError(f"fps must be in 1..120, got {fps}")
        if not 100 <= cluster_ms <= 10_000:
            raise ValueError(f"cluster_ms must be in 100..10000, got {cluster_ms}")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self.retimed_frames = 0  # frames whose time was not after the previous one's
        self.scaled_frames = 0  # frames of another size, scaled to the file's
        self._last_pts = -1
        self._closed = False
        self._failed: WriteFailed | None = None
        self._container: Any = open_output(
            self.path, "webm", {"cluster_time_limit": str(cluster_ms)}
        )
        stream: Any = self._container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = _TIME_BASE
        codec = stream.codec_context
        codec.time_base = _TIME_BASE
        codec.framerate = Fraction(fps)
        codec.bit_rate = bitrate or max(_MIN_BITRATE, int(width * height * fps * _BITS_PER_PIXEL))
        codec.gop_size = max(1, round(fps * keyframe_s))
        # Real-time encoding with no look-ahead: each frame's packet comes out at once, so
        # it reaches the file (and survives a kill) with the cluster it belongs to.
        codec.options = {"deadline": "realtime", "cpu-used": str(cpu_used), "lag-in-frames": "0"}
        self._stream = stream

    @property
    def duration_ns(self) -> int:
        return max(0, self._last_pts) * 1_000_000

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, frame: npt.NDArray[np.uint8] | Any, pts_ms: int) -> None:
        """Encodes ``frame`` shown at ``pts_ms`` from the file's start. ``frame`` is an
        ``av.VideoFrame`` or a uint8 array: ``(h, w, 3)`` RGB, ``(h, w, 4)`` RGBA, or
        ``(h * 3 // 2, w)`` I420 (Y, then U, then V planes). A time not after the previous
        frame's is moved 1 ms past it: WebM needs rising timestamps."""
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        if pts_ms < 0:
            raise ValueError(f"pts_ms must be >= 0, got {pts_ms}")
        video = self._to_frame(frame)
        if (video.width, video.height) != (self.width, self.height):
            self.scaled_frames += 1
        video = video.reformat(self.width, self.height, format="yuv420p")
        if pts_ms <= self._last_pts:
            self.retimed_frames += 1
            pts_ms = self._last_pts + 1
        video.pts = pts_ms
        video.time_base = _TIME_BASE
        self._last_pts = pts_ms
        self._encode(video)
        self.frames += 1

    def close(self) -> None:
        """Drains the encoder and finalises the file (duration, cues). Idempotent; after a
        write error it only releases the file (the error was raised already)."""
        if self._closed:
            return
        self._closed = True
        if self._failed is not None:
            close_quietly(self._container)
            return
        try:
            self._encode(None)
            guarded(self.path, self._container.close)
        except WriteFailed:
            close_quietly(self._container)
            raise

    def _to_frame(self, frame: npt.NDArray[np.uint8] | Any) -> Any:
        if isinstance(frame, av.VideoFrame):
            return frame
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise ValueError("a frame must be an av.VideoFrame or a uint8 numpy array")
        if frame.ndim == 3 and frame.shape[2] in (3, 4):
            fmt = "rgb24" if frame.shape[2] == 3 else "rgba"
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=fmt)
        if frame.ndim == 2 and frame.shape[0] % 3 == 0 and frame.shape[1] % 2 == 0:
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="yuv420p")
        raise ValueError(
            f"a frame must be (h, w, 3) RGB, (h, w, 4) RGBA or (h*3/2, w) I420, got {frame.shape}"
        )

    def _encode(self, frame: Any) -> None:
        try:
            packets = guarded(self.path, lambda: self._stream.encode(frame))
            for packet in packets:
                guarded(self.path, partial(self._container.mux, packet))
        except WriteFailed as exc:
            self._failed = exc
            raise
