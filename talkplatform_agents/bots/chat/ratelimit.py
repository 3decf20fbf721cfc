"""Token buckets, per sender."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; each accepted event spends one."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(
                f"a token bucket needs rate > 0 and burst >= 1, not {self.rate}/{self.burst}"
            )
        self._tokens = float(self.burst)
        self._at = self.clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def full(self) -> bool:
        now = self.clock()
        return self._tokens + (now - self._at) * self.rate >= self.burst


@dataclass
class RateLimiter:
    """One bucket per key; full buckets are forgotten so departed senders cost nothing."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict, init=False)

    def allow(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.clock)
        if len(self._buckets) > 1024:
            self._buckets = {k: b for k, b in self._buckets.items() if k == key or not b.full()}
        return bucket.take()
