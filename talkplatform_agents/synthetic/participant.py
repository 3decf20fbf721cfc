"""The synthetic participant: a plain ``rtc.Room`` client that publishes a marked tone and a
marked test pattern, measures what it receives, and sends and receives data.

It joins as a standard participant, never as an agent job, so LiveKit counts it as a room
member. It knows LiveKit and tokens only: nothing of the service, the store or the bots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.synthetic.audio import ToneConfig
from talkplatform_agents.synthetic.client import ClientState, Draw, RoomClient
from talkplatform_agents.synthetic.probes import AudioProbe, MarkerLog, VideoProbe
from talkplatform_agents.synthetic.video import PatternGenerator

__all__ = [
    "DataMessage",
    "ParticipantConfig",
    "SyntheticError",
    "SyntheticParticipant",
    "TextMessage",
]

logger = logging.getLogger(__name__)


class SyntheticError(TalkPlatformError):
    """A synthetic participant could not do what it was asked; says which participant."""

    def __init__(self, identity: str, message: str) -> None:
        super().__init__(f"[{identity}] {message}")
        self.identity = identity


@dataclass(frozen=True)
class ParticipantConfig:
    url: str
    token: str
    publish_audio: bool = True
    publish_video: bool = True
    width: int = 320
    height: int = 180
    fps: int = 15
    tone: ToneConfig = field(default_factory=ToneConfig)
    black_video: bool = False  # publish black frames: a covered camera
    subscribe: bool = True  # False: publish only, receive and measure nothing (a light client)
    connect_timeout_s: float = 10.0
    label: str = "synthetic"  # for log lines until the identity is known

    def __post_init__(self) -> None:
        if self.publish_video:
            PatternGenerator(self.width, self.height)  # raises ValueError for a bad size
        if not 1 <= self.fps <= 60:
            raise ValueError(f"fps must be 1..60, got {self.fps}")


@dataclass(frozen=True)
class DataMessage:
    sender: str | None
    topic: str | None
    payload: bytes
    received_at: float


@dataclass(frozen=True)
class TextMessage:
    """A whole text stream as received."""

    sender: str
    topic: str
    stream_id: str
    text: str
    attributes: dict[str, str]
    received_at: float
    opened_at: float  # when its header arrived: streams are read concurrently


class SyntheticParticipant:
    def __init__(self, config: ParticipantConfig, marker_log: MarkerLog | None = None) -> None:
        self.config = config
        self.marker_log = marker_log or MarkerLog()
        self._client = RoomClient(config.label, self._task_failed)
        self.room = self._client.room
        self.audio_probes: dict[str, AudioProbe] = {}
        self.video_probes: dict[str, VideoProbe] = {}
        self.data: asyncio.Queue[DataMessage] = asyncio.Queue()
        self.join_time_s: float | None = None
        # Linear gain on the published tone; 0 is a silent microphone. Change it any time.
        self.audio_gain = 1.0
        self._tone_pump: asyncio.Task[None] | None = None
        self._marker_seen = asyncio.Event()
        self.room.on("track_subscribed", self._on_track_subscribed)
        self.room.on("data_received", self._on_data)

    @property
    def identity(self) -> str:
        return self.room.local_participant.identity if self._client.running else ""

    @property
    def _tag(self) -> str:
        return self.identity or self.config.label

    async def start(self) -> None:
        """Join, then publish. Returns once connected and published."""
        state = self._client.state
        if state is not ClientState.NEW:
            raise SyntheticError(self._tag, f"cannot start a participant that is {state}")
        cfg = self.config
        try:
            self.join_time_s = await self._client.join(
                cfg.url, cfg.token, auto_subscribe=cfg.subscribe, timeout_s=cfg.connect_timeout_s
            )
        except rtc.ConnectError as exc:
            raise SyntheticError(self._tag, f"could not join {cfg.url}: {exc}") from exc
        logger.info("[%s] joined %s in %.3fs", self._tag, self.room.name, self.join_time_s)
        try:
            await self.publish_media(
                audio=self.config.publish_audio, video=self.config.publish_video
            )
        except BaseException:
            await self.stop()  # connected but half published: leave, own nothing
            raise

    async def stop(self) -> None:
        """Cancel and await every task, then leave. Idempotent."""
        await self._client.leave()

    async def __aenter__(self) -> SyntheticParticipant:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def send_data(
        self,
        payload: bytes,
        *,
        topic: str | None = None,
        to: list[str] | None = None,
        reliable: bool = True,
    ) -> None:
        await self.room.local_participant.publish_data(
            payload, reliable=reliable, destination_identities=to or [], topic=topic or ""
        )

    async def rpc(
        self, destination: str, method: str, payload: str = "", response_timeout_s: float = 10
    ) -> str:
        """Call ``method`` on ``destination``; raises ``rtc.RpcError`` as the callee answers."""
        return await self.room.local_participant.perform_rpc(
            destination_identity=destination,
            method=method,
            payload=payload,
            response_timeout=response_timeout_s,
        )

    async def send_text(
        self,
        text: str,
        *,
        topic: str,
        to: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
    ) -> str:
        """Send ``text`` as one text stream; returns its id. Reusing an id re-sends under it
        (how LiveKit's chat marks an edit)."""
        writer = await self.room.local_participant.stream_text(
            destination_identities=to, topic=topic, attributes=attributes, stream_id=stream_id
        )
        try:
            await writer.write(text)
        finally:
            await writer.aclose()
        return writer.info.stream_id

    def listen_text(self, topic: str) -> asyncio.Queue[TextMessage]:
        """Collect whole text streams on ``topic`` from now on, in arrival order."""
        queue: asyncio.Queue[TextMessage] = asyncio.Queue()

        def opened(reader: rtc.TextStreamReader, sender: str) -> None:
            reading = self._read_text(reader, sender, queue, time.time())
            self._spawn(reading, f"text<-{sender}")

        self.room.register_text_stream_handler(topic, opened)
        return queue

    async def _read_text(
        self,
        reader: rtc.TextStreamReader,
        sender: str,
        queue: asyncio.Queue[TextMessage],
        opened_at: float,
    ) -> None:
        try:
            text = await reader.read_all()
        finally:
            reader.close()
        info = reader.info
        queue.put_nowait(
            TextMessage(
                sender,
                info.topic,
                info.stream_id,
                text,
                dict(info.attributes or {}),
                time.time(),
                opened_at,
            )
        )

    async def next_data(self, topic: str) -> DataMessage:
        """The next data packet on ``topic``; packets on other topics go back in the queue."""
        skipped: list[DataMessage] = []
        try:
            while True:
                message = await self.data.get()
                if message.topic == topic:
                    return message
                skipped.append(message)
        finally:
            for message in skipped:
                self.data.put_nowait(message)

    async def wait_for_audio_marker(
        self, *, sender: str | None = None, tag: int | None = None
    ) -> AudioProbe:
        """Wait until a remote audio track (from ``sender``, if given) carries a marker with
        ``tag`` (any, if None). Callers bound the wait with ``asyncio.timeout``."""

        def matching() -> AudioProbe | None:
            for probe in self.audio_probes.values():
                if sender is not None and probe.sender != sender:
                    continue
                if any(tag is None or m.tag == tag for m in probe.markers):
                    return probe
            return None

        while True:
            self._marker_seen.clear()
            if (probe := matching()) is not None:
                return probe
            await self._marker_seen.wait()

    # -- publishing ---------------------------------------------------------------------

    async def publish_media(self, *, audio: bool, video: bool) -> None:
        """Publish the marked tone and/or the test pattern (once joined)."""
        if not self._client.running:
            raise SyntheticError(self._tag, f"cannot publish while {self._client.state}")
        if audio:
            await self._publish_audio()
        if video:
            await self._publish_video()

    async def unpublish_audio(self) -> None:
        """Stop the tone and unpublish its track: a microphone switched off. Publishing it
        again (``publish_media(audio=True, video=False)``) makes a new track (a new sid)
        whose markers count from 0."""
        pump, self._tone_pump = self._tone_pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.wait([pump])
        local = self.room.local_participant
        for publication in list(local.track_publications.values()):
            if publication.source == rtc.TrackSource.SOURCE_MICROPHONE:
                await local.unpublish_track(publication.sid)

    async def _publish_audio(self) -> None:
        if self._tone_pump is not None:
            raise SyntheticError(self._tag, "the tone is published already")
        self._tone_pump = await self._client.publish_tone(
            "synthetic-tone", self.config.tone, self.marker_log, lambda: self.audio_gain
        )

    async def _publish_video(self) -> None:
        cfg = self.config
        draw: Draw = PatternGenerator(cfg.width, cfg.height).frame
        if cfg.black_video:
            black = np.zeros((cfg.height, cfg.width, 4), dtype=np.uint8)

            def draw(_index: int, _ms: int) -> np.ndarray:
                return black

        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=False,
            video_encoding=rtc.VideoEncoding(max_bitrate=300_000, max_framerate=cfg.fps),
        )
        source = rtc.VideoSource(cfg.width, cfg.height)
        await self._client.publish_frames(
            "synthetic-pattern", source, options, draw, cfg.fps, what="video"
        )

    # -- receiving ----------------------------------------------------------------------

    def _on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            audio = AudioProbe(
                participant.identity, publication.sid, self.marker_log, self._marker_seen
            )
            self.audio_probes[publication.sid] = audio
            self._spawn(audio.run(track), f"audio<-{participant.identity}")
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            video = VideoProbe(participant.identity, publication.sid)
            self.video_probes[publication.sid] = video
            self._spawn(video.run(track), f"video<-{participant.identity}")

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else None
        self.data.put_nowait(DataMessage(sender, packet.topic, packet.data, time.time()))

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._client.spawn(coro, what)

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] %s failed: %r", self._tag, what, exc)
