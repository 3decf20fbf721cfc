"""The load run's SDK participants: plain ``rtc.Room`` clients (never agent jobs, so
LiveKit counts them as room members). A publisher encodes the marked pattern live
(simulcast or one layer; pre-encoded publishers are light clients, ``light.py``), the
marked tone (its loudness following the simulated speakers' turns) and optionally a
text-heavy screen share, or the tone alone. A subscriber decodes: it watches as its layout
asks, verifies simulcast layer switches, follows the SFU's active speaker and measures,
per track and in all."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from talkplatform_agents.lk.stats import InboundSummary, inbound_streams
from talkplatform_agents.synthetic.audio import SAMPLE_RATE, ToneConfig
from talkplatform_agents.synthetic.client import RoomClient
from talkplatform_agents.synthetic.load.frames import FrameProbe
from talkplatform_agents.synthetic.load.report import MAX_SAMPLES, ParticipantResult, TrackResult
from talkplatform_agents.synthetic.load.speakers import (
    SpeakerFollow,
    SpeakerSchedule,
    record_follow,
    slot_identities,
)
from talkplatform_agents.synthetic.load.spec import Codec, Layout, MediaOptions
from talkplatform_agents.synthetic.load.switches import verify_switches
from talkplatform_agents.synthetic.probes import AudioProbe, MarkerLog
from talkplatform_agents.synthetic.screen import ScreenPattern
from talkplatform_agents.synthetic.video import PatternGenerator

__all__ = [
    "LoadMember",
    "LoadPublisher",
    "LoadSubscriber",
    "MemberPlan",
    "expected_tracks",
    "source_name",
]

logger = logging.getLogger(__name__)

_CODECS = {Codec.VP8: rtc.VideoCodec.VP8, Codec.H264: rtc.VideoCodec.H264}
_QUALITIES = {
    "low": rtc.VideoQuality.VIDEO_QUALITY_LOW,
    "medium": rtc.VideoQuality.VIDEO_QUALITY_MEDIUM,
    "high": rtc.VideoQuality.VIDEO_QUALITY_HIGH,
}
# LiveKit's own names for the sources (as its clients and the server's API spell them).
_SOURCES = {
    rtc.TrackSource.SOURCE_CAMERA: "camera",
    rtc.TrackSource.SOURCE_MICROPHONE: "microphone",
    rtc.TrackSource.SOURCE_SCREENSHARE: "screen_share",
    rtc.TrackSource.SOURCE_SCREENSHARE_AUDIO: "screen_share_audio",
}
# How often a subscriber reads each track's stats: a publisher that leaves first takes its
# receiver's stats along, and the last reading then stands for it.
_TRACK_STATS_S = 5.0
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


def source_name(source: rtc.TrackSource.ValueType) -> str:
    return _SOURCES.get(source, "unknown")


def expected_tracks(media: MediaOptions, publishers: int) -> int:
    """The tracks a subscriber should receive from its room's ``publishers``: a camera and
    a microphone each, as the media asks, and the first one's screen share (never without
    video: audio-only publishers share no screen)."""
    per_publisher = int(media.video) + int(media.audio)
    screen = int(media.video and media.screen_share and publishers > 0)
    return publishers * per_publisher + screen


class LoadMember:
    """Join timing, task ownership and leaving, shared by both roles. ``publishers`` is the
    number in the room (the runner sets ``plan.tiles`` to it when not given)."""

    def __init__(
        self,
        url: str,
        plan: MemberPlan,
        media: MediaOptions,
        timeout_s: float,
        publishers: int | None = None,
    ) -> None:
        self.url, self.plan, self.media = url, plan, media
        self.publishers = plan.tiles if publishers is None else publishers
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
        publishers: int | None = None,
    ) -> None:
        super().__init__(url, plan, media, timeout_s, publishers)
        self._log = marker_log
        self.schedule = SpeakerSchedule(media.speaker_turn_s, self.publishers)

    async def setup(self) -> None:
        media = self.media
        if media.video:
            await self._publish_camera()
        if media.audio:
            await self._client.publish_tone(
                "load-tone", ToneConfig(tag=self.plan.tag), self._log, self._gain
            )
            self.result.tracks_published += 1
        if self.plan.screen and media.video:
            await self._publish_screen()

    def _gain(self) -> float:
        return self.schedule.gain(self.plan.slot, time.time())

    async def collect(self) -> None:
        # What it published, so that the per-track table has a row even for a track that
        # no subscriber received.
        identity = self.plan.identity
        for publication in self.room.local_participant.track_publications.values():
            kind = "audio" if publication.kind == rtc.TrackKind.KIND_AUDIO else "video"
            self.result.tracks.append(
                TrackResult(identity, publication.sid, kind, source_name(publication.source))
            )

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


@dataclass
class _Subscribed:
    """A track this subscriber received, and its receiver's last stats reading."""

    track: rtc.Track
    sender: str
    kind: str
    source: str
    at: float  # perf_counter when it was subscribed
    streams: list[InboundSummary] = field(default_factory=list)
    read_at: float = 0.0


class LoadSubscriber(LoadMember):
    def __init__(
        self,
        url: str,
        plan: MemberPlan,
        media: MediaOptions,
        timeout_s: float,
        marker_log: MarkerLog,
        on_first_frame: Callable[[LoadSubscriber], None] | None = None,
        publishers: int | None = None,
    ) -> None:
        super().__init__(url, plan, media, timeout_s, publishers)
        self._log = marker_log
        self._on_first_frame = on_first_frame
        self.video: dict[str, FrameProbe] = {}
        self.audio: dict[str, AudioProbe] = {}
        self.follow: SpeakerFollow | None = None
        self._subscribed: dict[str, _Subscribed] = {}
        self._first_frame = asyncio.Event()
        self._switch_started = False
        self.result.tracks_expected = expected_tracks(media, self.publishers)

    async def setup(self) -> None:
        self._follow_speakers()
        self.spawn(self._poll_tracks(), "track-stats")
        self.room.on("track_subscribed", self._on_track)
        # Tracks published before we joined may already be subscribed.
        for participant in self.room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track(publication.track, publication, participant)

    def _follow_speakers(self) -> None:
        schedule = SpeakerSchedule(self.media.speaker_turn_s, self.publishers)
        if not schedule.active:
            return
        try:
            identities = slot_identities(self.plan.speaker, self.publishers)
        except ValueError as exc:
            self.result.errors.append(f"cannot follow the simulated speakers: {exc}")
            return
        follow = SpeakerFollow(schedule, identities, time.time())
        self.follow = follow

        def changed(speakers: list[rtc.Participant]) -> None:
            follow.observe([p.identity for p in speakers], time.time())

        self.room.on("active_speakers_changed", changed)

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if publication.sid in self._subscribed:
            return
        kind = "audio" if track.kind == rtc.TrackKind.KIND_AUDIO else "video"
        self._subscribed[publication.sid] = _Subscribed(
            track, participant.identity, kind, source_name(publication.source), time.perf_counter()
        )
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._on_audio(track, publication, participant)
            return
        if track.kind != rtc.TrackKind.KIND_VIDEO:
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

    def _on_audio(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        self.result.audio_tracks += 1
        probe = None
        if self.media.audio_markers:
            probe = AudioProbe(participant.identity, publication.sid, self._log)
            self.audio[publication.sid] = probe
        # Audio-only, the first frame is an audio one: listen until it comes.
        first = not self.media.video and not self._first_frame.is_set()
        if probe is not None or first:
            self.spawn(self._listen(track, probe), f"audio<-{participant.identity}")

    async def _listen(self, track: rtc.Track, probe: AudioProbe | None) -> None:
        """Read the track: its first frame (audio-only runs) and, with a probe, its markers.
        Without markers, stop at the first frame: WebRTC stats count the rest."""
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                if not self.media.video:
                    self._frame_arrived()
                if probe is None:
                    return
                probe.feed(np.frombuffer(event.frame.data, dtype=np.int16), time.time())
        finally:
            await stream.aclose()

    def _frame_arrived(self) -> None:
        if self._first_frame.is_set():
            return
        self._first_frame.set()
        self.result.first_frame_ms = round((time.perf_counter() - self._started) * 1000, 2)
        if self._on_first_frame is not None:
            self._on_first_frame(self)

    def _layout_quality(self, sender: str) -> rtc.VideoQuality.ValueType:
        if self.media.layout is Layout.SPEAKER:
            return _QUALITIES["high" if sender == self.plan.speaker else "low"]
        return _QUALITIES["medium" if self.plan.tiles <= 4 else "low"]

    async def _watch(self, track: rtc.Track, probe: FrameProbe) -> None:
        async def first() -> None:
            await probe.size_changed.wait()
            self._frame_arrived()

        self.spawn(first(), "first-frame")
        await probe.run(track)

    async def _verify_switches(
        self, publication: rtc.RemoteTrackPublication, probe: FrameProbe
    ) -> None:
        """LOW, MEDIUM, HIGH in turn on the speaker's camera; then the speaker layout gets
        its own layer back."""

        def ask(quality: str) -> None:
            publication.set_video_quality(_QUALITIES[quality])

        await probe.size_changed.wait()
        await verify_switches(
            probe,
            ask,
            publication.width or self.media.width,
            self.media.switch_timeout_s,
            self.result.switches,
            self.result.errors,
        )
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
        record_follow(self.follow, result, time.time())
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
        await self._collect_tracks()

    async def _poll_tracks(self) -> None:
        while True:
            await asyncio.sleep(_TRACK_STATS_S)
            for sub in list(self._subscribed.values()):
                await self._read_track(sub)

    async def _read_track(self, sub: _Subscribed) -> None:
        """Each track's figures come from its own receiver's stats: the room's inbound-rtp
        streams cannot be told apart by track (their ``track_identifier`` is the SDK's own
        id, not the SFU's track sid)."""
        try:
            streams = inbound_streams(await sub.track.get_stats())
        except Exception as exc:  # the SDK raises a bare Exception once a track is gone
            logger.debug(
                "[%s/%s] stats from %s: %r", self.plan.room, self.plan.identity, sub.sender, exc
            )
            return
        if streams:
            sub.streams, sub.read_at = streams, time.perf_counter()

    async def _collect_tracks(self) -> None:
        for sid, sub in self._subscribed.items():
            await self._read_track(sub)
            self.result.tracks.append(self._track_result(sid, sub))

    def _track_result(self, sid: str, sub: _Subscribed) -> TrackResult:
        streams, span_s = sub.streams, sub.read_at - sub.at
        got = sum(s.bytes_received for s in streams)
        track = TrackResult(
            sub.sender,
            sid,
            sub.kind,
            sub.source,
            packets_received=sum(s.packets_received for s in streams),
            packets_lost=sum(max(s.packets_lost, 0) for s in streams),
            bytes_received=got,
            bitrate_kbps=round(got * 8 / span_s / 1000, 1) if span_s > 0 and streams else None,
            jitter_ms=(
                round(1000 * sum(s.jitter_s for s in streams) / len(streams), 3)
                if streams
                else None
            ),
        )
        probe = self.video.get(sid)
        if probe is not None:
            track.frames, track.freezes = probe.frames, probe.freezes
            track.width, track.height = probe.width, probe.height
        elif sub.kind == "video" and streams:
            last = streams[-1]
            track.freezes = sum(s.freeze_count for s in streams)
            track.width, track.height = last.frame_width, last.frame_height
        return track
