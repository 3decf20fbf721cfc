"""The test pattern encoded once with PyAV, for publishers that send pre-encoded frames
(``rtc.EncodedVideoSource``) instead of encoding every frame themselves.

Pure PyAV and numpy, no LiveKit. The clip loops; each frame carries its clip index in the
barcode and its offset in the clip (ms) as the capture time, so a receiver can decode it
but cannot take latency from it: the capture time is fixed when the clip is made. Every
frame is also encoded as a keyframe, so a publisher can answer a keyframe request (a late
subscriber) at once without breaking the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from talkplatform_agents.synthetic.video import PatternGenerator

__all__ = ["EncodedClip", "EncodedFrame", "encode_pattern_clip"]

_ENCODERS = {"vp8": "libvpx", "h264": "libx264"}


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes
    keyframe: bool


@dataclass(frozen=True)
class EncodedClip:
    codec: str  # vp8 or h264 (H.264 in Annex B)
    width: int
    height: int
    fps: int
    frames: tuple[EncodedFrame, ...]  # the loop, its first frame a keyframe
    keyframes: tuple[bytes, ...]  # the same pictures, each encoded alone

    @property
    def bytes_per_second(self) -> float:
        return sum(len(f.data) for f in self.frames) * self.fps / len(self.frames)


def _encoder(codec: str, width: int, height: int, fps: int, bitrate: int, gop: int) -> Any:
    # PyAV types create() as the generic context; this is a video encoder.
    ctx: Any = av.CodecContext.create(_ENCODERS[codec], "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = bitrate
    ctx.gop_size = gop
    ctx.max_b_frames = 0  # WebRTC sends no B-frames
    if codec == "vp8":
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    else:
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    ctx.open()
    return ctx


def _encode_all(ctx: Any, images: list[np.ndarray]) -> list[EncodedFrame]:
    out: list[EncodedFrame] = []
    for pts, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="rgba").reformat(format="yuv420p")
        frame.pts = pts
        out.extend(EncodedFrame(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame))
    out.extend(EncodedFrame(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None))
    return out


def encode_pattern_clip(
    codec: str, width: int, height: int, fps: int, seconds: float = 2.0, bitrate: int = 1_000_000
) -> EncodedClip:
    """Encode ``seconds`` of the moving test pattern; raises ValueError for a codec it lacks."""
    if codec not in _ENCODERS:
        raise ValueError(f"cannot pre-encode {codec!r}: use one of {sorted(_ENCODERS)}")
    if seconds <= 0 or fps <= 0:
        raise ValueError(f"clip of {seconds}s at {fps} fps makes no frames")
    pattern = PatternGenerator(width, height)
    count = max(int(seconds * fps), 1)
    images = [pattern.frame(i, round(i * 1000 / fps)) for i in range(count)]
    frames = _encode_all(_encoder(codec, width, height, fps, bitrate, gop=count), images)
    intra = _encode_all(_encoder(codec, width, height, fps, bitrate, gop=1), images)
    if len(frames) != count or len(intra) != count or not frames[0].keyframe:
        raise ValueError(f"{codec} encoder gave {len(frames)}/{len(intra)} frames for {count}")
    return EncodedClip(codec, width, height, fps, tuple(frames), tuple(f.data for f in intra))
