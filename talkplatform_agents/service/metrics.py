"""``GET /metrics``: the service's own figures in Prometheus' text format.

- ``tp_bots_missing{room,bot}``: seconds that a bot a room should have has been missing
  (``service/reconciler.py``); a series disappears once the bot arrives or the users leave.
- ``tp_bot_dispatches_total``: dispatches the reconciler made.
- ``tp_bots_missing_warnings_total``: ``tp.bots.missing`` warnings sent to hosts.
- ``tp_bots_replaced_total``: bots that died in their rooms (their lease expired) and were
  replaced (``service/sweeper.py``); ``tp_bots_redispatched_total``: dispatches whose bot
  never came, made again.
- ``tp_asyncio_tasks``: live asyncio tasks on the service's event loop: flat unless
  something leaks them (``bench/soak.py`` watches it).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from talkplatform_agents.service.routes import Context

__all__ = ["router"]

router = APIRouter()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(ctx: Context) -> str:
    reconciler = ctx.reconciler
    lines = [
        "# HELP tp_bots_missing Seconds a bot that a room should have has been missing.",
        "# TYPE tp_bots_missing gauge",
    ]
    for (room, bot), seconds in sorted(reconciler.missing().items()):
        lines.append(f'tp_bots_missing{{room="{_label(room)}",bot="{_label(bot)}"}} {seconds:.1f}')
    lines += [
        "# HELP tp_bot_dispatches_total Bots the service dispatched into rooms missing them.",
        "# TYPE tp_bot_dispatches_total counter",
        f"tp_bot_dispatches_total {reconciler.stats.dispatches}",
        "# HELP tp_bots_missing_warnings_total tp.bots.missing warnings sent to hosts.",
        "# TYPE tp_bots_missing_warnings_total counter",
        f"tp_bots_missing_warnings_total {reconciler.stats.warnings}",
        "# HELP tp_bots_replaced_total Dead bots (expired leases) removed and dispatched anew.",
        "# TYPE tp_bots_replaced_total counter",
        f"tp_bots_replaced_total {ctx.sweeper.stats.replaced}",
        "# HELP tp_bots_redispatched_total Dispatches whose bot never came, made again.",
        "# TYPE tp_bots_redispatched_total counter",
        f"tp_bots_redispatched_total {ctx.sweeper.stats.redispatched}",
        "# HELP tp_asyncio_tasks Live asyncio tasks on the service's event loop.",
        "# TYPE tp_asyncio_tasks gauge",
        f"tp_asyncio_tasks {len(asyncio.all_tasks())}",
    ]
    return "\n".join(lines) + "\n"
