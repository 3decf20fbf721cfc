"""The bots this worker can run, by agent name, and how each runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from livekit.agents import JobContext, JobProcess

from talkplatform_agents.bots.agents_job import hosted_entrypoint, hosted_prewarm
from talkplatform_agents.bots.chat import ChatOptions
from talkplatform_agents.bots.greenroom import (
    GreenRoomOptions,
    greenroom_entrypoint,
    greenroom_prewarm,
)
from talkplatform_agents.bots.hosted import HOSTED, HostedOptions
from talkplatform_agents.bots.lease import LeaseOptions
from talkplatform_agents.bots.moderator import ModeratorOptions
from talkplatform_agents.bots.recorder.bot import (
    RecorderOptions,
    recorder_entrypoint,
    recorder_prewarm,
)
from talkplatform_agents.bots.recorder.session import SessionOptions
from talkplatform_agents.bots.recorder.tracks import VideoLimits
from talkplatform_agents.bots.transcriber.bot import (
    TranscriberOptions,
    transcriber_entrypoint,
    transcriber_prewarm,
)
from talkplatform_agents.lk.naming import (
    CHAT_AGENT_NAME,
    ECHO_AGENT_NAME,
    RECORDER_AGENT_NAME,
    TRANSCRIBER_AGENT_NAME,
    WAITING_ROOM_AGENT_NAME,
)

if TYPE_CHECKING:
    from talkplatform_agents.config import Settings

__all__ = ["BOTS", "BotOptions", "BotSpec", "Executor", "resolve"]

# How a bot's jobs run: "host", many to a room host process (bots/room_host.py);
# "process", each in a process of its own, livekit-agents' way (bots/agents_job.py); or
# "thread", each in a thread of one livekit-agents server: kept to be measured against
# (bench/bot_density.py), never the default. Concurrent joins made the SDK panic there.
Executor = Literal["host", "process", "thread"]


@dataclass(frozen=True)
class BotOptions:
    """What bots are configured with; handed to each job process by its prewarm step
    (job processes are spawned: they see none of the parent's objects)."""

    greenroom: GreenRoomOptions = field(default_factory=GreenRoomOptions)
    # The chat relay and the moderator, whose state lives in the store.
    hosted: HostedOptions = field(default_factory=HostedOptions)
    # Every bot's lease on its room: how the service sees a bot die (bots/lease.py).
    lease: LeaseOptions = field(default_factory=LeaseOptions)
    recorder: RecorderOptions = field(default_factory=RecorderOptions)
    transcriber: TranscriberOptions = field(default_factory=TranscriberOptions)

    @classmethod
    def from_settings(cls, settings: Settings) -> BotOptions:
        """Every bot's options, as the platform's settings say (``CHAT_*`` included)."""
        return cls(
            greenroom=GreenRoomOptions(
                segmentation_model=Path(settings.segmentation_model).resolve()
            ),
            hosted=HostedOptions(
                database_url=settings.database_url,
                chat=ChatOptions(
                    history_size=settings.chat_history_size,
                    max_message_chars=settings.chat_max_message_chars,
                    messages_per_second=settings.chat_messages_per_second,
                    message_burst=settings.chat_message_burst,
                    reactions_per_second=settings.chat_reactions_per_second,
                    reaction_burst=settings.chat_reaction_burst,
                    blocked_words=tuple(
                        w.strip() for w in settings.chat_blocked_words.split(",") if w.strip()
                    ),
                    blocked_action=settings.chat_blocked_action,
                    hosts_see_private=settings.chat_hosts_see_private,
                ),
                moderator=ModeratorOptions.from_settings(settings),
            ),
            recorder=RecorderOptions(
                database_url=settings.database_url,
                recordings_dir=Path(settings.recordings_dir).resolve(),
                session=SessionOptions(
                    video=VideoLimits(
                        layer=settings.recorder_video_layer,
                        max_width=settings.recorder_video_max_width,
                        max_height=settings.recorder_video_max_height,
                        max_fps=settings.recorder_video_max_fps,
                    )
                ),
            ),
            transcriber=TranscriberOptions(
                database_url=settings.database_url, stt=settings.transcriber_stt
            ),
            lease=LeaseOptions(
                database_url=settings.database_url,
                ttl_s=settings.bot_lease_ttl_s,
                beat_s=settings.bot_lease_beat_s,
            ),
        )


@dataclass(frozen=True)
class BotSpec:
    agent_name: str
    # As a livekit-agents job (a process per job).
    entrypoint: Callable[[JobContext], Awaitable[None]]
    description: str
    # Called as prewarm(options, proc) once in each job process.
    prewarm: Callable[[BotOptions, JobProcess], None] | None = None
    executor: Executor = "process"
    # Warm job processes its livekit-agents server keeps (None: the worker's default).
    idle_processes: int | None = None
    # Its lease's length, if longer than the worker's (None: BOT_LEASE_TTL_S): a bot whose
    # event loop may stall on a saturated machine (encoding) is not taken for dead.
    lease_ttl_s: float | None = None

    @property
    def hostable(self) -> bool:
        """Whether the room host can run it (its session is in ``bots/hosted.py``)."""
        return self.agent_name in HOSTED


def _prewarm_greenroom(options: BotOptions, proc: JobProcess) -> None:
    greenroom_prewarm(proc, options.greenroom)


def _prewarm_recorder(options: BotOptions, proc: JobProcess) -> None:
    recorder_prewarm(proc, options.recorder)


def _prewarm_transcriber(options: BotOptions, proc: JobProcess) -> None:
    transcriber_prewarm(proc, options.transcriber)


def _prewarm_hosted(options: BotOptions, proc: JobProcess) -> None:
    hosted_prewarm(options.hosted, proc)


BOTS: dict[str, BotSpec] = {
    spec.agent_name: spec
    for spec in (
        BotSpec(
            ECHO_AGENT_NAME,
            greenroom_entrypoint,
            "green room: echo (live or playback), preview with blur, level meter, report",
            _prewarm_greenroom,
            executor="process",  # media: its CPU needs the cores, not one event loop
        ),
        BotSpec(
            RECORDER_AGENT_NAME,
            recorder_entrypoint,
            "recording: every track to its own file, a mixed audio file, an Egress-shaped "
            "manifest (on request, or settings.recording.auto)",
            _prewarm_recorder,
            executor="process",  # media: decodes and encodes
            idle_processes=1,  # recordings are rare, and each holds its process for long
            lease_ttl_s=6.0,
        ),
        BotSpec(
            TRANSCRIBER_AGENT_NAME,
            transcriber_entrypoint,
            "transcription: live captions (lk.transcription), a stored transcript and "
            "analytics (on request, or settings.transcription.auto)",
            _prewarm_transcriber,
            executor="process",  # speech recognition: its CPU needs the cores
            idle_processes=1,
            lease_ttl_s=6.0,  # a busy decoder may hold the loop a moment
        ),
        BotSpec(
            WAITING_ROOM_AGENT_NAME,
            hosted_entrypoint(WAITING_ROOM_AGENT_NAME),
            "waiting room and host controls, in meeting rooms and their lobbies",
            _prewarm_hosted,
            executor="host",
        ),
        BotSpec(
            CHAT_AGENT_NAME,
            hosted_entrypoint(CHAT_AGENT_NAME),
            "meeting chat: persistence, history, private messages, reactions, moderation",
            _prewarm_hosted,
            executor="host",
        ),
    )
}


def resolve(names: list[str]) -> list[BotSpec]:
    """The specs for ``names`` (``["all"]``: every bot); a clear error naming the unknown
    ones and the known ones."""
    if names == ["all"]:
        return list(BOTS.values())
    unknown = [name for name in names if name not in BOTS]
    if unknown:
        raise ValueError(f"unknown bot(s) {', '.join(unknown)}; known: {', '.join(BOTS)}")
    if not names:
        raise ValueError("no bots named")
    return [BOTS[name] for name in dict.fromkeys(names)]
