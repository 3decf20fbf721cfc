"""Tasks owned by one object: started by name, each failure reported once, and all of them
cancelled and awaited by ``aclose`` (which also refuses new ones from then on).

Callbacks from the SDK are synchronous and cannot await; the work they start still needs an
owner that ends it, or it outlives the room it works on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["TaskSet"]

logger = logging.getLogger(__name__)

OnError = Callable[[str, BaseException], None]


class TaskSet:
    """``name`` tags every task and every log line (a room name, say). A failed task goes to
    ``on_error``; without one it is logged, so that no exception is ever dropped."""

    def __init__(self, name: str, on_error: OnError | None = None) -> None:
        self._name = name
        self._on_error = on_error or self._log
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None] | None:
        """Run ``work`` as a task of this set and return it (to cancel it early); after
        ``aclose``, close it unrun and return None."""
        if self._closed:
            work.close()
            return None
        task = asyncio.create_task(work, name=f"{self._name}:{what}")
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._reap(done, what))
        return task

    def _reap(self, task: asyncio.Task[None], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            self._on_error(what, exc)

    def _log(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] task %s failed", self._name, what, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def settle(self, timeout_s: float) -> None:
        """Give the running tasks up to ``timeout_s`` to end on their own (so that work in
        flight, a query say, is not cut off in the middle); ``aclose`` cancels the rest."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self) -> None:
        """Cancel every task and wait for all of them to end. Idempotent."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
