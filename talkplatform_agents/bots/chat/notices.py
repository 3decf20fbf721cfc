"""Notices to a sender, throttled: a flood of refused messages must not become a flood of
notices. What is held back is counted and said in the next notice."""

from __future__ import annotations

import time
from collections.abc import Callable

from talkplatform_agents.bots.ratelimit import RateLimiter

__all__ = ["NoticeThrottle"]


class NoticeThrottle:
    def __init__(
        self, rate: float = 2.0, burst: int = 5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limiter = RateLimiter(rate, burst, clock)
        self._held: dict[str, int] = {}

    def admit(self, sender: str, text: str) -> str | None:
        """The notice to send now, or ``None`` when held back."""
        if not self._limiter.allow(sender):
            self._held[sender] = self._held.get(sender, 0) + 1
            return None
        held = self._held.pop(sender, 0)
        if held:
            return f"{text} ({held} more of your messages were refused meanwhile.)"
        return text

    def held(self, sender: str) -> int:
        return self._held.get(sender, 0)
