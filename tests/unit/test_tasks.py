"""TaskSet: every task named, every failure reported, everything cancelled and awaited."""

from __future__ import annotations

import asyncio
import logging

import pytest

from talkplatform_agents.tasks import TaskSet


async def _fail() -> None:
    raise ValueError("boom")


async def test_a_failure_goes_to_on_error_with_the_task_name() -> None:
    seen: list[tuple[str, BaseException]] = []
    tasks = TaskSet("room-1", lambda what, exc: seen.append((what, exc)))
    task = tasks.spawn(_fail(), "step")
    assert task is not None and task.get_name() == "room-1:step"
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
    assert [(what, str(exc)) for what, exc in seen] == [("step", "boom")]
    await tasks.aclose()


async def test_without_on_error_a_failure_is_logged_not_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("room-2")
    with caplog.at_level(logging.ERROR, logger="talkplatform_agents.tasks"):
        task = tasks.spawn(_fail(), "step")
        assert task is not None
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert any("[room-2] task step failed" in r.getMessage() for r in caplog.records)
    await tasks.aclose()


async def test_aclose_cancels_and_awaits_and_refuses_new_work() -> None:
    tasks = TaskSet("room-3")
    ended = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    tasks.spawn(forever(), "forever")
    await asyncio.sleep(0)
    assert len(tasks) == 1
    await tasks.aclose()
    assert ended.is_set() and len(tasks) == 0
    await tasks.aclose()  # idempotent

    ran = False

    async def late() -> None:
        nonlocal ran
        ran = True

    assert tasks.spawn(late(), "late") is None
    await asyncio.sleep(0)
    assert not ran


async def test_settle_lets_work_in_flight_finish() -> None:
    tasks = TaskSet("room-4")
    release = asyncio.Event()
    finished = False

    async def work() -> None:
        nonlocal finished
        await release.wait()
        finished = True

    tasks.spawn(work(), "work")
    asyncio.get_running_loop().call_soon(release.set)
    await tasks.settle(timeout_s=5)
    assert finished
    await tasks.aclose()
