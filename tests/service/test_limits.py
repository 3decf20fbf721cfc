"""The token service's abuse limits: token requests per user and per address, failed logins
per address; 429 with Retry-After and the JSON error body; bounded memory; the client
address behind trusted proxies only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from talkplatform_agents.config import RateLimit, Settings
from talkplatform_agents.service import create_app
from talkplatform_agents.service.limits import (
    FailureWindows,
    LimitOptions,
    ServiceLimits,
    TokenBuckets,
)

Auth = Callable[..., dict[str, str]]
GREENROOM = "/api/v1/greenroom/token"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Service:
    app: FastAPI
    http: httpx.AsyncClient
    clock: FakeClock


@asynccontextmanager
async def _service(settings: Settings, **update: object) -> AsyncIterator[Service]:
    """The service with some settings changed (by field name), on a clock of our own."""
    app = create_app(settings.model_copy(update=update))
    clock = FakeClock()
    app.state.limits.clock = clock
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as http,
    ):
        yield Service(app, http, clock)


def _rate_limited(reply: httpx.Response) -> int:
    assert reply.status_code == 429, reply.text
    error = reply.json()["error"]
    assert error["code"] == "rate_limited" and error["message"]
    retry_after = int(reply.headers["retry-after"])
    assert retry_after >= 1 and error["retryAfter"] == retry_after
    return retry_after


# The limiters themselves, on a clock of our own.


def test_a_bucket_allows_its_burst_then_refills() -> None:
    buckets = TokenBuckets(RateLimit(3, 60))
    for _ in range(3):
        assert buckets.wait_s("u", 0.0) == 0
        buckets.take("u", 0.0)
    assert buckets.wait_s("u", 0.0) == pytest.approx(20)  # one per 20 s
    assert buckets.wait_s("v", 0.0) == 0  # another key has its own
    assert buckets.wait_s("u", 20.0) == 0
    buckets.take("u", 20.0)
    assert buckets.wait_s("u", 20.0) > 0


def test_buckets_forget_idle_keys_and_stay_bounded() -> None:
    buckets = TokenBuckets(RateLimit(2, 10), max_keys=100)
    for i in range(50):
        buckets.take(f"k{i}", 0.0)
    buckets.take("late", 10.0)  # the others have refilled: nothing to remember
    assert len(buckets) == 1
    for i in range(1000):
        buckets.take(f"flood{i}", 11.0)
    assert len(buckets) == 100


def test_a_window_blocks_after_n_failures_until_the_oldest_leaves_it() -> None:
    window = FailureWindows(RateLimit(3, 60))
    assert not window.record("a", 0.0)
    assert not window.record("a", 10.0)
    assert window.blocked_s("a", 10.0) == 0
    assert window.record("a", 20.0)  # the third within 60 s
    assert window.blocked_s("a", 20.0) == pytest.approx(40)  # until the first is 60 s old
    assert window.blocked_s("b", 20.0) == 0
    assert window.blocked_s("a", 60.0) == 0
    assert window.record("a", 61.0)  # three again within the last 60 s: 10, 20, 61
    assert window.blocked_s("a", 61.0) == pytest.approx(9)
    assert window.blocked_s("a", 70.0) == 0


def test_windows_forget_old_failures_and_stay_bounded() -> None:
    window = FailureWindows(RateLimit(5, 60), max_keys=10)
    for i in range(100):
        window.record(f"a{i}", float(i))
    assert len(window) == 10
    window.record("late", 1000.0)
    assert len(window) == 1


def _limits(*proxies: str) -> ServiceLimits:
    return ServiceLimits(LimitOptions(trusted_proxies=proxies))


def _scope(peer: str, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    # No trusted proxies (the default): whatever the header says, the peer.
    assert _limits().client_address(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    behind = _limits("10.0.0.0/8", "::1")
    assert behind.client_address(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert behind.client_address(_scope("10.0.0.2", "198.51.100.1")) == "198.51.100.1"
    # A client's own X-Forwarded-For is to the left of what our proxies add: not believed.
    spoofed = _scope("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.3")
    assert behind.client_address(spoofed) == "198.51.100.1"
    assert behind.client_address(_scope("::1", "2001:db8::7")) == "2001:db8::7"
    assert behind.client_address(_scope("10.0.0.2", "not-an-ip")) == "10.0.0.2"
    assert behind.client_address(_scope("10.0.0.2")) == "10.0.0.2"
    assert behind.client_address({"type": "http", "headers": []}) == "unknown"


# Through the service.


async def test_token_requests_per_user(settings: Settings, auth: Auth) -> None:
    async with _service(settings, rate_limit_token_per_user=RateLimit(3, 60)) as service:
        for _ in range(3):
            assert (await service.http.post(GREENROOM, headers=auth("ann"))).status_code == 200
        refused = await service.http.post(GREENROOM, headers=auth("ann"))
        assert _rate_limited(refused) == 20
        assert "user" in refused.json()["error"]["message"]
        assert (await service.http.post(GREENROOM, headers=auth("bob"))).status_code == 200
        # The meeting token shares the user's quota.
        meeting = await service.http.post(
            "/api/v1/meetings", json={"title": "t"}, headers=auth("ann")
        )
        assert meeting.status_code == 201  # other routes are not limited
        body = {"meetingId": meeting.json()["id"]}
        token = "/api/v1/livekit/token"
        _rate_limited(await service.http.post(token, json=body, headers=auth("ann")))
        service.clock.now += 20
        reply = await service.http.post(token, json=body, headers=auth("ann"))
        assert reply.status_code == 200, reply.text


async def test_token_requests_per_address(settings: Settings, auth: Auth) -> None:
    limits = {"rate_limit_token_per_address": RateLimit(2, 60), "trusted_proxies": ["127.0.0.1"]}
    async with _service(settings, **limits) as service:
        post = service.http.post
        assert (await post(GREENROOM, headers=auth("a"))).status_code == 200
        assert (await post(GREENROOM, headers=auth("b"))).status_code == 200
        refused = await post(GREENROOM, headers=auth("c"))
        assert _rate_limited(refused) == 30 and "address" in refused.json()["error"]["message"]
        # Behind the trusted proxy (the test client's 127.0.0.1), each client its own.
        for user, client in [("d", "198.51.100.1"), ("e", "198.51.100.2")]:
            forwarded = {**auth(user), "X-Forwarded-For": client}
            assert (await post(GREENROOM, headers=forwarded)).status_code == 200


async def test_repeated_failed_logins_block_the_address(settings: Settings, auth: Auth) -> None:
    async with _service(settings, rate_limit_auth_failures=RateLimit(3, 60)) as service:
        http = service.http
        bad = {"Authorization": "Bearer forged"}
        for _ in range(3):
            assert (await http.get("/api/v1/meetings/x", headers=bad)).status_code == 401
        # Now everything from this address, a good login too, until the window passes.
        blocked = await http.post(GREENROOM, headers=auth())
        assert _rate_limited(blocked) == 60
        assert "failed logins" in blocked.json()["error"]["message"]
        assert (await http.get("/api/v1/meetings/x", headers=bad)).status_code == 429
        # Health, metrics and livekit-server's webhook are neither counted nor blocked.
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.post("/api/v1/livekit/webhook", content="{}")).status_code == 401
        service.clock.now += 59
        assert (await http.post(GREENROOM, headers=auth())).status_code == 429
        service.clock.now += 1
        assert (await http.post(GREENROOM, headers=auth())).status_code == 200


async def test_limits_off(settings: Settings, auth: Auth) -> None:
    off = {
        "rate_limit_token_per_user": RateLimit(0),
        "rate_limit_token_per_address": RateLimit(0),
        "rate_limit_auth_failures": RateLimit(0),
    }
    async with _service(settings, **off) as service:
        for _ in range(150):
            assert (await service.http.post(GREENROOM, headers=auth())).status_code == 200
            reply = await service.http.get("/api/v1/meetings/x")
            assert reply.status_code == 401


async def test_the_defaults_let_a_crowd_through(
    client: httpx.AsyncClient, settings: Settings, auth: Auth
) -> None:
    """One user rejoining 60 times at once and 300 users behind one address: well under the
    defaults (the suite, the benches and load runs never meet them)."""
    assert settings.rate_limit_token_per_user.enabled
    assert settings.rate_limit_token_per_address.enabled
    assert settings.rate_limit_auth_failures.enabled
    for user in ["ann"] * 60 + [f"u{i}" for i in range(300)]:
        assert (await client.post(GREENROOM, headers=auth(user))).status_code == 200
    for _ in range(50):
        assert (await client.get("/api/v1/meetings/x")).status_code == 401
