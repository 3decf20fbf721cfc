"""Sample positions on a recording's timeline, from when each audio frame arrived.

A received track delivers frames at the receiver's real-time rate, so counting samples is
exact and free of jitter; arrival times are not (a busy event loop delivers frames late, in
bursts). ``SourceClock`` therefore counts samples and looks at the arrival time only to
find a real break: when the count and the clock disagree by more than ``gap_ms`` (a track
that stopped and resumed, or a stall long enough to matter), it jumps to the clock.
Pure integer arithmetic: no drift however long the meeting.
"""

from __future__ import annotations

__all__ = ["SourceClock", "ns_to_samples"]


def ns_to_samples(ns: int, sample_rate: int) -> int:
    return ns * sample_rate // 1_000_000_000


class SourceClock:
    """Gives each frame of one source its position in samples from ``origin_ns`` (the
    recording's or the file's start, on the clock ``arrival_ns`` comes from)."""

    def __init__(self, sample_rate: int, origin_ns: int, gap_ms: int = 500) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if gap_ms <= 0:
            raise ValueError(f"gap_ms must be positive, got {gap_ms}")
        self.sample_rate = sample_rate
        self.origin_ns = origin_ns
        self.resyncs = 0  # times the count jumped to the clock
        self._gap = sample_rate * gap_ms // 1000
        self._next: int | None = None

    def place(self, arrival_ns: int, samples: int) -> int:
        """The position of the first of ``samples`` samples that arrived at ``arrival_ns``
        (the frame ends when it arrives)."""
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        by_clock = max(0, ns_to_samples(arrival_ns - self.origin_ns, self.sample_rate) - samples)
        if self._next is None:
            pts = by_clock
        elif abs(by_clock - self._next) > self._gap:
            self.resyncs += 1
            pts = by_clock
        else:
            pts = self._next
        self._next = pts + samples
        return pts
