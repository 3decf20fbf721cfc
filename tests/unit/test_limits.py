"""The bots' per-sender limits as pure logic: refusal counts for logging, and the
per-caller RPC limit (a bucket and a cap on calls in flight) ahead of every method."""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc

from talkplatform_agents.bots.ratelimit import Refusals, RpcLimits
from talkplatform_agents.bots.rpc_limits import CallerLimits
from talkplatform_agents.lk import chat, greenroom, waiting


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_logged_at_first_then_in_summaries() -> None:
    clock = Clock()
    refusals = Refusals(every_s=10, clock=clock)
    assert refusals.add("ann") == 1
    assert [refusals.add("ann") for _ in range(99)] == [None] * 99
    assert refusals.add("bob") == 1  # each sender on their own
    clock.now = 10
    assert refusals.add("ann") == 100  # the 99 held back, and this one


def test_every_bot_answers_too_many_calls_with_one_code() -> None:
    assert waiting.RPC_TOO_MANY_REQUESTS == chat.TOO_MANY_REQUESTS == 2429
    assert greenroom.TOO_MANY_REQUESTS == 2429
    with pytest.raises(ValueError, match="positive"):
        RpcLimits(in_flight=0)


def _call(caller: str, method: str = "m") -> rtc.RpcInvocationData:
    return rtc.RpcInvocationData("req", caller, "{}", 10.0, method=method)


async def test_a_caller_over_the_bucket_is_refused_and_others_answered() -> None:
    clock = Clock()
    limits = CallerLimits("room", RpcLimits(per_second=2, burst=3, in_flight=10), clock)

    async def answer(invocation: rtc.RpcInvocationData) -> str:
        return f"ok {invocation.caller_identity}"

    assert [await limits.intercept_incoming(_call("ann"), answer) for _ in range(3)] == [
        "ok ann"
    ] * 3
    with pytest.raises(rtc.RpcError) as refused:
        await limits.intercept_incoming(_call("ann"), answer)
    assert refused.value.code == 2429 and "too many" in refused.value.message
    assert await limits.intercept_incoming(_call("host"), answer) == "ok host"
    clock.now = 0.5  # one more token
    assert await limits.intercept_incoming(_call("ann"), answer) == "ok ann"


async def test_calls_in_flight_are_capped_per_caller_and_freed_when_answered() -> None:
    limits = CallerLimits("room", RpcLimits(per_second=100, burst=100, in_flight=2))
    release = asyncio.Event()

    async def slow(_: rtc.RpcInvocationData) -> str:
        await release.wait()
        return "done"

    async def failing(_: rtc.RpcInvocationData) -> str:
        raise rtc.RpcError(2400, "bad")

    held = [asyncio.create_task(limits.intercept_incoming(_call("ann"), slow)) for _ in range(2)]
    await asyncio.sleep(0)
    assert limits.busy("ann") == 2
    with pytest.raises(rtc.RpcError) as refused:
        await limits.intercept_incoming(_call("ann"), slow)
    assert refused.value.code == 2429
    with pytest.raises(rtc.RpcError) as bad:  # another caller is not held up by ann
        await limits.intercept_incoming(_call("bob"), failing)
    assert bad.value.code == 2400 and limits.busy("bob") == 0
    release.set()
    assert await asyncio.gather(*held) == ["done", "done"]
    assert limits.busy("ann") == 0
    assert await limits.intercept_incoming(_call("ann"), slow) == "done"
