"""Every participant's audio summed on one timeline: the meeting's mixed recording.

Sources place their samples at positions they choose (``SourceClock`` gives them); the
mixer adds them into one int32 buffer (so no sum overflows) and hands out fixed blocks,
clipped to int16, once every source has passed a block or the block is ``max_latency_ms``
behind the caller's clock. Nobody speaking is silence; a source that stalls holds the
mix back no longer than ``max_latency_ms``; its samples that come after their block went
out are dropped and counted. Positions are integers, so an hour is exactly an hour.
Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["AudioMixer", "MixerConfig", "MixerStats"]

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class MixerConfig:
    sample_rate: int = 48_000
    channels: int = 1
    block_ms: int = 20
    max_latency_ms: int = 200
    # Samples placed further ahead of the oldest unsent block are dropped: a wild
    # position must not grow the buffer without bound.
    horizon_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or (self.sample_rate * self.block_ms) % 1000:
            raise ValueError(
                f"block_ms={self.block_ms} is not a whole number of samples at "
                f"{self.sample_rate} Hz"
            )
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {self.channels}")
        if self.block_ms <= 0 or self.max_latency_ms < 0:
            raise ValueError("block_ms must be positive and max_latency_ms not negative")
        if self.horizon_ms < self.max_latency_ms + self.block_ms:
            raise ValueError("horizon_ms must exceed max_latency_ms + block_ms")

    @property
    def block(self) -> int:
        return self.sample_rate * self.block_ms // 1000


@dataclass
class MixerStats:
    late_samples: int = 0  # arrived after their block was sent
    overlap_samples: int = 0  # a source placed them where it had placed samples already
    early_samples: int = 0  # placed beyond the horizon
    clipped_samples: int = 0  # sums that did not fit int16


class AudioMixer:
    """Mixes sources (by key) onto one timeline starting at position 0."""

    def __init__(self, config: MixerConfig | None = None) -> None:
        self.config = config or MixerConfig()
        self.stats = MixerStats()
        self._block = self.config.block
        self._latency = self.config.sample_rate * self.config.max_latency_ms // 1000
        self._horizon = self.config.sample_rate * self.config.horizon_ms // 1000
        self._sent = 0  # position of the first sample not yet handed out
        self._acc = np.zeros((self._horizon + self._block, self.config.channels), np.int32)
        self._head = 0  # index in _acc of position _sent
        self._sources: dict[str, int] = {}  # key -> position after its last sample

    @property
    def position(self) -> int:
        """Samples handed out so far: the next block starts here."""
        return self._sent

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    def add_source(self, key: str) -> None:
        """Makes the mix wait for ``key`` (up to the latency bound) from now on."""
        self._sources.setdefault(key, self._sent)

    def remove_source(self, key: str) -> None:
        """The mix stops waiting for ``key``; what it placed stays in."""
        self._sources.pop(key, None)

    def push(self, key: str, samples: npt.NDArray[Any], pts_samples: int) -> None:
        """Adds ``samples`` (int16, ``(n, channels)`` or ``(n,)`` for mono) at
        ``pts_samples``. An unknown ``key`` is added first."""
        pcm = self._validate(samples)
        if pts_samples < 0:
            raise ValueError(f"pts_samples must be >= 0, got {pts_samples}")
        self.add_source(key)
        end = pts_samples + len(pcm)
        start = max(pts_samples, self._sources[key])
        self.stats.overlap_samples += min(len(pcm), start - pts_samples)
        self._sources[key] = max(self._sources[key], end)
        if start < self._sent:
            self.stats.late_samples += min(end, self._sent) - start
            start = self._sent
        stop = min(end, self._sent + self._horizon)
        if end > stop:
            self.stats.early_samples += end - max(stop, start)
        if start >= stop:
            return
        self._ensure(stop - self._sent)
        offset = self._head + start - self._sent
        self._acc[offset : offset + stop - start] += pcm[start - pts_samples : stop - pts_samples]

    def pull(self, now_samples: int) -> list[tuple[int, Pcm]]:
        """The blocks ready at ``now_samples`` (the caller's clock, as a timeline
        position): ``(position, int16 block of shape (block, channels))`` in order."""
        out: list[tuple[int, Pcm]] = []
        while True:
            end = self._sent + self._block
            heard = bool(self._sources) and all(p >= end for p in self._sources.values())
            if not heard and now_samples - end < self._latency:
                return out
            out.append((self._sent, self._take()))

    def drain(self) -> list[tuple[int, Pcm]]:
        """Every block up to the last sample placed (the end of a recording)."""
        last = max(self._sources.values(), default=self._sent)
        out: list[tuple[int, Pcm]] = []
        while self._sent < last:
            out.append((self._sent, self._take()))
        return out

    def _take(self) -> Pcm:
        self._ensure(self._block)
        chunk = self._acc[self._head : self._head + self._block]
        clipped = np.clip(chunk, -32768, 32767)
        self.stats.clipped_samples += int(np.count_nonzero(clipped != chunk))
        block = clipped.astype(np.int16)
        chunk[:] = 0
        self._head += self._block
        self._sent += self._block
        return block

    def _ensure(self, span: int) -> None:
        """Room in ``_acc`` for ``span`` samples from the first unsent one: slides the unsent
        part to the front when the end is near (``span`` never exceeds the horizon)."""
        if self._head + span <= len(self._acc):
            return
        live = self._acc[self._head :].copy()
        self._acc[:] = 0
        self._acc[: len(live)] = live
        self._head = 0

    def _validate(self, samples: npt.NDArray[Any]) -> Pcm:
        channels = self.config.channels
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16:
            raise ValueError("samples must be an int16 numpy array")
        if samples.ndim == 1 and channels == 1:
            return samples.reshape(-1, 1)
        if samples.ndim != 2 or samples.shape[1] != channels:
            raise ValueError(f"samples must have shape (n, {channels}), got {samples.shape}")
        return samples
