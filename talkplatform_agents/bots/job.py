"""What a bot's session sees of its job: its room, a way to join it, a way to leave.

Two runtimes run bot sessions: the room host (``bots/room_host.py``: many rooms on one event
loop, ours) and livekit-agents' own job processes (``bots/agents_job.py``: a process per
job). A session is written once, against this protocol, and runs under either.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from livekit import rtc

__all__ = ["BotJob", "ShutdownCallback"]

ShutdownCallback = Callable[[], Coroutine[Any, Any, None]]


class BotJob(Protocol):
    @property
    def room_name(self) -> str:
        """The room the job is for: known before joining it."""
        ...

    @property
    def room(self) -> rtc.Room:
        """The room, joined once ``connect`` returned."""
        ...

    async def connect(self, *, subscribe: bool = False) -> None:
        """Join the room (subscribing to every track, or to none)."""
        ...

    def shutdown(self, reason: str = "") -> None:
        """End the job: its shutdown callbacks run, then the bot leaves the room."""
        ...

    def add_shutdown_callback(self, callback: ShutdownCallback) -> None:
        """Run ``callback`` when the job ends, before the bot leaves the room."""
        ...
