"""One Ogg/Opus file: an audio track's recording, or the meeting's mixed audio.

Timestamps are sample positions from the file's start. Ogg/Opus cannot carry a gap in the
middle of a stream (RFC 7845 gives the granule position no way to jump), so a gap (a
muted track, frames that stopped) is written as digital silence, which Opus encodes in a
few bytes a frame. Samples that overlap ones already written are dropped and counted.
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

__all__ = ["OPUS_RATES", "OpusFileWriter"]

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_FRAME_MS = 20  # Opus's usual frame: what a 20 ms packetised WebRTC stream carries
_SILENCE_CHUNK_S = 1  # a long gap is filled a second at a time, never in one allocation

Pcm = npt.NDArray[np.int16]


class OpusFileWriter:
    """Encodes int16 PCM to an Ogg/Opus file at ``path``, flushing a page every ``page_ms``
    so that a killed process leaves a playable file missing at most about that much."""

    def __init__(
        self,
        path: Path | str,
        sample_rate: int = 48000,
        channels: int = 1,
        *,
        bitrate: int | None = None,
        page_ms: int = 1000,
    ) -> None:
        if sample_rate not in OPUS_RATES:
            raise ValueError(f"Opus needs a sample rate in {OPUS_RATES}, got {sample_rate}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        if not 20 <= page_ms <= 10_000:
            raise ValueError(f"page_ms must be in 20..10000, got {page_ms}")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.dropped_samples = 0  # overlapping samples not written
        self.silence_samples = 0  # silence written into gaps
        self._frame = sample_rate * _FRAME_MS // 1000
        self._layout = "mono" if channels == 1 else "stereo"
        self._time_base = Fraction(1, sample_rate)
        self._pending: Pcm = np.zeros((0, channels), dtype=np.int16)
        self._encoded = 0  # samples handed to the encoder
        self._closed = False
        self._failed: WriteFailed | None = None
        self._container: Any = open_output(self.path, "ogg", {"page_duration": str(page_ms * 1000)})
        self._stream: Any = self._container.add_stream(
            "libopus", rate=sample_rate, layout=self._layout
        )
        self._stream.bit_rate = bitrate or 32_000 * channels

    @property
    def position(self) -> int:
        """The next sample's position: every sample (and gap) taken so far."""
        return self._encoded + len(self._pending)

    @property
    def duration_ns(self) -> int:
        return self.position * 1_000_000_000 // self.sample_rate

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, samples: npt.NDArray[Any], pts_samples: int) -> None:
        """Places ``samples`` (int16, shape ``(n, channels)``, or ``(n,)`` for mono) at
        ``pts_samples`` from the file's start. A gap before it becomes silence; a part
        before ``position`` (already written) is dropped."""
        pcm = self._validate(samples)
        if pts_samples < 0:
            raise ValueError(f"pts_samples must be >= 0, got {pts_samples}")
        self.pad_to(pts_samples)
        overlap = self.position - pts_samples
        if overlap > 0:
            self.dropped_samples += min(overlap, len(pcm))
            pcm = pcm[overlap:]
        if len(pcm):
            self._append(pcm)

    def pad_to(self, pts_samples: int) -> None:
        """Silence up to ``pts_samples``: call it while a track is muted, so the file keeps
        growing with the meeting (and a kill loses no more than the page in memory)."""
        self._check_open()
        while (gap := pts_samples - self.position) > 0:
            n = min(gap, self.sample_rate * _SILENCE_CHUNK_S)
            self.silence_samples += n
            self._append(np.zeros((n, self.channels), dtype=np.int16))

    def close(self) -> None:
        """Encodes what is pending and finalises the file. Idempotent; after a write error it
        only releases the file (the error was raised already)."""
        if self._closed:
            return
        self._closed = True
        if self._failed is not None:
            close_quietly(self._container)
            return
        try:
            if len(self._pending):
                # libopus takes a short last frame; the muxer trims its padding on decode.
                self._encode_pcm(self._pending)
                self._pending = self._pending[:0]
            self._encode(None)
            guarded(self.path, self._container.close)
        except WriteFailed as exc:
            self._failed = exc
            close_quietly(self._container)
            raise

    def _validate(self, samples: npt.NDArray[Any]) -> Pcm:
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16:
            raise ValueError("samples must be an int16 numpy array")
        if samples.ndim == 1 and self.channels == 1:
            return samples.reshape(-1, 1)
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"samples must have shape (n, {self.channels}), got {samples.shape}")
        return samples

    def _check_open(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise ValueError(f"{self.path} is closed")

    def _append(self, pcm: Pcm) -> None:
        pending = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        whole = len(pending) - len(pending) % self._frame
        if whole:
            try:
                self._encode_pcm(pending[:whole])
            except WriteFailed as exc:
                self._failed = exc
                raise
        self._pending = np.ascontiguousarray(pending[whole:])

    def _encode_pcm(self, pcm: Pcm) -> None:
        for start in range(0, len(pcm), self._frame):
            chunk = np.ascontiguousarray(pcm[start : start + self._frame])
            frame = av.AudioFrame.from_ndarray(
                chunk.reshape(1, -1), format="s16", layout=self._layout
            )
            frame.sample_rate = self.sample_rate
            frame.pts = self._encoded
            frame.time_base = self._time_base
            self._encoded += len(chunk)
            self._encode(frame)

    def _encode(self, frame: Any) -> None:
        """Encodes ``frame`` (``None`` drains the encoder) and muxes what comes out."""
        packets = guarded(self.path, lambda: self._stream.encode(frame))
        for packet in packets:
            guarded(self.path, partial(self._container.mux, packet))
