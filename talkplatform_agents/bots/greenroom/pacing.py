"""Pacing for the green room's image work: a one-item slot between the event loop and a
worker thread, and a governor that spaces costly work by what it costs. Pure: no LiveKit,
no event loop, unit-testable alone.

A camera sends frames at its own rate whatever the bot can afford. Work that falls behind
must skip frames, never queue them: a queue turns into preview delay that never recovers,
and the thread draining it competes with the event loop that answers RPCs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["FrameSchedule", "NewestSlot", "RateGovernor"]

T = TypeVar("T")


class NewestSlot(Generic[T]):
    """Hands the newest item from producers to one consumer. An item not yet taken is
    replaced by the next one (counted in ``replaced``), so the consumer never lags."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.replaced = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> bool:
        """Offer ``item``, replacing one not yet taken. False once closed (item dropped)."""
        with self._cond:
            if self._closed:
                return False
            if self._full:
                self.replaced += 1
            self._item, self._full = item, True
            self._cond.notify()
            return True

    def take(self, not_before: float = 0.0) -> T | None:
        """Block until there is an item and ``time.monotonic()`` has reached ``not_before``,
        then return the newest item; None once the slot is closed. Items put while it
        waits replace each other: a paced consumer gets the freshest one."""
        with self._cond:
            while not self._closed:
                wait = not_before - time.monotonic()
                if self._full and wait <= 0:
                    item, self._item, self._full = self._item, None, False
                    return item
                self._cond.wait(timeout=wait if wait > 0 else None)
            return None

    def close(self) -> None:
        """Wake the consumer with None and refuse further items. Idempotent."""
        with self._cond:
            self._closed = True
            self._item, self._full = None, False
            self._cond.notify_all()


@dataclass
class RateGovernor:
    """Spaces runs of a costly task so that they take about ``share`` of the wall clock,
    never more often than ``max_fps`` and never less often than ``min_fps``.

    Costs are wall-clock times: on a busy machine the same work takes longer, and the rate
    lowers itself; as the machine frees up, it climbs back. ``smoothing`` is the weight of
    the newest cost in the running average (1: the last cost alone).
    """

    max_fps: float = 15.0
    min_fps: float = 1.0
    share: float = 0.25
    smoothing: float = 0.3
    _cost_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.min_fps <= self.max_fps:
            raise ValueError(f"need 0 < min_fps <= max_fps, got {self.min_fps}, {self.max_fps}")
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share}")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")

    @property
    def cost_s(self) -> float | None:
        """The running average cost of one run, None before the first."""
        return self._cost_s

    @property
    def interval_s(self) -> float:
        """The current spacing between the starts of two runs."""
        if self._cost_s is None:
            return 1 / self.max_fps
        return min(max(self._cost_s / self.share, 1 / self.max_fps), 1 / self.min_fps)

    @property
    def fps(self) -> float:
        return 1 / self.interval_s

    def record(self, cost_s: float) -> None:
        if cost_s < 0:
            raise ValueError(f"a cost cannot be negative, got {cost_s}")
        if self._cost_s is None:
            self._cost_s = cost_s
        else:
            self._cost_s += self.smoothing * (cost_s - self._cost_s)

    def next_at(self, started: float, cost_s: float) -> float:
        """Record a run that began at ``started`` and took ``cost_s``; return when the next
        may begin (same clock as ``started``)."""
        self.record(cost_s)
        return started + self.interval_s


@dataclass
class FrameSchedule:
    """When the worker thread next has something due: a camera-check sample every
    ``sample_period_s``, and a shown (blurred or scaled) frame when the governor allows.
    The two are apart: however slowly blur runs, the check keeps its own rate (frozen video
    needs several samples in its window). Times are ``time.monotonic()``."""

    sample_period_s: float
    _next_sample: float = 0.0
    _next_show: float = 0.0

    def __post_init__(self) -> None:
        if self.sample_period_s <= 0:
            raise ValueError(f"the sample period must be positive, got {self.sample_period_s}")

    def due(self, now: float) -> tuple[bool, bool]:
        """(sample, show) for a frame taken at ``now``; a due sample counts as taken."""
        sample = now >= self._next_sample
        if sample:
            self._next_sample = now + self.sample_period_s
        return sample, now >= self._next_show

    def shown(self, next_show: float) -> None:
        """A frame was shown; the next may be at ``next_show`` (the governor's answer)."""
        self._next_show = next_show

    def wanted(self, now: float, showing: bool) -> bool:
        """Whether a frame taken at ``now`` has work due: asked by the event loop, so that
        frames with nothing due never wake the worker. Read from another thread than the
        one taking the frames, it may be a frame late, never wrong for long."""
        return now >= self.wake_at(showing)

    def wake_at(self, showing: bool) -> float:
        """When to take the next frame: the next sample, or sooner the next shown frame if
        frames need showing (``showing``: blur on, or the size differs from the preview's)."""
        return min(self._next_sample, self._next_show) if showing else self._next_sample
