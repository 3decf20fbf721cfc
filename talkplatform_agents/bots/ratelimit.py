"""Per-sender limits that every bot shares: token buckets, and the count of what they
refused (so that a flood is logged once in a while, never once a packet)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RateLimiter", "Refusals", "RpcLimits", "TokenBucket"]

_MAX_KEYS = 1024


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
        if len(self._buckets) > _MAX_KEYS:
            self._buckets = {k: b for k, b in self._buckets.items() if k == key or not b.full()}
        return bucket.take()


@dataclass
class Refusals:
    """What a limit refused, per key: ``add`` says when to log it (the first refusal, then
    at most every ``every_s``) and how many it covers."""

    every_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _counts: dict[str, int] = field(default_factory=dict, init=False)
    _logged_at: dict[str, float] = field(default_factory=dict, init=False)

    def add(self, key: str) -> int | None:
        """Count one refusal of ``key``; the refusals not yet logged when it is time to log
        them, else ``None``."""
        self._counts[key] = self._counts.get(key, 0) + 1
        now = self.clock()
        last = self._logged_at.get(key)
        if last is not None and now - last < self.every_s:
            return None
        if len(self._logged_at) > _MAX_KEYS:
            self._logged_at = {k: t for k, t in self._logged_at.items() if now - t < self.every_s}
            self._counts = {
                k: n for k, n in self._counts.items() if k == key or k in self._logged_at
            }
        self._logged_at[key] = now
        return self._counts.pop(key)


@dataclass(frozen=True)
class RpcLimits:
    """Per caller: ``per_second`` calls a second after a ``burst``, and at most
    ``in_flight`` unanswered at a time. Far above what a person's clicks make."""

    per_second: float = 10.0
    burst: int = 30
    in_flight: int = 8

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1 or self.in_flight < 1:
            raise ValueError(f"RPC limits must be positive, not {self}")
