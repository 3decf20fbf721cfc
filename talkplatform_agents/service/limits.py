"""Abuse limits of the token service, answered with 429, ``Retry-After`` and the service's
JSON error body (``rate_limited``):

- token requests (``POST /api/v1/livekit/token``, ``/api/v1/greenroom/token``), per user
  and per client address: token buckets (``RATE_LIMIT_TOKEN_PER_USER``,
  ``RATE_LIMIT_TOKEN_PER_ADDRESS``);
- failed logins (401s) per client address: past ``RATE_LIMIT_AUTH_FAILURES`` in a sliding
  window, the address gets 429 for every request (but health, metrics and livekit-server's
  webhook) until the window has room again.

The client address is the connection's peer, or, when that peer is one of
``TRUSTED_PROXIES``, what ``X-Forwarded-For`` says behind the trusted hops.

The counts live in this process's memory, bounded: a key idle for a whole period is
forgotten (its bucket would be full, its window empty), and past ``max_keys`` the least
recently seen go first. So with several service processes (uvicorn workers, replicas
behind a balancer) the limits are per process: N processes let up to N times as much
through. A limit of 0 is off.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talkplatform_agents.config import RateLimit, Settings
from talkplatform_agents.errors import TooManyRequests

__all__ = [
    "AuthFailureGuard",
    "FailureWindows",
    "LimitOptions",
    "ServiceLimits",
    "TokenBuckets",
    "charge_dial_out",
    "charge_note",
    "charge_token_request",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Paths the failed-login guard neither counts nor blocks: load balancers' and scrapers'
# probes, and livekit-server's webhook (signed with its own key, not a login), so that one
# abusive client behind a shared address cannot take the service out of rotation.
EXEMPT_PATHS = ("/healthz", "/metrics", "/api/v1/livekit/webhook")
MAX_KEYS = 100_000
OFF = RateLimit(0)
# A waiting guest's notes to the hosts, per user: each is a store read and a send through
# livekit-server (the lobby bot allows the same: 1/s, 5 at once).
NOTES_PER_USER = RateLimit(5, 5.0)


class TokenBuckets:
    """A token bucket per key: ``limit.count`` at once, refilled at ``limit.count`` per
    ``limit.period_s``."""

    def __init__(self, limit: RateLimit, max_keys: int = MAX_KEYS) -> None:
        self._capacity = float(limit.count)
        self._period_s = limit.period_s
        self._per_s = limit.count / limit.period_s
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may take one (0: now)."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self._per_s

    def take(self, key: str, now: float) -> None:
        self._buckets[key] = (self._tokens(key, now) - 1, now)
        self._buckets.move_to_end(key)
        self._evict(now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - at) * self._per_s)

    def _evict(self, now: float) -> None:
        # Oldest first; a bucket untouched for a whole period is full, as if never used.
        while self._buckets:
            _, at = next(iter(self._buckets.values()))
            if now - at < self._period_s and len(self._buckets) <= self._max_keys:
                return
            self._buckets.popitem(last=False)


class FailureWindows:
    """The times of each key's last ``limit.count`` failures: the key is blocked while all
    of them lie within ``limit.period_s``."""

    def __init__(self, limit: RateLimit, max_keys: int = MAX_KEYS) -> None:
        self._count = limit.count
        self._period_s = limit.period_s
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` is let through again (0: now)."""
        times = self._failures.get(key)
        if times is None or len(times) < self._count:
            return 0.0
        return max(0.0, times[0] + self._period_s - now)

    def record(self, key: str, now: float) -> bool:
        """Count a failure of ``key``; True when this one blocks it."""
        times = self._failures.pop(key, None) or deque(maxlen=self._count)
        times.append(now)
        self._failures[key] = times
        self._evict(now)
        return self.blocked_s(key, now) > 0

    def __len__(self) -> int:
        return len(self._failures)

    def _evict(self, now: float) -> None:
        # Oldest last failure first; one a whole period old leaves nothing in any window.
        while self._failures:
            times = next(iter(self._failures.values()))
            if now - times[-1] < self._period_s and len(self._failures) <= self._max_keys:
                return
            self._failures.popitem(last=False)


@dataclass(frozen=True)
class LimitOptions:
    token_per_user: RateLimit = OFF
    token_per_address: RateLimit = OFF
    auth_failures: RateLimit = OFF
    trusted_proxies: tuple[str, ...] = ()
    max_keys: int = MAX_KEYS
    notes_per_user: RateLimit = NOTES_PER_USER
    dial_outs_per_user: RateLimit = OFF

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitOptions:
        return cls(
            token_per_user=settings.rate_limit_token_per_user,
            token_per_address=settings.rate_limit_token_per_address,
            auth_failures=settings.rate_limit_auth_failures,
            trusted_proxies=tuple(settings.trusted_proxies),
            dial_outs_per_user=settings.rate_limit_dial_out_per_user,
        )


@dataclass
class ServiceLimits:
    """Every limit of one service process. ``clock`` is monotonic seconds."""

    options: LimitOptions
    clock: Clock = time.monotonic
    _proxies: tuple[IpNetwork, ...] = field(init=False)
    _per_user: TokenBuckets | None = field(init=False)
    _per_address: TokenBuckets | None = field(init=False)
    _failures: FailureWindows | None = field(init=False)
    _notes: TokenBuckets | None = field(init=False)
    _dial_outs: TokenBuckets | None = field(init=False)

    def __post_init__(self) -> None:
        options = self.options
        self._proxies = tuple(
            ipaddress.ip_network(p, strict=False) for p in options.trusted_proxies
        )
        self._per_user = _buckets(options.token_per_user, options.max_keys)
        self._per_address = _buckets(options.token_per_address, options.max_keys)
        self._notes = _buckets(options.notes_per_user, options.max_keys)
        self._dial_outs = _buckets(options.dial_outs_per_user, options.max_keys)
        self._failures = (
            FailureWindows(options.auth_failures, options.max_keys)
            if options.auth_failures.enabled
            else None
        )

    @property
    def guards_logins(self) -> bool:
        return self._failures is not None

    def client_address(self, scope: Scope) -> str:
        """The peer, or behind trusted proxies, the first untrusted hop of X-Forwarded-For
        (read from the right: what a client writes to the left of it is not to be
        believed)."""
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if not self._proxies or not self._trusted(address):
            return address
        forwarded = Headers(scope=scope).getlist("x-forwarded-for")
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        for hop in reversed(hops):
            if not hop or not self._trusted(address):
                break
            try:
                address = str(ipaddress.ip_address(hop))
            except ValueError:
                break  # not an address: trust nothing further left
        return address

    def token_request(self, user_id: str, address: str) -> None:
        """Charge one token request to the user and the address, or raise
        ``TooManyRequests`` (charging neither) when either is out."""
        now = self.clock()
        user_wait = self._per_user.wait_s(user_id, now) if self._per_user is not None else 0.0
        address_wait = (
            self._per_address.wait_s(address, now) if self._per_address is not None else 0.0
        )
        if user_wait > 0:
            raise TooManyRequests("too many token requests for this user", retry_after=user_wait)
        if address_wait > 0:
            logger.warning("token requests from %s over the limit", address)
            raise TooManyRequests(
                "too many token requests from this address", retry_after=address_wait
            )
        if self._per_user is not None:
            self._per_user.take(user_id, now)
        if self._per_address is not None:
            self._per_address.take(address, now)

    def note(self, user_id: str) -> None:
        """Charge one note to the hosts to the user, or raise ``TooManyRequests``."""
        self._charge(self._notes, user_id, "too many notes to the hosts; wait a moment")

    def dial_out(self, user_id: str) -> None:
        """Charge one call out (a paid phone call) to the user, or raise."""
        self._charge(self._dial_outs, user_id, "too many calls out by this user for now")

    def _charge(self, buckets: TokenBuckets | None, key: str, message: str) -> None:
        if buckets is None:
            return
        now = self.clock()
        if (wait := buckets.wait_s(key, now)) > 0:
            raise TooManyRequests(message, retry_after=wait)
        buckets.take(key, now)

    def login_blocked_s(self, address: str) -> float:
        return (
            self._failures.blocked_s(address, self.clock()) if self._failures is not None else 0.0
        )

    def login_failed(self, address: str) -> None:
        if self._failures is not None and self._failures.record(address, self.clock()):
            logger.warning(
                "%s blocked for %.0f s: %d failed logins within %.0f s",
                address,
                self._failures.blocked_s(address, self.clock()),
                self.options.auth_failures.count,
                self.options.auth_failures.period_s,
            )

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._proxies)


def _buckets(limit: RateLimit, max_keys: int) -> TokenBuckets | None:
    return TokenBuckets(limit, max_keys) if limit.enabled else None


def charge_token_request(request: Request, user_id: str) -> None:
    """For the token routes, after authentication: charge the request or raise 429."""
    limits: ServiceLimits = request.app.state.limits
    limits.token_request(user_id, limits.client_address(request.scope))


def charge_note(request: Request, user_id: str) -> None:
    """For a waiting guest's note to the hosts, after authentication: charge it or 429."""
    limits: ServiceLimits = request.app.state.limits
    limits.note(user_id)


def charge_dial_out(request: Request, user_id: str) -> None:
    """For a call out, after authentication: charge it or 429."""
    limits: ServiceLimits = request.app.state.limits
    limits.dial_out(user_id)


class AuthFailureGuard:
    """ASGI middleware: counts the 401s each client address gets, and answers 429 to an
    address past its limit, before any work."""

    def __init__(self, app: ASGIApp, limits: ServiceLimits) -> None:
        self._app = app
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT_PATHS):
            await self._app(scope, receive, send)
            return
        address = self._limits.client_address(scope)
        blocked_s = self._limits.login_blocked_s(address)
        if blocked_s > 0:
            error = TooManyRequests("too many failed logins from this address",
                                    retry_after=blocked_s)  # fmt: skip
            reply = JSONResponse(
                error.body(), error.status, headers={"Retry-After": str(error.retry_after)}
            )
            await reply(scope, receive, send)
            return

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self._limits.login_failed(address)
            await send(message)

        await self._app(scope, receive, observed)
