"""Meeting bots: one module per bot, and the worker that runs them."""

from talkplatform_agents.bots.registry import BOTS, BotOptions, BotSpec, resolve
from talkplatform_agents.bots.worker import WorkerError, WorkerOptions, run_workers

__all__ = [
    "BOTS",
    "BotOptions",
    "BotSpec",
    "WorkerError",
    "WorkerOptions",
    "resolve",
    "run_workers",
]
