"""Per-caller limits on a bot's RPCs: a token bucket and a cap on calls in flight, ahead of
every method (an ``rtc.RpcInterceptor``), so that one caller's flood is refused before it
reaches the store or livekit-server, and other callers are answered as usual.

A refused call gets ``RpcError`` 2429 (``lk/waiting.RPC_TOO_MANY_REQUESTS``: the HTTP
status "too many requests" plus 2000, as every other RPC error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from livekit import rtc
from livekit.rtc.rpc import IncomingRpcNext

from talkplatform_agents.bots.metrics import RPC_ERRORS
from talkplatform_agents.bots.ratelimit import RateLimiter, Refusals, RpcLimits
from talkplatform_agents.lk.waiting import RPC_TOO_MANY_REQUESTS

__all__ = ["CallerLimits", "RpcLimits"]

logger = logging.getLogger(__name__)


class CallerLimits(rtc.RpcInterceptor):
    """Add to a bot's local participant (``add_rpc_interceptor``) before it answers calls."""

    def __init__(
        self, tag: str, limits: RpcLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tag = tag
        self._limits = limits or RpcLimits()
        self._rate = RateLimiter(self._limits.per_second, self._limits.burst, clock)
        self._busy: dict[str, int] = {}
        self._refusals = Refusals(clock=clock)

    def busy(self, caller: str) -> int:
        """Calls of ``caller`` being answered now."""
        return self._busy.get(caller, 0)

    async def intercept_incoming(
        self, invocation: rtc.RpcInvocationData, next: IncomingRpcNext
    ) -> str | None:
        caller = invocation.caller_identity
        busy = self._busy.get(caller, 0)
        if busy >= self._limits.in_flight or not self._rate.allow(caller):
            if (count := self._refusals.add(caller)) is not None:
                logger.warning(
                    "[%s] %s calls too often: %d calls refused (%s...)",
                    self._tag,
                    caller,
                    count,
                    invocation.method,
                )
            # Any method name a caller sends gets here: never a label of its own.
            RPC_ERRORS.labels("(refused before any method)", str(RPC_TOO_MANY_REQUESTS)).inc()
            raise rtc.RpcError(
                RPC_TOO_MANY_REQUESTS, "too many calls: wait a moment, then call again"
            )
        self._busy[caller] = busy + 1
        try:
            return await next(invocation)
        finally:
            if (left := self._busy[caller] - 1) > 0:
                self._busy[caller] = left
            else:
                del self._busy[caller]
