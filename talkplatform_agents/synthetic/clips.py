"""Pre-encoded clips (simulcast video layers, Opus with tone markers) and their disk cache.

Encoding a 720p simulcast clip costs seconds of CPU; a load run needs it in every run, so
clips are kept on disk, keyed by every parameter that changes their bytes. No PyAV here:
reading a cached clip needs neither an encoder nor numpy.

A cache file is ``MAGIC``, a 4-byte big-endian header length, a JSON header (the format
version, the key, the clip's metadata and the length of each blob), the blobs back to back,
and a SHA-256 of everything before it. No pickle: a cache file is data, never code. Files
are written to a temporary name and renamed, so a reader never sees half a file; a file
that is damaged anyway is reported and encoded again, never raised to the caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkplatform_agents.errors import TalkPlatformError

__all__ = [
    "CLIP_FORMAT",
    "AudioClip",
    "ClipKey",
    "EncodedClip",
    "EncodedFrame",
    "LayerSpec",
    "OpusFrame",
    "VideoClip",
    "cache_file",
    "load_cached",
    "save_cached",
]

logger = logging.getLogger(__name__)

# Bump whenever the encoding changes (picture, encoder settings, layout of this file): old
# cache files then no longer match any key and are simply not read.
CLIP_FORMAT = 2
_MAGIC = b"TPCLIP\x00\x01"
_DIGEST = 32
_MAX_HEADER = 16 << 20

ClipKey = Mapping[str, str | int | float | bool | list[list[int]]]


@dataclass(frozen=True)
class LayerSpec:
    """One simulcast layer: its picture size and target bitrate (bits per second)."""

    width: int
    height: int
    bitrate: int

    def __post_init__(self) -> None:
        w, h = self.width, self.height
        # The test pattern's barcode needs cells of at least 4 px (PatternGenerator).
        if w < 128 or h < 72 or w % 2 or h % 2:
            raise ValueError(f"layer size {w}x{h}: need even sizes of at least 128x72")
        if self.bitrate <= 0:
            raise ValueError(f"layer bitrate must be positive, got {self.bitrate}")


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes
    keyframe: bool


@dataclass(frozen=True)
class EncodedClip:
    """One layer: a loop of frames whose first is its only key frame. A sender answers a
    key frame request by starting the loop again: every frame after it then references
    exactly the pictures the encoder coded it against."""

    codec: str  # vp8 or h264 (H.264 in Annex B, SPS and PPS before every key frame)
    width: int
    height: int
    fps: int
    frames: tuple[EncodedFrame, ...]

    @property
    def bytes_per_second(self) -> float:
        return sum(len(f.data) for f in self.frames) * self.fps / len(self.frames)


@dataclass(frozen=True)
class VideoClip:
    """Simulcast layers, low to high, on one timestamp grid: every layer has the same
    frame count at the same fps, so frame ``i`` of each layer shows the same moment."""

    codec: str
    fps: int
    layers: tuple[EncodedClip, ...]
    from_cache: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class OpusFrame:
    data: bytes
    level: int  # RFC 6464 audio level of the frame's input: -dBov, 0..127 (127 = silence)
    markers: tuple[int, ...]  # sequence numbers of the tone markers starting in this frame


@dataclass(frozen=True)
class AudioClip:
    """The marked tone as a loop of Opus frames, loud and quiet, frame for frame aligned so
    a sender can switch between them at any frame."""

    tag: int
    frame_ms: int
    loud: tuple[OpusFrame, ...]
    quiet: tuple[OpusFrame, ...]  # about 40 dB lower, under the SFU's speaking level
    from_cache: bool = field(default=False, compare=False)


class _Corrupt(TalkPlatformError):
    """A cache file that cannot be trusted; never leaves this module."""


def cache_file(directory: Path, key: ClipKey) -> Path:
    """Where the clip for ``key`` lives: a readable prefix and a digest of the whole key."""
    canonical = json.dumps(dict(key), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:20]
    label = "-".join(str(key[k]) for k in ("kind", "codec", "tag") if k in key)
    return directory / f"{label}-{digest}.clip"


def load_cached(directory: Path, key: ClipKey) -> VideoClip | AudioClip | None:
    """The clip cached for ``key``, or None when there is none or it cannot be read (a
    damaged file is logged with its path, and the caller encodes again)."""
    path = cache_file(directory, key)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("[clips] cannot read cached clip %s (%s): encoding again", path, exc)
        return None
    try:
        header, blobs = _unpack(raw)
        if header.get("key") != json.loads(json.dumps(dict(key))):
            raise _Corrupt("its key does not match its name")
        clip = _from_blobs(header, blobs)
    except _Corrupt as exc:
        logger.warning("[clips] cached clip %s is damaged (%s): encoding again", path, exc)
        return None
    logger.info("[clips] loaded %s (%d bytes)", path, len(raw))
    return dataclasses.replace(clip, from_cache=True)


def save_cached(directory: Path, key: ClipKey, clip: VideoClip | AudioClip) -> Path | None:
    """Write ``clip`` for ``key`` atomically; the path, or None when it cannot be written
    (logged: a cache that cannot be written costs time, never the run)."""
    path = cache_file(directory, key)
    meta, blobs = _to_blobs(clip)
    header = {"format": CLIP_FORMAT, "key": dict(key), **meta, "lengths": [len(b) for b in blobs]}
    text = json.dumps(header, separators=(",", ":")).encode()
    body = b"".join([_MAGIC, len(text).to_bytes(4, "big"), text, *blobs])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the cache from other users
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.write(hashlib.sha256(body).digest())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.warning("[clips] cannot write clip cache %s (%s): not cached", path, exc)
        return None
    logger.info("[clips] cached %s (%d bytes)", path, len(body) + _DIGEST)
    return path


def _unpack(raw: bytes) -> tuple[dict[str, Any], list[bytes]]:
    if len(raw) < len(_MAGIC) + 4 + _DIGEST or not raw.startswith(_MAGIC):
        raise _Corrupt("not a clip file, or truncated")
    body, digest = raw[:-_DIGEST], raw[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise _Corrupt("checksum mismatch: truncated or altered")
    start = len(_MAGIC) + 4
    size = int.from_bytes(body[len(_MAGIC) : start], "big")
    if size > min(_MAX_HEADER, len(body) - start):
        raise _Corrupt(f"header length {size} overruns the file")
    try:
        header = json.loads(body[start : start + size])
    except ValueError as exc:
        raise _Corrupt(f"bad header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != CLIP_FORMAT:
        raise _Corrupt("unknown format")
    lengths = header.get("lengths")
    if not isinstance(lengths, list) or not all(isinstance(n, int) and n >= 0 for n in lengths):
        raise _Corrupt("bad blob lengths")
    offset = start + size
    if offset + sum(lengths) != len(body):
        raise _Corrupt("blob lengths do not add up to the file")
    blobs = []
    for n in lengths:
        blobs.append(body[offset : offset + n])
        offset += n
    return header, blobs


def _to_blobs(clip: VideoClip | AudioClip) -> tuple[dict[str, Any], list[bytes]]:
    blobs: list[bytes] = []
    if isinstance(clip, VideoClip):
        layers = []
        for layer in clip.layers:
            layers.append(
                {
                    "width": layer.width,
                    "height": layer.height,
                    "key": [f.keyframe for f in layer.frames],
                }
            )
            blobs += [f.data for f in layer.frames]
        return {"kind": "video", "codec": clip.codec, "fps": clip.fps, "layers": layers}, blobs
    variants = {}
    for name, frames in (("loud", clip.loud), ("quiet", clip.quiet)):
        variants[name] = {
            "levels": [f.level for f in frames],
            "markers": [list(f.markers) for f in frames],
        }
        blobs += [f.data for f in frames]
    meta = {"kind": "audio", "tag": clip.tag, "frame_ms": clip.frame_ms, **variants}
    return meta, blobs


def _from_blobs(header: dict[str, Any], blobs: Sequence[bytes]) -> VideoClip | AudioClip:
    rest = iter(blobs)
    clip: VideoClip | AudioClip
    try:
        if header["kind"] == "video":
            clip = _video(header, rest)
        elif header["kind"] == "audio":
            clip = _audio(header, rest)
        else:
            raise _Corrupt(f"unknown kind {header['kind']!r}")
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        raise _Corrupt(f"bad metadata: {exc!r}") from exc
    if next(rest, None) is not None:
        raise _Corrupt("more blobs than its metadata names")
    return clip


def _video(header: dict[str, Any], blobs: Iterator[bytes]) -> VideoClip:
    codec, fps = str(header["codec"]), int(header["fps"])
    layers = []
    for meta in header["layers"]:
        flags = [bool(k) for k in meta["key"]]
        frames = tuple(EncodedFrame(next(blobs), key) for key in flags)
        layers.append(EncodedClip(codec, int(meta["width"]), int(meta["height"]), fps, frames))
    if not layers or any(not layer.frames for layer in layers):
        raise ValueError("a clip without frames")
    return VideoClip(codec, fps, tuple(layers))


def _audio(header: dict[str, Any], blobs: Iterator[bytes]) -> AudioClip:
    variants = []
    for name in ("loud", "quiet"):
        meta = header[name]
        levels, markers = meta["levels"], meta["markers"]
        if len(levels) != len(markers):
            raise ValueError(f"{name}: {len(levels)} levels for {len(markers)} frames")
        variants.append(
            tuple(
                OpusFrame(next(blobs), int(level), tuple(int(s) for s in seqs))
                for level, seqs in zip(levels, markers, strict=True)
            )
        )
    loud, quiet = variants
    if not loud or len(loud) != len(quiet):
        raise ValueError(f"{len(loud)} loud frames for {len(quiet)} quiet ones")
    return AudioClip(int(header["tag"]), int(header["frame_ms"]), loud, quiet)
