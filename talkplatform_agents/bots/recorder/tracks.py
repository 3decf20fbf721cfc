"""One received track, into its own file (and, for audio, into the meeting's mix).

A track's file starts when its first frame arrives (``started_at``); the session places
that moment on the recording's timeline (``offset_ns``). Audio is counted in samples
(``SourceClock``), so arrival jitter never moves it; video carries its arrival times.
Encoding runs on a worker thread: the event loop keeps receiving while a frame encodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from livekit import rtc

from talkplatform_agents.bots.recorder.audio_file import OpusFileWriter
from talkplatform_agents.bots.recorder.manifest import FileKind, FileResult
from talkplatform_agents.bots.recorder.mixer import AudioMixer
from talkplatform_agents.bots.recorder.timeline import SourceClock
from talkplatform_agents.bots.recorder.video_file import Vp8FileWriter

__all__ = ["TrackFile", "VideoLimits", "record_audio", "record_video"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000


VideoLayer = Literal["low", "medium", "high"]
LAYERS: dict[str, rtc.VideoQuality.ValueType] = {
    "low": rtc.VideoQuality.VIDEO_QUALITY_LOW,
    "medium": rtc.VideoQuality.VIDEO_QUALITY_MEDIUM,
    "high": rtc.VideoQuality.VIDEO_QUALITY_HIGH,
}


@dataclass(frozen=True)
class VideoLimits:
    """Which simulcast layer to receive, and a video file's size and rate at most: the
    received size, scaled down to fit."""

    layer: VideoLayer = "high"
    max_width: int = 640
    max_height: int = 360
    max_fps: int = 15

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"layer must be low, medium or high, not {self.layer!r}")
        if self.max_width < 16 or self.max_height < 16 or not 1 <= self.max_fps <= 60:
            raise ValueError(f"video limits out of range: {self}")


@dataclass
class TrackFile:
    """What the session knows of one file as it is written: its manifest entry."""

    result: FileResult
    path: Path


def _source(publication: rtc.RemoteTrackPublication) -> str:
    return str(rtc.TrackSource.Name(publication.source)).removeprefix("SOURCE_").lower()


def file_result(
    name: str,
    path: Path,
    kind: FileKind,
    publication: rtc.RemoteTrackPublication | None,
    participant: rtc.RemoteParticipant | None,
    started_ns: int,
    recording_start_ns: int,
    part: int,
) -> FileResult:
    return FileResult(
        filename=name,
        started_at=started_ns,
        location=str(path),
        track_sid=publication.sid if publication else "",
        identity=participant.identity if participant else "",
        name=participant.name if participant else "",
        kind=kind,
        source=_source(publication) if publication else "",
        offset_ns=max(started_ns - recording_start_ns, 0),
        part=part,
    )


def _finish(entry: TrackFile, ended_ns: int, duration_ns: int) -> None:
    entry.result.ended_at = ended_ns
    entry.result.duration = duration_ns
    entry.result.size = entry.path.stat().st_size if entry.path.exists() else 0


async def record_audio(
    track: rtc.Track,
    entry: TrackFile,
    mixer: AudioMixer,
    mix_start_ns: int,
    on_started: Callable[[TrackFile], None],
) -> None:
    """Write ``track`` to ``entry``'s Ogg/Opus file and into ``mixer`` (whose sample 0 is
    ``mix_start_ns``), until the track ends (or this task is cancelled); the entry then says
    how long the file is."""
    stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
    writer: OpusFileWriter | None = None
    key = entry.result.track_sid
    mix_clock = SourceClock(SAMPLE_RATE, mix_start_ns)
    file_clock: SourceClock | None = None
    try:
        async for event in stream:
            now = time.time_ns()
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            if writer is None:
                entry.result.started_at = now - len(samples) * 1_000_000_000 // SAMPLE_RATE
                writer = OpusFileWriter(entry.path, SAMPLE_RATE, 1)
                file_clock = SourceClock(SAMPLE_RATE, entry.result.started_at)
                mixer.add_source(key)
                on_started(entry)
            assert file_clock is not None
            writer.write(samples, file_clock.place(now, len(samples)))
            mixer.push(key, samples, mix_clock.place(now, len(samples)))
    finally:
        await stream.aclose()
        mixer.remove_source(key)
        if writer is not None:
            writer.close()
            _finish(entry, time.time_ns(), writer.duration_ns)


async def record_video(
    track: rtc.Track,
    entry: TrackFile,
    limits: VideoLimits,
    on_started: Callable[[TrackFile], None],
) -> None:
    """Write ``track`` to ``entry``'s WebM/VP8 file, at the first frame's size scaled to
    ``limits`` and at most ``limits.max_fps``, until the track ends or this is cancelled."""
    stream = rtc.VideoStream(track, capacity=2)
    writer: Vp8FileWriter | None = None
    gap_ns = 1_000_000_000 // max(limits.max_fps, 1)
    # Frames are due on a schedule, a gap apart, with a quarter gap of slack: a camera at
    # exactly max_fps, whose frames arrive with jitter, keeps its every frame (measured
    # against "since the last frame": 9.4 of 15 fps kept).
    due_ns = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for event in stream:
            now = time.time_ns()
            if writer is not None and now < due_ns - gap_ns // 4:
                continue  # over the rate: skip, never queue
            frame = event.frame
            if writer is None:
                width, height = _fit(frame.width, frame.height, limits)
                entry.result.started_at = now
                writer = Vp8FileWriter(entry.path, width, height, limits.max_fps)
                on_started(entry)
            due_ns = max(due_ns, now) + gap_ns
            rgb = frame.convert(rtc.VideoBufferType.RGB24)
            pixels = np.frombuffer(rgb.data, dtype=np.uint8).reshape(rgb.height, rgb.width, 3)
            pts_ms = (now - entry.result.started_at) // 1_000_000
            writing = asyncio.ensure_future(asyncio.to_thread(writer.write, pixels, pts_ms))
            await asyncio.shield(writing)
    finally:
        await stream.aclose()
        if writing is not None and not writing.done():
            # Cancelled mid-encode: the encoder's thread finishes its frame before the
            # file is closed under it.
            with contextlib.suppress(Exception):
                await writing
        if writer is not None:
            writer.close()
            _finish(entry, time.time_ns(), writer.duration_ns)


def _fit(width: int, height: int, limits: VideoLimits) -> tuple[int, int]:
    scale = min(1.0, limits.max_width / max(width, 1), limits.max_height / max(height, 1))
    return max(16, int(width * scale) // 2 * 2), max(16, int(height * scale) // 2 * 2)
