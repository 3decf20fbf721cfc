"""A test tone that carries numbered markers, and the streaming decoder that finds them.

Pure numpy, no LiveKit: unit-testable without a room.

The signal is a continuous base tone, interrupted every ``interval_s`` by a marker of four
FSK symbols, each ``SYMBOL_MS`` long: SYNC, the sender's 4-bit tag, then the high and low
nibble of an 8-bit sequence number. The tag and the low nibble use bank A, the high nibble
bank B, so two neighbouring symbols never share a frequency and the decoder can split them
without knowing where the receiver's frames fall. Every frequency is a multiple of 50 Hz:
a whole number of cycles in the decoder's 20 ms window, so a clean symbol lands in exactly
one Goertzel bin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from talkplatform_agents.dsp import as_float, level_dbfs

__all__ = [
    "SAMPLE_RATE",
    "MarkerDecoder",
    "MarkerDetection",
    "ToneConfig",
    "ToneGenerator",
    "level_dbfs",
]

SAMPLE_RATE = 48_000
SYMBOL_MS = 30
_WINDOW = SAMPLE_RATE // 50  # 20 ms: 50 Hz bins
_HOP = SAMPLE_RATE // 100  # 10 ms
_SYMBOL = SAMPLE_RATE * SYMBOL_MS // 1000
_BANK_A = tuple(800.0 + 100.0 * k for k in range(16))  # 800 .. 2300 Hz
_BANK_B = tuple(2400.0 + 100.0 * k for k in range(16))  # 2400 .. 3900 Hz
_SYNC_HZ = 4200.0
_FREQS = np.array([*_BANK_A, *_BANK_B, _SYNC_HZ])
_SYNC = 32
_NONE = -1
_BASE = -2
# A window counts as one symbol when that bin holds this share of its energy.
_PURITY = 0.5
# Quieter windows than this (about -60 dBFS) carry no symbol.
_SILENCE_POWER = 1e-6

Samples = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ToneConfig:
    base_hz: float = 440.0
    amplitude: float = 0.25  # about -15 dBFS RMS
    interval_s: float = 0.5
    tag: int = 0  # 0..15: whose markers these are

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 15:
            raise ValueError(f"tag must be 0..15, got {self.tag}")
        if self.interval_s * 1000 < 6 * SYMBOL_MS:
            raise ValueError(f"interval_s must leave room for a marker, got {self.interval_s}")
        if not 0 < self.amplitude <= 1:
            raise ValueError(f"amplitude must be in (0, 1], got {self.amplitude}")


@dataclass(frozen=True)
class MarkerDetection:
    tag: int
    seq: int
    sample: int  # position of the marker's start in the decoded stream


@dataclass
class ToneGenerator:
    """Produces the marked tone in chunks; tells the caller where each marker starts."""

    config: ToneConfig = field(default_factory=ToneConfig)
    _position: int = 0
    _phase: float = 0.0

    @property
    def position(self) -> int:
        return self._position

    def next_chunk(self, n: int) -> tuple[Samples, list[tuple[int, int]]]:
        """The next ``n`` samples, and ``(seq, sample)`` for each marker starting in them."""
        interval = round(self.config.interval_s * SAMPLE_RATE)
        positions = np.arange(self._position, self._position + n)
        index, offset = np.divmod(positions, interval)
        seq = index % 256
        freqs = np.full(n, self.config.base_hz)
        symbol = offset // _SYMBOL
        freqs[symbol == 0] = _SYNC_HZ
        freqs[symbol == 1] = _BANK_A[self.config.tag]
        high, low = symbol == 2, symbol == 3
        freqs[high] = np.asarray(_BANK_B)[seq[high] >> 4]
        freqs[low] = np.asarray(_BANK_A)[seq[low] & 0xF]
        starts = [
            (int(s), int(p)) for s, p in zip(seq[offset == 0], positions[offset == 0], strict=True)
        ]
        self._position += n
        # Continuous phase across symbol changes avoids clicks that smear energy over bins.
        phases = self._phase + np.cumsum(2 * np.pi * freqs / SAMPLE_RATE)
        self._phase = float(phases[-1] % (2 * np.pi))
        return self.config.amplitude * np.sin(phases), starts


@dataclass
class _Run:
    label: int
    start: int  # sample position of the first window with this label


class MarkerDecoder:
    """Streaming decoder: feed samples as they arrive, collect detections."""

    def __init__(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start = 0  # stream position of _buffer[0]
        self._runs: list[_Run] = []
        n = np.arange(_WINDOW)
        self._basis = np.exp(-2j * np.pi * np.outer(_FREQS, n) / SAMPLE_RATE)

    def feed(
        self, samples: npt.NDArray[np.floating] | npt.NDArray[np.integer]
    ) -> list[MarkerDetection]:
        self._buffer = np.concatenate([self._buffer, as_float(samples)])
        found: list[MarkerDetection] = []
        while self._buffer.size >= _WINDOW:
            label = self._classify(self._buffer[:_WINDOW])
            found.extend(self._push(label, self._buffer_start))
            self._buffer = self._buffer[_HOP:]
            self._buffer_start += _HOP
        return found

    def _classify(self, window: Samples) -> int:
        energy = float(np.dot(window, window))
        if energy / _WINDOW < _SILENCE_POWER:
            return _NONE
        power = np.abs(self._basis @ window) ** 2 * 2 / (_WINDOW * energy)
        best = int(np.argmax(power))
        if power[best] >= _PURITY:
            return best
        # Energy not in a marker bin at all: the base tone (or speech, or noise).
        return _BASE if float(np.max(power)) < 0.1 else _NONE

    def _push(self, label: int, position: int) -> Iterator[MarkerDetection]:
        if label == _NONE:
            return
        if self._runs and self._runs[-1].label == label:
            return
        self._runs.append(_Run(label, position))
        del self._runs[:-5]
        yield from self._match()

    def _match(self) -> Iterator[MarkerDetection]:
        # A marker is complete once a fifth, different symbol follows its last one.
        if len(self._runs) < 5:
            return
        sync, tag, high, low, _after = self._runs
        if sync.label != _SYNC:
            return
        if not (_in_bank_a(tag.label) and _in_bank_b(high.label) and _in_bank_a(low.label)):
            return
        seq = ((high.label - 16) << 4) | low.label
        yield MarkerDetection(tag=tag.label, seq=seq, sample=sync.start + _HOP // 2)


def _in_bank_a(label: int) -> bool:
    return 0 <= label < 16


def _in_bank_b(label: int) -> bool:
    return 16 <= label < 32
