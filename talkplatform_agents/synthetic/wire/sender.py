"""A light client's publisher connection: pre-encoded video, simulcast by RID (every layer
of a clip on one timestamp grid), and pre-encoded Opus with its audio level and tone markers.

Nothing is encoded here: each tick sends the clip's next frame of each layer; a layer on
which the SFU asks for a key frame (PLI or FIR) starts its loop again, at its key frame. The
audio level goes into every Opus packet, as a browser's does, so that the SFU's speaker
detection works; with simulated speakers the loud or quiet variant of the clip is sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpSenderInfo, RtcpSrPacket
from livekit.protocol import models as lk_models
from livekit.protocol import rtc as lk_rtc

from talkplatform_agents.synthetic.client import ticks
from talkplatform_agents.synthetic.probes import MarkerLog
from talkplatform_agents.synthetic.wire.client import LightClient
from talkplatform_agents.synthetic.wire.peer import LightPeer, PeerError, ice_servers
from talkplatform_agents.synthetic.wire.rtp import (
    H264Packetizer,
    OpusPacketizer,
    Vp8Packetizer,
)
from talkplatform_agents.synthetic.wire.sdp import (
    AUDIO_LEVEL_URI,
    MID_URI,
    RID_URI,
    PublishSection,
    extension_id,
    parse_sections,
)

__all__ = ["AudioSend", "LightSender", "VideoSend"]

logger = logging.getLogger(__name__)

_RIDS = ("q", "h", "f")  # LiveKit's names for the low, medium and high layers
_QUALITIES = (
    lk_models.VideoQuality.LOW,
    lk_models.VideoQuality.MEDIUM,
    lk_models.VideoQuality.HIGH,
)
_SR_INTERVAL_S = 1.0
_PLI_FMT, _FIR_FMT = 1, 4
_NTP_EPOCH = 2_208_988_800


class _Frame(Protocol):
    @property
    def data(self) -> bytes: ...
    @property
    def keyframe(self) -> bool: ...


class _Layer(Protocol):
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def frames(self) -> Sequence[_Frame]: ...
    @property
    def bytes_per_second(self) -> float: ...


class _OpusFrame(Protocol):
    @property
    def data(self) -> bytes: ...
    @property
    def level(self) -> int: ...
    @property
    def markers(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class VideoSend:
    codec: str  # vp8 or h264
    fps: int
    layers: Sequence[_Layer]  # low to high; one layer publishes without simulcast
    name: str = "load-camera"


@dataclass(frozen=True)
class AudioSend:
    tag: int
    loud: Sequence[_OpusFrame]
    quiet: Sequence[_OpusFrame]
    loud_now: Callable[[float], bool]  # at wall time t, is this publisher's turn on?
    name: str = "load-tone"
    frame_ms: int = 20


@dataclass
class _VideoStream:
    layer: _Layer
    packetizer: Vp8Packetizer | H264Packetizer
    key_wanted: bool = False
    position: int = 0  # the next frame of the loop


@dataclass
class SenderCounts:
    frames_sent: int = 0
    packets_sent: int = 0
    key_frames_sent: int = 0
    key_requests: int = 0
    send_failures: int = 0
    tracks: dict[str, str] = field(default_factory=dict)  # track sid -> kind


class LightSender:
    """Publish ``video`` and/or ``audio`` from a joined ``client``; ``marker_log`` hears when
    each tone marker leaves."""

    def __init__(
        self,
        client: LightClient,
        video: VideoSend | None,
        audio: AudioSend | None,
        marker_log: MarkerLog,
    ) -> None:
        self._client = client
        self._video, self._audio, self._log = video, audio, marker_log
        self.counts = SenderCounts()
        self.peer: LightPeer | None = None
        self._streams: dict[int, _VideoStream] = {}
        self._audio_ssrc = random.getrandbits(32)
        self._opus: OpusPacketizer | None = None
        self._stream_id = f"tp-{secrets.token_hex(4)}"
        self._started = time.time()
        self._audio_last: tuple[int, float] | None = None  # (RTP time, wall) of the last frame
        self._video_base = random.getrandbits(32)

    async def start(self, timeout_s: float) -> None:
        """Announce the tracks, negotiate, connect; then the pumps run as the client's
        tasks until it closes."""
        client = self._client
        join = client.signal.join
        assert join is not None, "join before publishing"
        sections: list[PublishSection] = []
        if self._video is not None:
            sections.append(await self._announce_video(self._video))
        if self._audio is not None:
            sections.append(await self._announce_audio(self._audio))
        peer = LightPeer(
            f"[{client.room}] {client.label} publisher",
            ice_servers(list(join.ice_servers)),
            lambda _data, _at: None,
            self._on_rtcp,
        )
        self.peer = client.publisher = peer
        offer = await peer.offer(self._stream_id, sections)
        self._bind(offer)
        answer = await client.signal.offer(offer, timeout_s)
        refused = [
            s.kind for s in parse_sections(answer) if s.port == 0 or s.direction == "inactive"
        ]
        if refused:
            raise PeerError(f"[{client.room}] {client.label}: the server refused our {refused}")
        await peer.accept(answer)
        await peer.wait_connected(timeout_s)
        if self._video is not None:
            client.spawn(self._pump_video(self._video), "video")
        if self._audio is not None:
            client.spawn(self._pump_audio(self._audio), "audio")
        client.spawn(self._report(), "sender-reports")

    # -- announcing -----------------------------------------------------------------------

    async def _announce_video(self, video: VideoSend) -> PublishSection:
        cid = f"{self._stream_id}-video"
        top = video.layers[-1]
        # One layer is the high one; simulcast layers count up from low, as LiveKit's SDKs.
        qualities = _QUALITIES[-1:] if len(video.layers) == 1 else _QUALITIES
        layers = [
            lk_models.VideoLayer(
                quality=quality,
                width=layer.width,
                height=layer.height,
                bitrate=int(layer.bytes_per_second * 8),
                rid=rid if len(video.layers) > 1 else "",
            )
            for quality, layer, rid in zip(qualities, video.layers, _RIDS, strict=False)
        ]
        request = lk_rtc.AddTrackRequest(
            cid=cid,
            name=video.name,
            type=lk_models.TrackType.VIDEO,
            width=top.width,
            height=top.height,
            source=lk_models.TrackSource.CAMERA,
            layers=layers,
            simulcast_codecs=[lk_rtc.SimulcastCodec(codec=video.codec, cid=cid)],
        )
        info = await self._client.signal.add_track(request)
        self.counts.tracks[info.sid] = "video"
        rids = _RIDS[: len(video.layers)] if len(video.layers) > 1 else ()
        packetizer = Vp8Packetizer if video.codec == "vp8" else H264Packetizer
        for layer in video.layers:
            ssrc = random.getrandbits(32)
            # Payload type and extensions are bound once the offer is made (``_bind``).
            self._streams[ssrc] = _VideoStream(layer, packetizer(ssrc, 0, []))
        return PublishSection("video", cid, video.codec, rids=rids, ssrc=0 if rids else ssrc)

    async def _announce_audio(self, audio: AudioSend) -> PublishSection:
        cid = f"{self._stream_id}-audio"
        request = lk_rtc.AddTrackRequest(
            cid=cid,
            name=audio.name,
            type=lk_models.TrackType.AUDIO,
            source=lk_models.TrackSource.MICROPHONE,
        )
        info = await self._client.signal.add_track(request)
        self.counts.tracks[info.sid] = "audio"
        self._opus = OpusPacketizer(self._audio_ssrc, 0, [])
        self._opus.level_id = extension_id(AUDIO_LEVEL_URI)
        return PublishSection("audio", cid, "opus", ssrc=self._audio_ssrc)

    def _bind(self, offer: str) -> None:
        """Our offer names one payload type and the mid of each section (the answer takes
        them as they are): the packets carry them."""
        for section in parse_sections(offer):
            pt, mid = next(iter(section.codecs)), section.mid.encode()
            if section.kind == "video":
                layered = len(self._streams) > 1
                for stream, rid in zip(self._streams.values(), _RIDS, strict=False):
                    extensions = [(extension_id(MID_URI), mid)]
                    if layered:
                        extensions.append((extension_id(RID_URI), rid.encode()))
                    stream.packetizer.bind(pt, extensions)
            elif self._opus is not None:
                self._opus.bind(pt, [(extension_id(MID_URI), mid)])

    # -- sending --------------------------------------------------------------------------

    async def _send(self, packet: bytes) -> None:
        assert self.peer is not None
        if await self.peer.send(packet):
            self.counts.packets_sent += 1
        else:
            self.counts.send_failures += 1

    async def _pump_video(self, video: VideoSend) -> None:
        async for now in ticks(1 / video.fps):
            timestamp = self._video_clock(now)
            for stream in self._streams.values():
                frames = stream.layer.frames
                if stream.key_wanted:
                    # Start the loop again: its first frame is a key frame, and every frame
                    # after it references exactly what its encoder coded it against (a key
                    # frame spliced in mid-loop would leave the next ones drifting).
                    stream.key_wanted = False
                    if stream.position % len(frames):
                        stream.position = 0
                        self.counts.key_frames_sent += 1
                data = frames[stream.position % len(frames)].data
                stream.position += 1
                for packet in stream.packetizer.frame(data, timestamp):
                    await self._send(packet)
            self.counts.frames_sent += 1

    async def _pump_audio(self, audio: AudioSend) -> None:
        assert self._opus is not None
        opus = self._opus
        timestamp = random.getrandbits(32)
        per_frame = 48 * audio.frame_ms
        index = 0
        async for now in ticks(audio.frame_ms / 1000):
            loud = audio.loud_now(now)
            frames = audio.loud if loud else audio.quiet
            frame = frames[index % len(frames)]
            for seq in frame.markers:
                self._log.record(audio.tag, seq, now)
            await self._send(opus.frame(frame.data, timestamp, frame.level))
            self._audio_last = (timestamp, now)
            timestamp = (timestamp + per_frame) & 0xFFFFFFFF
            index += 1

    def _video_clock(self, at: float) -> int:
        """Every layer's 90 kHz RTP clock at wall time ``at``: one clock for all layers."""
        return (self._video_base + int((at - self._started) * 90_000)) & 0xFFFFFFFF

    # -- RTCP -----------------------------------------------------------------------------

    def _on_rtcp(self, data: bytes) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (_PLI_FMT, _FIR_FMT):
                stream = self._streams.get(packet.media_ssrc)
                if packet.fmt == _FIR_FMT:
                    # FIR names its target in the FCI: SSRC (4 bytes), then a sequence number.
                    target = int.from_bytes(packet.fci[:4], "big") if packet.fci else 0
                    stream = self._streams.get(target, stream)
                if stream is not None:
                    stream.key_wanted = True
                    self.counts.key_requests += 1

    async def _report(self) -> None:
        """Sender reports: the SFU maps each layer's RTP time to wall time with them, which
        it needs to switch layers without a jump in the forwarded timestamps, and passes
        the mapping on, so that receivers can time each frame from capture to arrival."""
        while True:
            await asyncio.sleep(_SR_INTERVAL_S)
            now = time.time()
            ntp = int((now + _NTP_EPOCH) * (1 << 32))
            for ssrc, stream in list(self._streams.items()):
                p = stream.packetizer
                info = RtcpSenderInfo(ntp, self._video_clock(now), p.packets, p.octets)
                await self._send(bytes(RtcpSrPacket(ssrc=ssrc, sender_info=info)))
            if self._opus is not None and self._audio_last is not None:
                # Receivers time the audio with it too: capture to arrival, undecoded.
                rtp, sent = self._audio_last
                rtp = (rtp + int((now - sent) * 48_000)) & 0xFFFFFFFF
                info = RtcpSenderInfo(ntp, rtp, self._opus.packets, self._opus.octets)
                await self._send(bytes(RtcpSrPacket(ssrc=self._opus.ssrc, sender_info=info)))
