"""The load run's participants: plain ``rtc.Room`` clients (never agent jobs, so LiveKit
counts them as room members). A publisher sends the marked pattern (simulcast, one layer,
or a pre-encoded clip), the marked tone and optionally a text-heavy screen share. A
subscriber watches as its layout asks, verifies simulcast layer switches and measures."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from livekit import rtc

from talkplatform_agents.lk.stats import inbound_streams
from talkplatform_agents.synthetic.audio import ToneConfig
from talkplatform_agents.synthetic.client import RoomClient, ticks
from talkplatform_agents.synthetic.encoded import EncodedClip
from talkplatform_agents.synthetic.load.frames import FrameProbe
from talkplatform_agents.synthetic.load.report import MAX_SAMPLES, LayerSwitch, ParticipantResult
from talkplatform_agents.synthetic.load.spec import Codec, Layout, MediaOptions
from talkplatform_agents.synthetic.probes import AudioProbe, MarkerLog
from talkplatform_agents.synthetic.screen import ScreenPattern
from talkplatform_agents.synthetic.video import PatternGenerator

__all__ = ["LoadMember", "LoadPublisher", "LoadSubscriber", "MemberPlan"]

logger = logging.getLogger(__name__)

_CODECS = {Codec.VP8: rtc.VideoCodec.VP8, Codec.H264: rtc.VideoCodec.H264}
_QUALITIES = {
    "low": rtc.VideoQuality.VIDEO_QUALITY_LOW,
    "medium": rtc.VideoQuality.VIDEO_QUALITY_MEDIUM,
    "high": rtc.VideoQuality.VIDEO_QUALITY_HIGH,
}
_SETTLE_S = 1.5
_RESEND_S = 4.0
# Test media must keep its size: under CPU pressure libwebrtc would otherwise scale the
# source down, and with it drop the top simulcast layer or blur the shared text.
_KEEP_SIZE = rtc.DegradationPreference.MAINTAIN_RESOLUTION.value


@dataclass(frozen=True)
class MemberPlan:
    """One participant of the run, as the runner hands it to a worker process."""

    identity: str
    room: str
    role: str  # publisher or subscriber
    token: str
    start_offset_s: float  # after the run's start, per the ramp
    tag: int = 0  # publisher: its audio marker tag
    screen: bool = False  # publisher: also share a screen
    speaker: str = ""  # subscriber: the publisher its speaker layout shows large
    tiles: int = 1  # subscriber: camera tiles on its grid
    slot: int = 0  # publisher: its index in the room (its turn, with simulated speakers)
    decode: bool = True  # subscriber: a decoding livekit.rtc client, else a light one


class LoadMember:
    """Join timing, task ownership and leaving, shared by both roles."""

    def __init__(self, url: str, plan: MemberPlan, media: MediaOptions, timeout_s: float) -> None:
        self.url, self.plan, self.media = url, plan, media
        self._client = RoomClient(plan.identity, self._task_failed)
        self.room = self._client.room
        self.result = ParticipantResult(plan.identity, plan.room, plan.role)
        self._timeout_s = timeout_s
        self._joined_at = 0.0
        self._started = 0.0

    async def start(self) -> None:
        """Join and set up; raises on a failed join (never cancels one in flight)."""
        self._started = time.perf_counter()
        join_s = await self._client.join(
            self.url,
            self.plan.token,
            auto_subscribe=self.plan.role == "subscriber",
            timeout_s=self._timeout_s,
        )
        self._joined_at = time.perf_counter()
        self.result.joined = True
        self.result.join_ms = round(join_s * 1000, 2)
        logger.info(
            "[%s/%s] joined in %.0f ms", self.plan.room, self.plan.identity, self.result.join_ms
        )
        await self.setup()

    async def setup(self) -> None:
        """What the role does once joined."""

    async def collect(self) -> None:
        """Fill ``result`` with what was measured (before leaving)."""

    async def stop(self) -> None:
        """Measure, cancel and await every task, then leave. Idempotent."""
        if not self._client.running:
            return
        await self._client.leave(self._collect)
        self.result.left_at = time.time()

    async def _collect(self) -> None:
        try:
            await self.collect()
        except Exception as exc:
            self.result.errors.append(f"collecting results failed: {exc!r}")

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._client.spawn(coro, what)

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s/%s] %s failed: %r", self.plan.room, self.plan.identity, what, exc)
        self.result.errors.append(f"{what} failed: {exc!r}")


class LoadPublisher(LoadMember):
    def __init__(
        self,
        url: str,
        plan: MemberPlan,
        media: MediaOptions,
        timeout_s: float,
        marker_log: MarkerLog,
        clip: EncodedClip | None = None,
    ) -> None:
        super().__init__(url, plan, media, timeout_s)
        self._log = marker_log
        self._clip = clip

    async def setup(self) -> None:
        media = self.media
        if media.pre_encoded:
            if self._clip is None:
                raise ValueError("pre-encoded publishing needs the encoded clip")
            await self._publish_encoded(self._clip)
        else:
            await self._publish_camera()
        if media.audio:
            await self._client.publish_tone("load-tone", ToneConfig(tag=self.plan.tag), self._log)
            self.result.tracks_published += 1
        if self.plan.screen:
            await self._publish_screen()

    async def _publish_camera(self) -> None:
        media = self.media
        await self._client.publish_frames(
            "load-camera",
            rtc.VideoSource(media.width, media.height),
            rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                simulcast=media.simulcast,
                degradation_preference=_KEEP_SIZE,
                video_codec=_CODECS[media.codec],
                video_encoding=rtc.VideoEncoding(
                    max_bitrate=media.max_bitrate, max_framerate=media.fps
                ),
            ),
            PatternGenerator(media.width, media.height).frame,
            media.fps,
            what="camera",
            on_frame=self._frame_sent,
        )
        self.result.tracks_published += 1

    async def _publish_screen(self) -> None:
        media = self.media
        await self._client.publish_frames(
            "load-screen",
            rtc.VideoSource(media.screen_width, media.screen_height, is_screencast=True),
            rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_SCREENSHARE,
                simulcast=False,  # one layer: subscribers must get the full resolution
                degradation_preference=_KEEP_SIZE,
                video_codec=_CODECS[media.codec],
                video_encoding=rtc.VideoEncoding(
                    max_bitrate=2_500_000, max_framerate=media.screen_fps
                ),
            ),
            ScreenPattern(media.screen_width, media.screen_height).frame,
            media.screen_fps,
            what="screen",
            on_frame=self._frame_sent,
        )
        self.result.tracks_published += 1

    def _frame_sent(self) -> None:
        self.result.frames_sent += 1

    async def _publish_encoded(self, clip: EncodedClip) -> None:
        source = rtc.EncodedVideoSource(clip.width, clip.height)
        track = rtc.LocalVideoTrack.create_video_track("load-camera", source)
        await self.room.local_participant.publish_track(
            track,
            rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                simulcast=False,
                video_codec=_CODECS[Codec(clip.codec)],
                video_encoder=rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED,
                video_encoding=rtc.VideoEncoding(
                    max_bitrate=self.media.max_bitrate, max_framerate=clip.fps
                ),
            ),
        )
        self.result.tracks_published += 1
        self.spawn(self._pump_encoded(source, clip), "camera")

    async def _pump_encoded(self, source: rtc.EncodedVideoSource, clip: EncodedClip) -> None:
        codec = _CODECS[Codec(clip.codec)]
        index = 0
        async for now in ticks(1 / clip.fps):
            i = index % len(clip.frames)
            frame = clip.frames[i]
            data, key = frame.data, frame.keyframe
            # A new subscriber needs a keyframe now, not at the loop's end.
            if not key and source.take_feedback().keyframe_requested:
                data, key = clip.keyframes[i], True
            kind = (
                rtc.EncodedFrameType.ENCODED_FRAME_KEY
                if key
                else rtc.EncodedFrameType.ENCODED_FRAME_DELTA
            )
            source.capture_frame(
                rtc.EncodedVideoFrame(data, clip.width, clip.height, codec, kind, int(now * 1e6))
            )
            index += 1
            self.result.frames_sent += 1


class LoadSubscriber(LoadMember):
    def __init__(
        self,
        url: str,
        plan: MemberPlan,
        media: MediaOptions,
        timeout_s: float,
        marker_log: MarkerLog,
        on_first_frame: Callable[[LoadSubscriber], None] | None = None,
    ) -> None:
        super().__init__(url, plan, media, timeout_s)
        self._log = marker_log
        self._on_first_frame = on_first_frame
        self.video: dict[str, FrameProbe] = {}
        self.audio: dict[str, AudioProbe] = {}
        self._first_frame = asyncio.Event()
        self._switch_started = False

    async def setup(self) -> None:
        self.room.on("track_subscribed", self._on_track)
        # Tracks published before we joined may already be subscribed.
        for participant in self.room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None and publication.sid not in self.video:
                    self._on_track(publication.track, publication, participant)

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self.result.audio_tracks += 1
            if not self.media.audio_markers:
                return  # received and counted by WebRTC stats; not decoded here
            audio = AudioProbe(participant.identity, publication.sid, self._log)
            self.audio[publication.sid] = audio
            self.spawn(audio.run(track), f"audio<-{participant.identity}")
            return
        if track.kind != rtc.TrackKind.KIND_VIDEO or publication.sid in self.video:
            return
        screen = publication.source == rtc.TrackSource.SOURCE_SCREENSHARE
        probe = FrameProbe(
            participant.identity,
            publication.sid,
            screen=screen,
            live_latency=not self.media.pre_encoded,
        )
        self.video[publication.sid] = probe
        self.spawn(self._watch(track, probe), f"video<-{participant.identity}")
        if publication.simulcasted and not screen:
            publication.set_video_quality(self._layout_quality(participant.identity))
            switch = self.media.switch_layers and participant.identity == self.plan.speaker
            if switch and not self._switch_started:
                self._switch_started = True
                self.spawn(self._verify_switches(publication, probe), "layer-switch")

    def _layout_quality(self, sender: str) -> rtc.VideoQuality.ValueType:
        if self.media.layout is Layout.SPEAKER:
            return _QUALITIES["high" if sender == self.plan.speaker else "low"]
        return _QUALITIES["medium" if self.plan.tiles <= 4 else "low"]

    async def _watch(self, track: rtc.Track, probe: FrameProbe) -> None:
        async def first() -> None:
            await probe.size_changed.wait()
            if not self._first_frame.is_set():
                self._first_frame.set()
                self.result.first_frame_ms = round((time.perf_counter() - self._started) * 1000, 2)
                if self._on_first_frame is not None:
                    self._on_first_frame(self)

        self.spawn(first(), "first-frame")
        await probe.run(track)

    async def _verify_switches(
        self, publication: rtc.RemoteTrackPublication, probe: FrameProbe
    ) -> None:
        """Request LOW, MEDIUM, HIGH in turn; each must change the received size (down, up,
        up to the published width). The speaker layout then gets its own layer back."""
        timeout = self.media.switch_timeout_s
        await probe.size_changed.wait()
        full = publication.width or self.media.width
        # Settle on the top layer first: bandwidth estimation may not have reached it yet.
        publication.set_video_quality(_QUALITIES["high"])
        with contextlib.suppress(TimeoutError):
            await _wait_for(probe, lambda w: w >= full, timeout)
        for quality in ("low", "medium", "high"):
            before = probe.width
            wanted = _smaller_than(before) if quality == "low" else _larger_than(before)
            asked = time.perf_counter()
            ask = functools.partial(publication.set_video_quality, _QUALITIES[quality])
            ask()
            try:
                await _wait_for(probe, wanted, timeout, resend=ask)
            except TimeoutError:
                self.result.switches.append(
                    LayerSwitch(quality, False, None, probe.width, probe.height)
                )
                size = f"{probe.width}x{probe.height}"
                self.result.errors.append(
                    f"layer switch to {quality} not seen in {timeout:.0f}s (still {size})"
                )
                break
            # The SFU may pass through a layer on its way (HIGH to MEDIUM to LOW): the switch
            # is done when the size has held still for a moment.
            changed_at, width, height = await _settled(probe, _SETTLE_S, down=quality == "low")
            ms = round((changed_at - asked) * 1000, 2)
            self.result.switches.append(LayerSwitch(quality, True, ms, width, height))
        publication.set_video_quality(self._layout_quality(self.plan.speaker))

    async def collect(self) -> None:
        result = self.result
        cameras = [p for p in self.video.values() if not p.screen]
        result.video_tracks = len(self.video)
        result.frames = sum(p.frames for p in self.video.values())
        result.markers = sum(p.decoded for p in self.video.values())
        result.audio_markers = sum(len(a.markers) for a in self.audio.values())
        result.freezes = sum(p.freezes for p in self.video.values())
        result.freeze_ms = round(sum(p.freeze_ms for p in self.video.values()), 1)
        rates = [f for p in cameras if (f := p.fps()) is not None]
        result.fps = round(sum(rates) / len(rates), 2) if rates else None
        latencies = [v for p in cameras for v in p.latencies]
        step = max(len(latencies) // MAX_SAMPLES, 1)
        result.latency_ms = [round(v, 1) for v in latencies[::step]]
        for probe in self.video.values():
            if probe.screen:
                result.screen = {
                    "sender": probe.sender,
                    "width": probe.max_width,
                    "height": probe.max_height,
                    "frames": probe.frames,
                    "psnr_db": probe.best_psnr_db,
                }
        stats = await self.room.get_rtc_stats()
        # One peer connection or two, depending on the signalling version: read both.
        streams = inbound_streams([*stats.publisher_stats, *stats.subscriber_stats])
        result.packets_received = sum(s.packets_received for s in streams)
        result.packets_lost = sum(max(s.packets_lost, 0) for s in streams)
        if streams:
            result.jitter_ms = round(1000 * sum(s.jitter_s for s in streams) / len(streams), 3)
        span = time.perf_counter() - self._joined_at
        if span > 0:
            result.bitrate_kbps = round(sum(s.bytes_received for s in streams) * 8 / span / 1000, 1)


def _smaller_than(width: int) -> Callable[[int], bool]:
    return lambda w: w < width


def _larger_than(width: int) -> Callable[[int], bool]:
    return lambda w: w > width


async def _settled(probe: FrameProbe, quiet_s: float, *, down: bool) -> tuple[float, int, int]:
    """The last size the switch reached, and when: further steps the same way count (the
    SFU may pass through a layer); a step back is the SFU's own later choice (congestion)
    and ends the switch."""
    changed_at, width, height = time.perf_counter(), probe.width, probe.height
    while True:
        probe.size_changed.clear()
        try:
            async with asyncio.timeout(quiet_s):
                await probe.size_changed.wait()
        except TimeoutError:
            return changed_at, width, height
        if (probe.width < width) != down or probe.width == width:
            return changed_at, width, height
        changed_at, width, height = time.perf_counter(), probe.width, probe.height


async def _wait_for(
    probe: FrameProbe,
    wanted: Callable[[int], bool],
    timeout_s: float,
    resend: Callable[[], None] | None = None,
) -> None:
    """Until the received width is ``wanted``. A busy SFU or publisher can miss a layer
    request (its keyframe never comes): ``resend`` it every few seconds, as clients do."""
    async with asyncio.timeout(timeout_s):
        while not wanted(probe.width):
            probe.size_changed.clear()
            try:
                async with asyncio.timeout(_RESEND_S):
                    await probe.size_changed.wait()
            except TimeoutError:
                if resend is not None:
                    resend()
