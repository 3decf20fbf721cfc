"""``talkplatform-agents scheduler``: bots on time for scheduled meetings (UC-04). Opens
each occurrence's room SCHEDULER_LEAD_S before its start with its bots, starts the runs its
settings ask for, ends it SCHEDULER_GRACE_S after its end once only bots are left
(``calendar/scheduler.py``). Several may run on one store: each action runs once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from talkplatform_agents.config import Settings
from talkplatform_agents.logs import configure_logging

__all__ = ["register"]


def register(app: typer.Typer, load_settings: Callable[[], Settings], console: Console) -> None:
    @app.command("scheduler")
    def scheduler(
        tick: Annotated[
            float, typer.Option(min=0.1, max=3600, help="Seconds between passes.")
        ] = 15.0,
        once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
        heartbeat_file: Annotated[
            Path | None,
            typer.Option(help="Touched after each pass that succeeded (a health check's)."),
        ] = None,
    ) -> None:
        """Open scheduled meetings' rooms with their bots ahead of time, start their
        recordings and transcriptions, and end them after their end."""
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        ran = asyncio.run(_serve(settings, tick, once, heartbeat_file))
        if once:
            console.print(f"{ran} scheduled action(s) run")


async def _serve(settings: Settings, tick_s: float, once: bool, heartbeat: Path | None) -> int:
    from talkplatform_agents.service.context import ServiceContext
    from talkplatform_agents.service.schedule_ops import service_scheduler
    from talkplatform_agents.store import Database

    ctx = ServiceContext.from_settings(settings, Database(settings.database_url))
    try:
        scheduler = service_scheduler(ctx, settings, tick_s=tick_s)
        if once:
            return await scheduler.tick()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stopping.set)
        scheduler.start(heartbeat.touch if heartbeat is not None else None)
        try:
            await stopping.wait()
        finally:
            await scheduler.stop()
        return 0
    finally:
        await ctx.aclose()
