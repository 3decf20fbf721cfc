"""The green-room echo bot (agent_name ``greenroom-echo``): it plays the user's microphone
straight back to them, so they hear what the meeting will hear.

Green rooms hold one user, so the bot echoes the most recently subscribed microphone.
It leaves once no human participant remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext

from talkplatform_agents.lk.naming import ECHO_AGENT_NAME

__all__ = ["ECHO_AGENT_NAME", "EchoBot", "echo_entrypoint"]

logger = logging.getLogger(__name__)

_SAMPLE_RATE = 48_000
# Small on purpose: every queued millisecond is a millisecond of echo delay.
_QUEUE_MS = 60
_MAX_BACKLOG_S = 0.04


class EchoBot:
    """Loops one subscribed microphone back through a published audio track."""

    def __init__(self, room: rtc.Room) -> None:
        self._room = room
        self._source = rtc.AudioSource(_SAMPLE_RATE, 1, queue_size_ms=_QUEUE_MS)
        self._loop_task: asyncio.Task[None] | None = None
        self._echoing: str | None = None
        self._stopped = False
        self.dropped_frames = 0

    @property
    def tag(self) -> str:
        return self._room.name

    async def start(self) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("echo", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self._room.local_participant.publish_track(track, options)
        self._room.on("track_subscribed", self._on_track_subscribed)
        self._room.on("track_unsubscribed", self._on_track_unsubscribed)
        for participant in self._room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)
        logger.info("[%s] echo bot ready", self.tag)

    async def stop(self) -> None:
        if self.dropped_frames:
            logger.info("[%s] dropped %d late frames", self.tag, self.dropped_frames)
        self._stopped = True
        await self._cancel_loop()
        await self._source.aclose()

    def _on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.TrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if self._stopped or track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return  # never echo another bot: two echo bots would feed back forever
        logger.info("[%s] echoing %s (%s)", self.tag, participant.identity, publication.sid)
        previous = self._loop_task
        self._echoing = publication.sid
        self._loop_task = asyncio.create_task(
            self._echo(track, previous), name=f"echo:{participant.identity}"
        )

    def _on_track_unsubscribed(
        self,
        _track: rtc.Track,
        publication: rtc.TrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if publication.sid == self._echoing:
            logger.info("[%s] %s stopped publishing", self.tag, participant.identity)
            self._echoing = None
            if self._loop_task is not None:
                self._loop_task.cancel()  # stop() awaits it

    async def _echo(self, track: rtc.Track, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            previous.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        stream = rtc.AudioStream(track, sample_rate=_SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                if self._source.queued_duration > _MAX_BACKLOG_S:
                    # Frames that arrive in a burst would queue up and stay as echo delay
                    # for the rest of the session: drop them, as a jitter buffer would.
                    self.dropped_frames += 1
                    continue
                await self._source.capture_frame(event.frame)
        finally:
            await stream.aclose()

    async def _cancel_loop(self) -> None:
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def echo_entrypoint(ctx: JobContext) -> None:
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    bot = EchoBot(ctx.room)
    ctx.add_shutdown_callback(bot.stop)

    def on_participant_left(participant: rtc.RemoteParticipant) -> None:
        humans = [
            p
            for p in ctx.room.remote_participants.values()
            if p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        ]
        if not humans:
            logger.info("[%s] %s left; the room is empty", ctx.room.name, participant.identity)
            ctx.shutdown("user left")

    ctx.room.on("participant_disconnected", on_participant_left)
    await bot.start()
