"""The synthetic participant: a plain ``rtc.Room`` client that publishes a marked tone and a
marked test pattern, measures what it receives, and sends and receives data.

It joins as a standard participant, never as an agent job, so LiveKit counts it as a room
member. It knows LiveKit and tokens only: nothing of the service, the store or the bots.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from talkplatform_agents.synthetic.audio import SAMPLE_RATE, ToneConfig, ToneGenerator
from talkplatform_agents.synthetic.probes import AudioProbe, MarkerLog, VideoProbe
from talkplatform_agents.synthetic.video import PatternGenerator
from talkplatform_agents.tasks import TaskSet

__all__ = [
    "DataMessage",
    "ParticipantConfig",
    "SyntheticError",
    "SyntheticParticipant",
    "TextMessage",
]

logger = logging.getLogger(__name__)

_FRAME_MS = 10
_MAX_BACKLOG_S = 0.03


class SyntheticError(Exception):
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


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class SyntheticParticipant:
    def __init__(self, config: ParticipantConfig, marker_log: MarkerLog | None = None) -> None:
        self.config = config
        self.marker_log = marker_log or MarkerLog()
        self.room = rtc.Room()
        self.audio_probes: dict[str, AudioProbe] = {}
        self.video_probes: dict[str, VideoProbe] = {}
        self.data: asyncio.Queue[DataMessage] = asyncio.Queue()
        self.join_time_s: float | None = None
        # Linear gain on the published tone; 0 is a silent microphone. Change it any time.
        self.audio_gain = 1.0
        self._tasks = TaskSet(config.label, self._task_failed)
        self._state = _State.NEW
        self._marker_seen = asyncio.Event()
        self.room.on("track_subscribed", self._on_track_subscribed)
        self.room.on("data_received", self._on_data)

    @property
    def identity(self) -> str:
        return self.room.local_participant.identity if self._state is _State.RUNNING else ""

    @property
    def _tag(self) -> str:
        return self.identity or self.config.label

    async def start(self) -> None:
        """Join, then publish. Returns once connected and published."""
        if self._state is not _State.NEW:
            raise SyntheticError(self._tag, f"cannot start a participant that is {self._state}")
        started = time.perf_counter()
        try:
            # No outer timeout: cancelling a join in flight leaves the native SDK working on
            # it (and able to panic the process later). Its per-attempt timeout bounds it.
            await self.room.connect(
                self.config.url,
                self.config.token,
                rtc.RoomOptions(auto_subscribe=True, connect_timeout=self.config.connect_timeout_s),
            )
        except rtc.ConnectError as exc:
            self._state = _State.STOPPED
            raise SyntheticError(self._tag, f"could not join {self.config.url}: {exc}") from exc
        self.join_time_s = time.perf_counter() - started
        self._state = _State.RUNNING
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
        if self._state is _State.STOPPED:
            return
        self._state = _State.STOPPED
        await self._tasks.aclose()
        if self.room.isconnected():  # disconnecting a room whose join failed upsets the SDK
            with contextlib.suppress(Exception):
                await self.room.disconnect()

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
        if self._state is not _State.RUNNING:
            raise SyntheticError(self._tag, f"cannot publish while {self._state}")
        if audio:
            await self._publish_audio()
        if video:
            await self._publish_video()

    async def _publish_audio(self) -> None:
        source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=50)
        track = rtc.LocalAudioTrack.create_audio_track("synthetic-tone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._spawn(self._pump_audio(source), "audio")

    async def _publish_video(self) -> None:
        cfg = self.config
        source = rtc.VideoSource(cfg.width, cfg.height)
        track = rtc.LocalVideoTrack.create_video_track("synthetic-pattern", source)
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=False,
            video_encoding=rtc.VideoEncoding(max_bitrate=300_000, max_framerate=cfg.fps),
        )
        await self.room.local_participant.publish_track(track, options)
        self._spawn(self._pump_video(source), "video")

    async def _pump_audio(self, source: rtc.AudioSource) -> None:
        generator = ToneGenerator(self.config.tone)
        per_frame = SAMPLE_RATE * _FRAME_MS // 1000
        tag = self.config.tone.tag
        async for _ in _ticks(_FRAME_MS / 1000):
            if source.queued_duration > _MAX_BACKLOG_S:
                # A microphone never bursts: after a stall, let the queue drain rather than
                # carry the backlog as latency for the rest of the call.
                continue
            chunk, starts = generator.next_chunk(per_frame)
            # When these samples enter WebRTC: after what is already queued.
            enters_at = time.time() + source.queued_duration
            for seq, _pos in starts:
                self.marker_log.record(tag, seq, enters_at)
            scaled = np.clip(chunk * (32767 * self.audio_gain), -32768, 32767)
            pcm = scaled.astype("<i2").tobytes()
            await source.capture_frame(rtc.AudioFrame(pcm, SAMPLE_RATE, 1, per_frame))

    async def _pump_video(self, source: rtc.VideoSource) -> None:
        cfg = self.config
        pattern = PatternGenerator(cfg.width, cfg.height)
        black = np.zeros((cfg.height, cfg.width, 4), dtype=np.uint8)
        index = 0
        async for _ in _ticks(1 / cfg.fps):
            now = time.time()
            image = black if cfg.black_video else pattern.frame(index, int(now * 1000))
            frame = rtc.VideoFrame(cfg.width, cfg.height, rtc.VideoBufferType.RGBA, image.tobytes())
            source.capture_frame(frame, timestamp_us=int(now * 1e6))
            index += 1

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
        if self._state is not _State.RUNNING:
            coro.close()
            return
        self._tasks.spawn(coro, what)

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] %s failed: %r", self._tag, what, exc)


async def _ticks(period: float) -> Any:
    """Yield on a fixed real-time grid; after a stall, skip ahead instead of bursting."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        yield None
        next_at += period
        delay = next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.2:
            next_at = loop.time()
