"""The green-room bot (agent_name ``greenroom-echo``): before a meeting, the user hears and
sees themselves, reads a level meter, and gets a device and network report.

Protocol (topics, RPC methods, payloads): ``talkplatform_agents.lk.greenroom``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from livekit import api, rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess

from talkplatform_agents.bots.election import Election
from talkplatform_agents.bots.greenroom import analysis
from talkplatform_agents.bots.greenroom.audio import (
    SAMPLE_RATE,
    AudioLoop,
    FrameLevel,
    LevelMeter,
    Phase,
)
from talkplatform_agents.bots.greenroom.blur import BlurUnavailable
from talkplatform_agents.bots.greenroom.video import BlurPacing, VideoLoop
from talkplatform_agents.bots.ratelimit import RpcLimits
from talkplatform_agents.bots.rpc_limits import CallerLimits
from talkplatform_agents.lk import greenroom as proto
from talkplatform_agents.lk.naming import ECHO_AGENT_NAME
from talkplatform_agents.lk.quality import NetworkHistory
from talkplatform_agents.lk.stats import InboundSummary, inbound_streams, rates
from talkplatform_agents.tasks import TaskSet

__all__ = ["GreenRoomBot", "GreenRoomOptions", "greenroom_entrypoint", "greenroom_prewarm"]

logger = logging.getLogger(__name__)

_METER_PERIOD_S = 0.1
_REPORT_PERIOD_S = 2.0
_PING_TIMEOUT_S = 2.0
_QUEUE_MS = 60  # small on purpose: every queued millisecond is echo delay
_OPTIONS_KEY = "greenroom.options"
_NOBODY_CAME_S = 30.0
_LEFT_GRACE_S = 3.0
_NOT_ECHOED = (rtc.TrackSource.SOURCE_SCREENSHARE, rtc.TrackSource.SOURCE_SCREENSHARE_AUDIO)


@dataclass(frozen=True)
class GreenRoomOptions:
    segmentation_model: Path = Path("models/selfie_segmentation.tflite")
    blur_pacing: BlurPacing = field(default_factory=BlurPacing)
    rpc: RpcLimits = field(default_factory=RpcLimits)  # per caller


class GreenRoomBot:
    def __init__(self, room: rtc.Room, options: GreenRoomOptions) -> None:
        self._room = room
        self._rpc_limits = options.rpc
        self._source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=_QUEUE_MS)
        self._meter = LevelMeter()
        self._mic = analysis.MicCheck()
        self._camera = analysis.CameraCheck()
        self._network = analysis.NetworkSample(None, None, None, None)
        self._history = NetworkHistory()  # every sample since the bot joined: min/avg/max
        # The camera's frame rate as WebRTC decodes it. The bot's own loop keeps only the
        # newest frame when it falls behind, so its count says how fast the bot is, not the
        # camera.
        self._camera_fps: float | None = None
        self._audio = AudioLoop(self._source, self._on_mic_frame, self._on_phase, room.name)
        self._video = VideoLoop(
            room, self._camera, options.segmentation_model, room.name, options.blur_pacing
        )
        # The periodic work, the media loops and data in flight: stop() ends them all.
        self._tasks = TaskSet(room.name)
        self._media: dict[str, asyncio.Task[None]] = {}  # per media kind: the loop reading it

    @property
    def tag(self) -> str:
        return self._room.name

    @property
    def user(self) -> str | None:
        """The one human in the green room, if present."""
        for participant in self._room.remote_participants.values():
            if participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
                return participant.identity
        return None

    async def start(self) -> None:
        # RPCs first: the protocol promises that once the echo track is published, the bot
        # answers them (a call in between would get "unsupported method").
        local = self._room.local_participant
        # Ahead of every method: a flood of calls (toggling the preview, say) is refused
        # before it starts or stops any media.
        local.add_rpc_interceptor(CallerLimits(self.tag, self._rpc_limits))
        local.register_rpc_method(proto.RPC_SET_AUDIO_MODE, self._rpc_set_audio_mode)
        local.register_rpc_method(proto.RPC_SET_PREVIEW, self._rpc_set_preview)
        local.register_rpc_method(proto.RPC_SET_BLUR, self._rpc_set_blur)
        local.register_rpc_method(proto.RPC_GET_REPORT, self._rpc_get_report)
        track = rtc.LocalAudioTrack.create_audio_track("echo", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await local.publish_track(track, options)
        self._room.on("track_subscribed", self._on_track_subscribed)
        for participant in self._room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)
        self._tasks.spawn(self._run_periodic(), "periodic")
        logger.info("[%s] green-room bot ready", self.tag)

    async def stop(self) -> None:
        """Cancel and await every task of the bot, then close its audio. Idempotent."""
        self._media.clear()
        await self._tasks.aclose()
        await self._audio.stop()
        if self._audio.dropped_frames:
            logger.info("[%s] dropped %d late frames", self.tag, self._audio.dropped_frames)
        await self._source.aclose()

    def report(self) -> dict[str, Any]:
        now = time.monotonic()
        body = analysis.build_report(
            self._mic.summary(now), self._camera.summary(now), self._network, self._history
        )
        if self._camera_fps is not None and body["camera"]["status"] != "no_video":
            body["camera"]["fps"] = round(self._camera_fps, 1)
        body["audio_mode"] = self._audio.mode
        body["preview"] = self._video.preview
        body["blur"] = self._video.blur
        return body

    # -- media ---------------------------------------------------------------------------

    def _on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return  # never loop another bot back: two echo bots would feed back forever
        if publication.source in _NOT_ECHOED:
            return  # a screen share (the preflight's throughput probe) is no camera
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            loop = self._audio.run(track)
            kind = "audio"
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            loop = self._video.run(track, publication)
            kind = "video"
        else:
            return
        # The newest track of a kind replaces the previous one (a device switch); the task
        # set still owns the old loop until it has ended.
        previous = self._media.pop(kind, None)
        if previous is not None:
            previous.cancel()
        task = self._tasks.spawn(loop, kind)
        if task is None:
            return  # stopping
        logger.info("[%s] looping %s %s back", self.tag, participant.identity, kind)
        self._media[kind] = task

    def _on_mic_frame(self, samples: npt.NDArray[np.int16]) -> None:
        level = FrameLevel.of(samples)  # one pass over the samples, for the meter and check
        self._meter.add(level)
        self._mic.add(time.monotonic(), level.rms_dbfs, level.peak)

    def _on_phase(self, phase: Phase) -> None:
        self._send(proto.TOPIC_STATE, self._state(phase), reliable=True)

    def _state(self, phase: Phase) -> dict[str, Any]:
        return {
            "mode": self._audio.mode,
            "phase": phase,
            "seconds": self._audio.seconds,
            "preview": self._video.preview,
            "blur": self._video.blur,
        }

    # -- periodic work -------------------------------------------------------------------

    async def _run_periodic(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._meter_loop())
            group.create_task(self._report_loop())

    async def _meter_loop(self) -> None:
        while True:
            await asyncio.sleep(_METER_PERIOD_S)
            rms, peak = self._meter.reading()
            self._send(
                proto.TOPIC_LEVEL,
                {"rms_dbfs": round(rms, 2), "peak_dbfs": round(peak, 2), "t": time.time()},
                reliable=False,
            )

    async def _report_loop(self) -> None:
        previous: list[InboundSummary] = []
        previous_at = time.monotonic()
        while True:
            await asyncio.sleep(_REPORT_PERIOD_S)
            user = self.user
            if user is None:
                continue
            rtt_ms = await self._ping(user)
            try:
                stats = await self._room.get_rtc_stats()
            except RuntimeError as exc:  # the room went away under us
                logger.info("[%s] no stats: %s", self.tag, exc)
                continue
            # One peer connection carries both directions (signalling v1): read both lists.
            current = inbound_streams([*stats.publisher_stats, *stats.subscriber_stats])
            now = time.monotonic()
            self._network = _network_sample(previous, current, now - previous_at, rtt_ms)
            self._network.add_to(self._history)
            decoded = [s.frames_per_second for s in current if s.kind == "video"]
            self._camera_fps = max(decoded) if decoded and max(decoded) > 0 else None
            previous, previous_at = current, now
            self._send(proto.TOPIC_REPORT, self.report(), reliable=True)

    async def _ping(self, user: str) -> float | None:
        """Round trip to the user over RPC. Any answer counts, even 'unsupported method'."""
        started = time.perf_counter()
        try:
            await self._room.local_participant.perform_rpc(
                destination_identity=user,
                method=proto.RPC_PING,
                payload="",
                response_timeout=_PING_TIMEOUT_S,
            )
        except rtc.RpcError as exc:
            if exc.code != rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD:
                return None
        return (time.perf_counter() - started) * 1000

    def _send(self, topic: str, message: dict[str, Any], *, reliable: bool) -> None:
        user = self.user
        if user is None or not self._room.isconnected():
            return
        payload = proto.dumps(message).encode()

        async def send() -> None:
            with contextlib.suppress(Exception):  # the user may leave mid-send
                await self._room.local_participant.publish_data(
                    payload, reliable=reliable, destination_identities=[user], topic=topic
                )

        self._tasks.spawn(send(), f"send:{topic}")

    # -- RPC -----------------------------------------------------------------------------

    def _authorise(self, data: rtc.RpcInvocationData) -> None:
        # Green rooms are per user: only that user may drive the bot.
        owner = self.tag.removeprefix("greenroom-") if self.tag.startswith("greenroom-") else None
        if owner is not None and data.caller_identity != owner:
            raise rtc.RpcError(proto.FORBIDDEN, f"only {owner} may control this green room")

    async def _rpc_set_audio_mode(self, data: rtc.RpcInvocationData) -> str:
        self._authorise(data)
        request = _parse(proto.AudioModeRequest, data.payload)
        await self._audio.set_mode(request.mode, request.seconds)
        return proto.dumps(self._state(self._audio.phase))

    async def _rpc_set_preview(self, data: rtc.RpcInvocationData) -> str:
        self._authorise(data)
        request = _parse(proto.PreviewRequest, data.payload)
        await self._video.set_preview(request.enabled)
        return proto.dumps(self._state(self._audio.phase))

    async def _rpc_set_blur(self, data: rtc.RpcInvocationData) -> str:
        self._authorise(data)
        request = _parse(proto.BlurRequest, data.payload)
        try:
            await self._video.enable_blur(request.enabled)
        except BlurUnavailable as exc:
            raise rtc.RpcError(proto.UNAVAILABLE, f"blur unavailable: {exc}") from exc
        return proto.dumps(self._state(self._audio.phase))

    async def _rpc_get_report(self, data: rtc.RpcInvocationData) -> str:
        self._authorise(data)
        _parse(proto.EmptyRequest, data.payload)
        return proto.dumps(self.report())


def _parse(model: type[proto.PayloadT], payload: str) -> proto.PayloadT:
    try:
        return proto.parse(model, payload)
    except proto.BadPayload as exc:
        raise rtc.RpcError(proto.INVALID_PAYLOAD, f"invalid payload: {exc}") from exc


def _network_sample(
    before: list[InboundSummary], after: list[InboundSummary], seconds: float, rtt_ms: float | None
) -> analysis.NetworkSample:
    per_stream = rates(before, after, seconds)
    if not per_stream:
        return analysis.NetworkSample(rtt_ms, None, None, None)
    jitter = max((s.jitter_s for s in after if s.kind == "audio"), default=None)
    received = sum(a.packets_received for a in after) - sum(b.packets_received for b in before)
    lost = sum(max(a.packets_lost, 0) for a in after) - sum(max(b.packets_lost, 0) for b in before)
    loss = max(lost, 0) / (received + lost) * 100 if received + lost > 0 else 0.0
    bitrate = sum(bits for bits, _ in per_stream.values()) / 1000
    return analysis.NetworkSample(
        rtt_ms, jitter * 1000 if jitter is not None else None, loss, bitrate
    )


def greenroom_prewarm(proc: JobProcess, options: GreenRoomOptions) -> None:
    """Runs once in each job process: keeps the options for the entrypoint."""
    proc.userdata[_OPTIONS_KEY] = options


async def greenroom_entrypoint(ctx: JobContext) -> None:
    # OpenCV's default pool (a thread per core, which spin while waiting for work) would
    # take both cores of a small machine from the event loop that answers the user's RPCs.
    # Blur runs on a worker thread of its own, paced by its cost: one OpenCV thread is all.
    cv2.setNumThreads(1)
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_ALL)
    options = ctx.proc.userdata.get(_OPTIONS_KEY, GreenRoomOptions())
    bot = GreenRoomBot(ctx.room, options)
    # The service re-dispatches a bot that seems missing: of two, one stays.
    election = Election(ctx.room, ECHO_AGENT_NAME, lambda _: ctx.shutdown("duplicate bot"))
    user_left = False

    async def cleanup() -> None:
        election.close()
        await bot.stop()
        if user_left:
            # The green room is the user's alone: once they leave, nothing is kept.
            with contextlib.suppress(Exception):
                await ctx.api.room.delete_room(api.DeleteRoomRequest(room=ctx.room.name))
                logger.info("[%s] room deleted", ctx.room.name)

    ctx.add_shutdown_callback(cleanup)

    timers = TaskSet(ctx.room.name)  # pending closes, cancelled at shutdown

    async def close_if_alone_after(delay_s: float, reason: str) -> None:
        # A reconnect, a second tab or the preflight's next session brings the user back
        # within moments: only a room without its user for the whole delay is closed.
        await asyncio.sleep(delay_s)
        if bot.user is None:
            nonlocal user_left
            logger.info("[%s] %s; closing the green room", ctx.room.name, reason)
            user_left = True
            ctx.shutdown(reason)

    def start_timer(delay_s: float, reason: str) -> None:
        timers.spawn(close_if_alone_after(delay_s, reason), "close-if-alone")

    def on_participant_left(participant: rtc.RemoteParticipant) -> None:
        if participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and bot.user is None:
            start_timer(_LEFT_GRACE_S, f"{participant.identity} left")

    ctx.add_shutdown_callback(timers.aclose)

    ctx.room.on("participant_disconnected", on_participant_left)
    if not election.start() or not ctx.room.isconnected():
        return  # leaving already: never echo
    await bot.start()
    await election.mark_active()
    if bot.user is None:
        # Dispatched into a room whose user has already gone: do not wait forever.
        start_timer(_NOBODY_CAME_S, "nobody came")
