"""The bots this worker can run, by agent name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit.agents import JobContext

from talkplatform_agents.bots.echo import ECHO_AGENT_NAME, echo_entrypoint

__all__ = ["BOTS", "BotSpec", "resolve"]


@dataclass(frozen=True)
class BotSpec:
    agent_name: str
    entrypoint: Callable[[JobContext], Awaitable[None]]
    description: str


BOTS: dict[str, BotSpec] = {
    spec.agent_name: spec
    for spec in (
        BotSpec(ECHO_AGENT_NAME, echo_entrypoint, "green room: echoes the microphone back"),
    )
}


def resolve(names: list[str]) -> list[BotSpec]:
    """The specs for ``names``; a clear error naming the unknown ones and the known ones."""
    unknown = [name for name in names if name not in BOTS]
    if unknown:
        raise ValueError(f"unknown bot(s) {', '.join(unknown)}; known: {', '.join(BOTS)}")
    if not names:
        raise ValueError("no bots named")
    return [BOTS[name] for name in dict.fromkeys(names)]
