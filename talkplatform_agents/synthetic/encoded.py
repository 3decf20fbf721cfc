"""Media encoded once with PyAV, for publishers that send pre-encoded frames instead of
encoding every frame themselves: simulcast video layers of the test pattern, and the
marked tone as Opus.

Pure PyAV and numpy, no LiveKit. Video loops; each frame carries its clip index in the
barcode and its offset in the clip (ms) as the capture time, so a receiver can decode it
but cannot take latency from it: the capture time is fixed when the clip is made. The tone
keeps its markers, and each Opus frame says which markers start in it, so a sender can log
when each one leaves and receivers can take audio latency as with live audio.

With ``cache`` set, clips are read from and written to that directory (``clips.py``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from talkplatform_agents.synthetic.audio import SAMPLE_RATE, ToneConfig, ToneGenerator
from talkplatform_agents.synthetic.clips import (
    CLIP_FORMAT,
    AudioClip,
    ClipKey,
    EncodedClip,
    EncodedFrame,
    LayerSpec,
    OpusFrame,
    VideoClip,
    load_cached,
    save_cached,
)
from talkplatform_agents.synthetic.video import PatternGenerator

__all__ = [
    "OPUS_FRAME_MS",
    "QUIET_GAIN",
    "AudioClip",
    "EncodedClip",
    "EncodedFrame",
    "LayerSpec",
    "OpusFrame",
    "VideoClip",
    "encode_pattern_clip",
    "encode_tone_clip",
    "encode_video_clip",
    "simulcast_layers",
]

logger = logging.getLogger(__name__)

_ENCODERS = {"vp8": "libvpx", "h264": "libx264"}
# Share of the top layer's bitrate by downscale factor: LiveKit's 180p/360p/720p figures
# (about 150/600/2000 kbps) relative to the top.
_SHARES = {4: 0.075, 2: 0.3, 1: 1.0}
# The pattern alone is flat colour that compresses to ~350 kbps at 720p even at the lowest
# quantizer, far under a camera's bitrate. Fresh noise each frame (outside the barcode)
# gives the encoder something to spend the target on, as sensor noise does.
_NOISE = 12
_NOISE_SEED = 19
# VP8: cap a key frame at 3x an average frame, or the loop's first key frame takes a third
# of a 2 s clip's budget (WebRTC's encoder caps it the same way).
_VP8_OPTIONS = {
    "deadline": "realtime",
    "cpu-used": "8",
    "lag-in-frames": "0",
    "max-intra-rate": "300",
}
# forced-idr: a forced key frame is an IDR (with SPS and PPS), which a late decoder can
# start from.
_H264_OPTIONS = {
    "preset": "ultrafast",
    "tune": "zerolatency",
    "profile": "baseline",
    "forced-idr": "1",
}
_H264_SEI = 6

OPUS_FRAME_MS = 20
_OPUS_BITRATE = 32_000
# libopus looks 6.5 ms ahead: frame k decodes to input samples 312 earlier than it was fed.
_OPUS_LOOKAHEAD = 312
_OPUS_PREROLL_FRAMES = 10
# About -40 dB, the same as the live publishers' quiet gain: the tone falls to about
# -55 dBov, under the SFU's default speaking level (35, i.e. -35 dBov).
QUIET_GAIN = 0.01


def simulcast_layers(width: int, height: int, top_bitrate: int) -> tuple[LayerSpec, ...]:
    """The layers LiveKit would send for a ``width`` x ``height`` camera, low to high: three
    (1/4, 1/2, full) from a long side of 960 px, two (1/2, full) from 480, else one.
    Layers too small for the pattern's barcode (128x72) are left out."""
    if width < 128 or height < 72 or width % 2 or height % 2:
        raise ValueError(f"video size {width}x{height}: need even sizes of at least 128x72")
    if top_bitrate <= 0:
        raise ValueError(f"top bitrate must be positive, got {top_bitrate}")
    longest = max(width, height)
    scales = (4, 2, 1) if longest >= 960 else (2, 1) if longest >= 480 else (1,)
    layers = []
    for scale in scales:
        w, h = width // scale // 2 * 2, height // scale // 2 * 2
        if w >= 128 and h >= 72:
            layers.append(LayerSpec(w, h, max(round(top_bitrate * _SHARES[scale]), 1)))
    return tuple(layers)


def encode_video_clip(
    codec: str,
    layers: Sequence[LayerSpec],
    fps: int,
    seconds: float = 2.0,
    cache: Path | None = None,
) -> VideoClip:
    """``seconds`` of the moving test pattern in each of ``layers`` (low to high), read from
    ``cache`` when it holds them. Raises ValueError for bad parameters."""
    if codec not in _ENCODERS:
        raise ValueError(f"cannot pre-encode {codec!r}: use one of {sorted(_ENCODERS)}")
    if not 1 <= fps <= 120:
        raise ValueError(f"fps must be 1..120, got {fps}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"clip length must be positive seconds, got {seconds}")
    count = round(seconds * fps)
    if count < 1:
        raise ValueError(f"a clip of {seconds} s at {fps} fps makes no frames")
    if not 1 <= len(layers) <= 3:
        raise ValueError(f"need 1 to 3 layers (LiveKit's q/h/f), got {len(layers)}")
    areas = [layer.width * layer.height for layer in layers]
    if any(a >= b for a, b in itertools.pairwise(areas)):
        raise ValueError(f"layers must grow from low to high: {list(layers)}")
    key: ClipKey = {
        "kind": "video",
        "codec": codec,
        "fps": fps,
        "frames": count,
        "layers": [[layer.width, layer.height, layer.bitrate] for layer in layers],
        "noise": _NOISE,
        "format": CLIP_FORMAT,
    }
    if cache is not None:
        cached = load_cached(cache, key)
        if isinstance(cached, VideoClip):
            return cached
    started = time.process_time()
    clip = VideoClip(codec, fps, tuple(_encode_layer(codec, layer, fps, count) for layer in layers))
    logger.info(
        "[clips] encoded %s %s in %.2f s CPU: %s",
        codec,
        "/".join(f"{layer.height}p" for layer in layers),
        time.process_time() - started,
        ", ".join(f"{layer.bytes_per_second * 8 / 1000:.0f} kbps" for layer in clip.layers),
    )
    if cache is not None:
        save_cached(cache, key, clip)
    return clip


def encode_pattern_clip(
    codec: str, width: int, height: int, fps: int, seconds: float = 2.0, bitrate: int = 1_000_000
) -> EncodedClip:
    """One layer of the pattern, for a publisher without simulcast."""
    return encode_video_clip(codec, (LayerSpec(width, height, bitrate),), fps, seconds).layers[0]


def _images(width: int, height: int, fps: int, count: int) -> list[av.VideoFrame]:
    pattern = PatternGenerator(width, height)
    top = height // 18 * 4  # below the barcode's rows (and a row of margin)
    rng = np.random.default_rng(_NOISE_SEED)
    out = []
    for i in range(count):
        rgba = av.VideoFrame.from_ndarray(pattern.frame(i, round(i * 1000 / fps)), format="rgba")
        planes = rgba.reformat(format="yuv420p").to_ndarray()  # Y rows, then U and V
        noise = rng.integers(-_NOISE, _NOISE + 1, size=(height - top, width), dtype=np.int16)
        planes[top:height] = np.clip(planes[top:height] + noise, 0, 255)
        out.append(av.VideoFrame.from_ndarray(planes, format="yuv420p"))
    return out


def _encoder(codec: str, layer: LayerSpec, fps: int, gop: int) -> Any:
    # PyAV types create() as the generic context; this is a video encoder.
    ctx: Any = av.CodecContext.create(_ENCODERS[codec], "w")
    ctx.width, ctx.height = layer.width, layer.height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = layer.bitrate
    ctx.gop_size = gop
    ctx.max_b_frames = 0  # WebRTC sends no B-frames
    ctx.thread_count = 1  # one slice per picture, and the same bytes on any machine
    if codec == "vp8":
        ctx.options = dict(_VP8_OPTIONS)
    else:
        # A 250 ms VBV buffer, as a real-time sender keeps: without it the loop's first IDR
        # takes about a sixth of a 2 s clip's budget at 720p.
        vbv = {"maxrate": str(layer.bitrate), "bufsize": str(layer.bitrate // 4)}
        ctx.options = {**_H264_OPTIONS, **vbv}
    ctx.open()
    return ctx


def _encode_layer(codec: str, layer: LayerSpec, fps: int, count: int) -> EncodedClip:
    images = _images(layer.width, layer.height, fps, count)
    loop = _encoder(codec, layer, fps, count)
    frames: list[EncodedFrame] = []
    for pts, image in enumerate(images):
        image.pts = pts
        frames += _frames(codec, loop.encode(image))
    frames += _frames(codec, loop.encode(None))
    if len(frames) != count:
        raise RuntimeError(f"{codec} encoder gave {len(frames)} frames of {count}")
    if not frames[0].keyframe:
        raise RuntimeError(f"{codec} encoder did not start the loop with a key frame")
    return EncodedClip(codec, layer.width, layer.height, fps, tuple(frames))


def _frames(codec: str, packets: list[av.Packet[Any]]) -> list[EncodedFrame]:
    out = []
    for packet in packets:
        data = bytes(packet)
        if codec == "h264":
            data = _drop_sei(data)
        out.append(EncodedFrame(data, bool(packet.is_keyframe)))
    return out


def _drop_sei(data: bytes) -> bytes:
    """x264 puts a ~600-byte SEI with its settings in its first frame: no receiver needs it,
    and the loop would resend it every lap."""
    starts = []
    at = data.find(b"\x00\x00\x01")
    while at >= 0:
        starts.append(at + 3)
        at = data.find(b"\x00\x00\x01", at + 3)
    if not any(s < len(data) and data[s] & 0x1F == _H264_SEI for s in starts):
        return data
    kept = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        if start < len(data) and data[start] & 0x1F != _H264_SEI:
            # A 4-byte start code leaves its leading zero on the previous unit; drop it.
            kept.append(b"\x00\x00\x00\x01" + data[start:end].rstrip(b"\x00"))
    return b"".join(kept)


def encode_tone_clip(tag: int, seconds: float = 16.0, cache: Path | None = None) -> AudioClip:
    """``seconds`` of the marked tone with marker tag ``tag``, as 20 ms Opus frames, loud and
    quiet, read from ``cache`` when it holds them. The length must be a whole number of
    marker intervals, so the loop keeps the markers' cadence. Raises ValueError otherwise."""
    config = ToneConfig(tag=tag)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"clip length must be positive seconds, got {seconds}")
    intervals = seconds / config.interval_s
    if abs(intervals - round(intervals)) > 1e-9:
        raise ValueError(f"clip length {seconds} s is not a multiple of {config.interval_s} s")
    per_frame = SAMPLE_RATE * OPUS_FRAME_MS // 1000
    count = round(seconds * 1000) // OPUS_FRAME_MS
    key: ClipKey = {
        "kind": "audio",
        "codec": "opus",
        "tag": tag,
        "frames": count,
        "frame_ms": OPUS_FRAME_MS,
        "bitrate": _OPUS_BITRATE,
        "quiet_gain": QUIET_GAIN,
        "format": CLIP_FORMAT,
    }
    if cache is not None:
        cached = load_cached(cache, key)
        if isinstance(cached, AudioClip):
            return cached
    started = time.process_time()
    signal, starts = ToneGenerator(config).next_chunk(count * per_frame)
    markers: list[list[int]] = [[] for _ in range(count)]
    for seq, sample in starts:
        markers[sample // per_frame].append(seq)
    variants = []
    for gain, marked in ((1.0, True), (QUIET_GAIN, False)):
        x = signal * gain
        packets = _opus(x, count, per_frame)
        levels = [_level(x[k * per_frame : (k + 1) * per_frame]) for k in range(count)]
        variants.append(
            tuple(
                OpusFrame(data, level, tuple(seqs) if marked else ())
                for data, level, seqs in zip(packets, levels, markers, strict=True)
            )
        )
    loud, quiet = variants
    clip = AudioClip(tag, OPUS_FRAME_MS, loud, quiet)
    logger.info(
        "[clips] encoded tone tag %d (%.0f s) in %.2f s CPU",
        tag,
        seconds,
        time.process_time() - started,
    )
    if cache is not None:
        save_cached(cache, key, clip)
    return clip


def _opus(signal: npt.NDArray[np.float64], count: int, per_frame: int) -> list[bytes]:
    """Opus packets for ``signal`` as a loop: packet ``k`` decodes to frame ``k`` of it."""
    ctx: Any = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = SAMPLE_RATE
    ctx.layout = "mono"
    ctx.format = "flt"
    ctx.bit_rate = _OPUS_BITRATE
    # Constrained VBR holds the rate: plain VBR spends ~48 kbps on the tone's pure partials.
    ctx.options = {
        "application": "audio",
        "vbr": "constrained",
        "frame_duration": str(OPUS_FRAME_MS),
    }
    ctx.open()
    # Fed ahead by the encoder's lookahead, so packet k decodes to samples [k, k+1) frames;
    # and started on the loop's own tail, so the encoder's state at the loop's start is
    # what it will be when the loop comes round again.
    shifted = np.roll(signal, -_OPUS_LOOKAHEAD).astype(np.float32)
    preroll = min(_OPUS_PREROLL_FRAMES, count)
    fed = np.concatenate([shifted[(count - preroll) * per_frame :], shifted])
    packets: list[bytes] = []
    for k in range(preroll + count):
        frame = av.AudioFrame.from_ndarray(
            fed[None, k * per_frame : (k + 1) * per_frame], format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = k * per_frame
        packets += [bytes(p) for p in ctx.encode(frame)]
    if len(packets) != preroll + count:
        raise RuntimeError(f"opus encoder gave {len(packets)} packets for {preroll + count}")
    return packets[preroll:]


def _level(samples: npt.NDArray[np.float64]) -> int:
    """RFC 6464 level: the frame's RMS in -dBov (0 dBov = full scale), 127 for silence."""
    rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
    if rms <= 0:
        return 127
    return min(max(round(-20 * math.log10(rms)), 0), 127)
