"""The load run's light members, on our own WebRTC client (``synthetic/wire``):

- ``LightSubscriber`` counts RTP without decoding. It keeps the measures that need no
  pixels: join and first-frame times, bitrate, loss, jitter, freezes from frame arrival
  times, and the received picture size (from key frame headers), so it can verify simulcast
  layer switches too. Latency from the frames' markers needs a decoding subscriber.
- ``LightPublisher`` sends pre-encoded simulcast video and pre-encoded Opus.

Both have the SDK members' shape (``start``, ``stop``, ``result``), so the worker runs
either kind the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from talkplatform_agents.synthetic.clips import AudioClip
from talkplatform_agents.synthetic.load.members import MemberPlan, expected_tracks
from talkplatform_agents.synthetic.load.report import MAX_SAMPLES, ParticipantResult, TrackResult
from talkplatform_agents.synthetic.load.speakers import (
    SpeakerFollow,
    SpeakerSchedule,
    record_follow,
    slot_identities,
)
from talkplatform_agents.synthetic.load.spec import Layout, MediaOptions
from talkplatform_agents.synthetic.load.switches import verify_switches
from talkplatform_agents.synthetic.probes import MarkerLog
from talkplatform_agents.synthetic.wire import LightClient, ReceivedTrack, Speaker
from talkplatform_agents.synthetic.wire.rtcp import track_source
from talkplatform_agents.synthetic.wire.rtp import StreamStats
from talkplatform_agents.synthetic.wire.sender import AudioSend, LightSender, VideoSend

__all__ = ["LightMedia", "LightPublisher", "LightSubscriber"]

logger = logging.getLogger(__name__)

_SOURCES = {"video": "camera", "audio": "microphone"}  # what a light publisher sends
_RECHECK_S = 1.0


@dataclass(frozen=True)
class LightMedia:
    """What light publishers send, encoded once by the runner (or read from the clip
    cache) and handed to every worker."""

    video: VideoSend | None
    audio: dict[int, AudioClip]  # by the publisher's marker tag
    from_cache: bool = False  # every clip was read from the cache
    cpu_s: float = 0.0  # what preparing them cost


class _LightMember:
    """Join timing, results and leaving, shared by both light roles."""

    def __init__(
        self, url: str, plan: MemberPlan, media: MediaOptions, timeout_s: float, subscribe: bool
    ) -> None:
        self.plan, self.media = plan, media
        self.result = ParticipantResult(plan.identity, plan.room, plan.role)
        self.client = LightClient(
            url,
            plan.token,
            label=plan.identity,
            auto_subscribe=subscribe,
            on_speakers=self._on_speakers,
            on_first_frame=self._on_first_frame,
        )
        self._timeout_s = timeout_s
        self._started = 0.0
        self._joined_at = 0.0
        self._stopped = False

    async def start(self) -> None:
        """Join and set up; raises on a failed join."""
        self._started = time.perf_counter()
        join_s = await self.client.join(self._timeout_s)
        self._joined_at = time.perf_counter()
        self.result.joined = True
        self.result.join_ms = round(join_s * 1000, 2)
        logger.info(
            "[%s/%s] joined (light) in %.0f ms",
            self.plan.room,
            self.plan.identity,
            self.result.join_ms,
        )
        await self.setup()

    async def setup(self) -> None:
        """What the role does once joined."""

    def collect(self) -> None:
        """Fill ``result`` with what was measured (before leaving)."""

    async def stop(self) -> None:
        """Measure, then close everything and leave. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        lost = self.client.lost_connection()
        if lost is not None:
            self.result.errors.append(f"left the room before the end: {lost}")
        if self.result.joined:
            try:
                self.collect()
            except Exception as exc:
                self.result.errors.append(f"collecting results failed: {exc!r}")
        await self.client.aclose()
        self.result.errors.extend(self.client.errors)
        if self.result.joined:
            self.result.left_at = time.time()

    def _on_speakers(self, speakers: list[Speaker], at: float) -> None:
        del speakers, at

    def _on_first_frame(self, track: ReceivedTrack) -> None:
        del track


@dataclass
class _Sizes:
    """A received video stream's picture size, as ``verify_switches`` watches it."""

    stats: StreamStats
    size_changed: asyncio.Event

    @property
    def width(self) -> int:
        return self.stats.width

    @property
    def height(self) -> int:
        return self.stats.height


def _track_result(track: ReceivedTrack) -> TrackResult:
    s = track.stats
    span = (s.last_at - s.first_at) if s.first_at is not None and s.last_at is not None else 0
    return TrackResult(
        track.sender,
        track.track_sid,
        track.kind,
        track.source or "unknown",
        packets_received=s.packets,
        packets_lost=s.lost,
        bytes_received=s.octets,
        bitrate_kbps=round(s.octets * 8 / span / 1000, 1) if span > 0 else None,
        jitter_ms=round(s.jitter_ms, 3),
        frames=s.frames if track.kind == "video" else 0,
        freezes=s.freezes,
        width=s.width,
        height=s.height,
    )


class LightSubscriber(_LightMember):
    def __init__(
        self,
        url: str,
        plan: MemberPlan,
        media: MediaOptions,
        timeout_s: float,
        on_first_frame: Callable[[LightSubscriber], None] | None = None,
    ) -> None:
        super().__init__(url, plan, media, timeout_s, subscribe=True)
        self.result.client = "light"
        self.result.tracks_expected = expected_tracks(media, plan.tiles)
        self._notify_first = on_first_frame
        self._layouts: set[str] = set()
        self._switch_started = False
        self._speaking: dict[str, float] = {}  # identity -> level, of the active speakers
        self.follow: SpeakerFollow | None = None
        schedule = SpeakerSchedule(media.speaker_turn_s, plan.tiles)
        if schedule.active:
            try:
                identities = slot_identities(plan.speaker, plan.tiles)
            except ValueError as exc:
                self.result.errors.append(f"cannot follow the simulated speakers: {exc}")
            else:
                self.follow = SpeakerFollow(schedule, identities, time.time())

    async def setup(self) -> None:
        self.client.spawn(self._follow_tracks(), "layout")

    def _on_speakers(self, speakers: list[Speaker], at: float) -> None:
        # The server sends only the speakers whose state changed: keep the whole list, as
        # the SDKs do, loudest first.
        for speaker in speakers:
            if speaker.active:
                self._speaking[speaker.identity] = speaker.level
            else:
                self._speaking.pop(speaker.identity, None)
        if self.follow is not None:
            ranked = sorted(self._speaking, key=self._speaking.__getitem__, reverse=True)
            self.follow.observe(ranked, at)

    def _on_first_frame(self, track: ReceivedTrack) -> None:
        wanted = "video" if self.media.video else "audio"
        if track.kind != wanted or self.result.first_frame_ms is not None:
            return
        self.result.first_frame_ms = round((time.perf_counter() - self._started) * 1000, 2)
        if self._notify_first is not None:
            self._notify_first(self)

    async def _follow_tracks(self) -> None:
        """Ask each new video track for the layer the layout shows it at; verify the
        switches on the speaker's camera. A track whose publisher the server has not
        described yet is looked at again a moment later."""
        client = self.client
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.new_track.wait(), _RECHECK_S)
            client.new_track.clear()
            for track in list(client.tracks.values()):
                if track.track_sid in self._layouts:
                    continue
                info = client.signal.tracks.get(track.track_sid)
                if info is None:
                    continue  # the participant update is on its way
                self._layouts.add(track.track_sid)
                track.sender = track.sender or client.signal.owners.get(track.track_sid, "")
                track.source = track.source or track_source(info.source)
                if track.kind != "video" or not info.simulcast or track.source == "screen_share":
                    continue
                await client.request_quality(track.track_sid, self._layout_quality(track.sender))
                switch = self.media.switch_layers and track.sender == self.plan.speaker
                if switch and not self._switch_started:
                    self._switch_started = True
                    client.spawn(self._verify(track, info.width), "layer-switch")

    def _layout_quality(self, sender: str) -> str:
        if self.media.layout is Layout.SPEAKER:
            return "high" if sender == self.plan.speaker else "low"
        return "medium" if self.plan.tiles <= 4 else "low"

    async def _verify(self, track: ReceivedTrack, full_width: int) -> None:
        changed = asyncio.Event()
        if track.stats.width:
            changed.set()
        track.stats.on_size = changed.set
        client = self.client

        def ask(quality: str) -> None:
            client.spawn(client.request_quality(track.track_sid, quality), f"ask {quality}")

        await verify_switches(
            _Sizes(track.stats, changed),
            ask,
            full_width or self.media.width,
            self.media.switch_timeout_s,
            self.result.switches,
            self.result.errors,
        )
        ask(self._layout_quality(self.plan.speaker))

    def collect(self) -> None:
        result = self.result
        tracks = list(self.client.tracks.values())
        videos = [t.stats for t in tracks if t.kind == "video"]
        result.video_tracks = len(videos)
        result.audio_tracks = sum(t.kind == "audio" for t in tracks)
        result.frames = sum(s.frames for s in videos)
        result.freezes = sum(s.freezes for s in videos)
        result.freeze_ms = round(sum(s.freeze_ms for s in videos), 1)
        rates = [f for s in videos if (f := s.fps()) is not None]
        result.fps = round(sum(rates) / len(rates), 2) if rates else None
        streams = [t.stats for t in tracks]
        result.packets_received = sum(s.packets for s in streams)
        result.packets_lost = sum(s.lost for s in streams)
        if streams:
            result.jitter_ms = round(sum(s.jitter_ms for s in streams) / len(streams), 3)
        span = time.perf_counter() - self._joined_at
        if span > 0:
            result.bitrate_kbps = round(sum(s.octets for s in streams) * 8 / span / 1000, 1)
        result.tracks = [_track_result(t) for t in tracks]
        # libwebrtc's audio clock runs some ms ahead of its capture (negative figures from an
        # SDK publisher): video times frames when there is video.
        timed = videos or streams
        latencies = [v for s in timed for v in s.latencies]
        step = max(len(latencies) // MAX_SAMPLES, 1)
        result.rtp_latency_ms = [round(v, 2) for v in latencies[::step]]
        record_follow(self.follow, result, time.time())


class LightPublisher(_LightMember):
    def __init__(
        self,
        url: str,
        plan: MemberPlan,
        media: MediaOptions,
        timeout_s: float,
        marker_log: MarkerLog,
        light: LightMedia,
        publishers: int,
    ) -> None:
        super().__init__(url, plan, media, timeout_s, subscribe=False)
        self.result.client = "light"
        audio = None
        clip = light.audio.get(plan.tag)
        if media.audio and clip is not None:
            schedule = SpeakerSchedule(media.speaker_turn_s, publishers)
            slot = plan.slot

            def loud_now(at: float) -> bool:
                return schedule.loud(slot, at)

            audio = AudioSend(plan.tag, clip.loud, clip.quiet, loud_now, frame_ms=clip.frame_ms)
        self._sender = LightSender(self.client, light.video, audio, marker_log)

    async def setup(self) -> None:
        await self._sender.start(self._timeout_s)
        tracks = self._sender.counts.tracks
        self.result.tracks_published = len(tracks)
        self.result.tracks = [
            TrackResult(self.plan.identity, sid, kind, _SOURCES[kind])
            for sid, kind in tracks.items()
        ]

    def collect(self) -> None:
        counts = self._sender.counts
        self.result.frames_sent = counts.frames_sent
        if counts.send_failures:
            self.result.errors.append(f"{counts.send_failures} packets could not be sent")
