"""What a load run is asked to do: rooms, participants, pacing and media, validated up front
so that a bad option fails before anything joins."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Codec",
    "Decode",
    "Layout",
    "LoadSpec",
    "MediaOptions",
    "parse_duration",
    "parse_ramp",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}
_RAMP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min))?\s*$")


class Codec(enum.StrEnum):
    VP8 = "vp8"
    H264 = "h264"


class Decode(enum.StrEnum):
    """Which subscribers decode what they receive. A decoding subscriber is a livekit.rtc
    client: latency from the frames' barcodes, the pictures checked (the screen share's
    readability), the tone's markers. The others are light clients that count RTP without
    decoding: join, first frame, bitrate, loss, jitter, freezes, capture-to-arrival latency
    from the senders' RTCP clocks, received sizes from key frame headers. No metric of a
    light run needs pixels, so by default nobody decodes."""

    NONE = "none"  # every subscriber light
    SAMPLE = "sample"  # the first subscriber of each room decodes; the rest are light
    ALL = "all"  # every subscriber decodes (the injector's cost grows with each)


class Layout(enum.StrEnum):
    """What a subscriber's screen shows: one speaker large (the others as thumbnails), or a
    grid of equal tiles. It decides the simulcast layer each subscriber requests."""

    SPEAKER = "speaker"
    GRID = "grid"


def parse_duration(text: str) -> float:
    """Seconds from '60s', '500ms', '2m', '1h' or a bare number of seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"bad duration {text!r}: use e.g. 60s, 500ms, 2m")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_ramp(text: str) -> float:
    """Joins per second from '5/s', '30/m' or a bare number per second; 0 means all at once."""
    match = _RAMP.match(text)
    if match is None:
        raise ValueError(f"bad ramp {text!r}: use e.g. 5/s or 30/m")
    rate = float(match.group(1))
    return rate / 60 if match.group(2) in ("m", "min") else rate


@dataclass(frozen=True)
class MediaOptions:
    """What each publisher sends and how each subscriber watches."""

    codec: Codec = Codec.VP8
    simulcast: bool = True
    pre_encoded: bool = False
    width: int = 1280
    height: int = 720
    fps: int = 30
    max_bitrate: int = 1_700_000  # the top layer's cap, as LiveKit's 720p preset
    audio: bool = True
    # Decode the tone's markers at every subscriber: a Goertzel bank per track every 10 ms,
    # the costliest part of a subscriber; audio loss and jitter come from WebRTC stats anyway.
    audio_markers: bool = False
    screen_share: bool = False  # the first publisher of each room also shares a screen
    screen_width: int = 1920
    screen_height: int = 1080
    screen_fps: int = 5
    layout: Layout = Layout.SPEAKER
    switch_layers: bool = True  # each subscriber verifies LOW/MEDIUM/HIGH on one track
    switch_timeout_s: float = 10.0
    decode: Decode = Decode.NONE
    video: bool = True  # False: audio-only publishers
    # > 0: publishers take turns being loud for this long each (the others stay quiet), so
    # the SFU's speaker detection and a speaker layout have something to follow.
    speaker_turn_s: float = 0.0
    # Where pre-encoded clips are kept between runs (None: encode every run, keep nothing).
    clip_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.pre_encoded and self.screen_share:
            raise ValueError("--screen-share needs live publishers: drop --pre-encoded")
        if not self.video and not self.audio:
            raise ValueError("publishers need video or audio: not both --no-video and --no-audio")
        if self.speaker_turn_s < 0 or (0 < self.speaker_turn_s < 0.5):
            turn = self.speaker_turn_s
            raise ValueError(f"speaker turns must be 0 (off) or >= 0.5 s, got {turn}")
        if self.speaker_turn_s and not self.audio:
            raise ValueError("simulated speakers need audio: drop --no-audio")
        for name, w, h in (
            ("video", self.width, self.height),
            ("screen", self.screen_width, self.screen_height),
        ):
            if w < 128 or h < 72 or w % 2 or h % 2:
                raise ValueError(f"{name} size {w}x{h}: need even sizes of at least 128x72")
        if not 1 <= self.fps <= 60 or not 1 <= self.screen_fps <= 30:
            raise ValueError(f"fps {self.fps} / screen fps {self.screen_fps} out of range")
        if self.max_bitrate < 50_000:
            raise ValueError(f"max bitrate {self.max_bitrate} bps is too low (min 50000)")


@dataclass(frozen=True)
class LoadSpec:
    url: str
    rooms: int = 1
    publishers: int = 1
    subscribers: int = 1
    duration_s: float = 60.0
    ramp_per_s: float = 5.0  # joins per second over the whole run; 0: all at once
    processes: int = 0  # 0: one per core
    room_prefix: str = "load"
    connect_timeout_s: float = 10.0
    media: MediaOptions = field(default_factory=MediaOptions)

    def __post_init__(self) -> None:
        if not self.url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with ws://, wss://, http:// or https://")
        if self.rooms < 1:
            raise ValueError(f"rooms must be at least 1, got {self.rooms}")
        if self.publishers < 0 or self.subscribers < 0 or self.publishers + self.subscribers < 1:
            raise ValueError("need at least one publisher or subscriber per room")
        if self.publishers > 15:
            raise ValueError("at most 15 publishers per room (the audio marker tag is 4 bits)")
        if self.duration_s <= 0:
            raise ValueError(f"duration must be positive, got {self.duration_s}s")
        if self.ramp_per_s < 0:
            raise ValueError(f"ramp must be >= 0 joins/s, got {self.ramp_per_s}")
        if self.processes < 0:
            raise ValueError(f"processes must be >= 0, got {self.processes}")
        if not 1 <= self.connect_timeout_s <= 120:
            raise ValueError(f"connect timeout must be 1..120 s, got {self.connect_timeout_s}")

    @property
    def participants(self) -> int:
        return self.rooms * (self.publishers + self.subscribers)
