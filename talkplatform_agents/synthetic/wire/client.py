"""A light LiveKit participant: our signalling, a subscriber connection whose RTP is counted,
never decoded, and (for a publisher) a publisher connection of our own (``sender.py``).

It is a standard participant (never an agent), so LiveKit counts it as a room member. It
answers the server like an SDK would: receiver reports with loss and jitter, a bandwidth
estimate (REMB) so the SFU's allocator lets the layers it is asked for through, and a key
frame request for a video stream that has not started with one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiortc.rtp import (
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSrPacket,
    pack_remb_fci,
)
from livekit.protocol import models as lk_models

from talkplatform_agents.synthetic.wire.peer import LightPeer, ice_servers
from talkplatform_agents.synthetic.wire.rtp import StreamStats, parse_header
from talkplatform_agents.synthetic.wire.sdp import parse_sections
from talkplatform_agents.synthetic.wire.signalling import SignalSession, SpeakersHandler
from talkplatform_agents.tasks import TaskSet

__all__ = ["LightClient", "ReceivedTrack"]

logger = logging.getLogger(__name__)

_RTCP_INTERVAL_S = 1.0
_KEY_FRAME_WAIT_S = 1.0  # a video stream without a key frame by then gets a PLI
# What we tell the SFU we can receive: a LAN-class link, so its allocator never holds a
# layer back on our account (the load is what we want to see, not our estimate).
_REMB_BPS = 20_000_000
_CLOCK = {"opus": 48_000}
_PLI_FMT = 1
_NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
_REMB_FMT = 15


@dataclass
class ReceivedTrack:
    """A track as this client receives it: LiveKit's sid, and its stream's statistics."""

    track_sid: str
    sender: str  # the publisher's identity
    kind: str
    source: str
    stats: StreamStats


class LightClient:
    """Join with ``token``; count what arrives. ``label`` tags log lines."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        label: str,
        auto_subscribe: bool,
        on_speakers: SpeakersHandler | None = None,
        on_first_frame: Callable[[ReceivedTrack], None] | None = None,
    ) -> None:
        self.label = label
        self.signal = SignalSession(
            url,
            token,
            auto_subscribe=auto_subscribe,
            label=label,
            on_offer=self._on_offer,
            on_candidate=self._on_candidate,
            on_speakers=on_speakers,
        )
        self.tracks: dict[str, ReceivedTrack] = {}  # track sid -> track
        self.new_track = asyncio.Event()  # set whenever a track starts arriving
        self._on_first_frame = on_first_frame
        self._by_ssrc: dict[int, ReceivedTrack | None] = {}
        # ssrc -> (track sid, kind, payload type -> codec): the offer lists every codec the
        # SFU could send; the packets' payload type says which one it does.
        self._ssrc_track: dict[int, tuple[str, str, dict[int, str]]] = {}
        self._asked_key: set[int] = set()
        self._rtcp_ssrc = random.getrandbits(32)
        self._offers: asyncio.Queue[str] = asyncio.Queue()
        self._tasks = TaskSet(label, self._task_failed)
        self.errors: list[str] = []
        self.subscriber: LightPeer | None = None
        self.publisher: LightPeer | None = None  # set by a sender (sender.py)
        self._closed = False

    @property
    def room(self) -> str:
        return self.signal.room

    @property
    def identity(self) -> str:
        join = self.signal.join
        return join.participant.identity if join is not None else self.label

    async def join(self, timeout_s: float) -> float:
        """Join and connect the subscriber (primary) connection; return the seconds taken.
        On failure everything is closed and the error raised."""
        started = time.perf_counter()
        try:
            join = await self.signal.connect(timeout_s)
            self.subscriber = LightPeer(
                f"[{self.room}] {self.label} subscriber",
                ice_servers(list(join.ice_servers)),
                self._on_rtp,
                self._on_rtcp,
            )
            self._tasks.spawn(self._answer_offers(), "answers")
            await self.subscriber.wait_connected(timeout_s)
        except BaseException:
            await self.aclose()
            raise
        self._tasks.spawn(self._report(), "rtcp")
        return time.perf_counter() - started

    async def request_quality(self, track_sid: str, quality: str) -> None:
        """Ask the SFU for a simulcast layer: low, medium or high."""
        value = {
            "low": lk_models.VideoQuality.LOW,
            "medium": lk_models.VideoQuality.MEDIUM,
            "high": lk_models.VideoQuality.HIGH,
        }[quality]
        await self.signal.request_quality(track_sid, value)

    def spawn(self, work: object, what: str) -> None:
        self._tasks.spawn(work, what)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """Stop every task, close the connections, leave. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.aclose()
        for peer in (self.publisher, self.subscriber):
            if peer is not None:
                await peer.close()
        await self.signal.aclose()

    # -- negotiation ----------------------------------------------------------------------

    def _on_offer(self, sdp: str) -> None:
        self._offers.put_nowait(sdp)

    async def _answer_offers(self) -> None:
        # One at a time, in order: each offer describes the whole session so far.
        while True:
            offer = await self._offers.get()
            self._learn(offer)
            assert self.subscriber is not None
            await self.signal.answer(await self.subscriber.answer(offer))

    def _learn(self, offer: str) -> None:
        for section in parse_sections(offer):
            if section.kind not in ("audio", "video") or not section.track_id:
                continue
            for ssrc in section.ssrcs:
                self._ssrc_track[ssrc] = (section.track_id, section.kind, section.codecs)
                self._by_ssrc.pop(ssrc, None)  # learn it again if it was unknown

    def _on_candidate(self, publisher: bool, init: dict[str, object]) -> None:
        peer = self.publisher if publisher else self.subscriber
        if peer is not None:
            self._tasks.spawn(peer.add_candidate(dict(init)), "candidate")

    # -- receiving ------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, at: float) -> None:
        header = parse_header(data)
        if header is None:
            return
        ssrc = header.ssrc
        if ssrc in self._by_ssrc:
            track = self._by_ssrc[ssrc]
        else:
            track = self._by_ssrc[ssrc] = self._track_for(ssrc, header.payload_type)
        if track is None:
            return  # an SSRC no offer named (RTX, probing padding)
        stats = track.stats
        had_frame = stats.first_frame_at is not None
        stats.add(data, header, at)
        if not had_frame and stats.first_frame_at is not None and self._on_first_frame:
            self._on_first_frame(track)

    def _track_for(self, ssrc: int, payload_type: int) -> ReceivedTrack | None:
        known = self._ssrc_track.get(ssrc)
        if known is None or payload_type not in known[2]:
            return None
        sid, kind, codecs = known
        codec = codecs[payload_type]
        track = self.tracks.get(sid)
        if track is None or track.stats.codec != codec:
            info = self.signal.tracks.get(sid)
            sender = self.signal.owners.get(sid, "")
            source = lk_models.TrackSource.Name(info.source).lower() if info else ""
            clock = _CLOCK.get(codec, 90_000)
            track = ReceivedTrack(sid, sender, kind, source, StreamStats(kind, codec, clock))
            self.tracks[sid] = track
            self.new_track.set()
        return track

    def _on_rtcp(self, data: bytes) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                track = self._by_ssrc.get(packet.ssrc)
                if track is not None:
                    info = packet.sender_info
                    wall = info.ntp_timestamp / (1 << 32) - _NTP_EPOCH
                    track.stats.sender_clock(info.rtp_timestamp, wall)

    async def _report(self) -> None:
        """Receiver reports and REMB every second; a PLI for a video stream that has not
        shown a key frame a second after it started."""
        while True:
            await asyncio.sleep(_RTCP_INTERVAL_S)
            now = time.time()
            reports = []
            for ssrc, track in list(self._by_ssrc.items()):
                if track is None:
                    continue
                s = track.stats
                reports.append(
                    RtcpReceiverInfo(
                        ssrc=ssrc,
                        fraction_lost=0,
                        packets_lost=min(s.lost, 0x7FFFFF),
                        highest_sequence=s.highest_sequence,
                        jitter=int(s.jitter),
                        lsr=0,
                        dlsr=0,
                    )
                )
                late = s.first_at is not None and now - s.first_at > _KEY_FRAME_WAIT_S
                if s.kind == "video" and not s.key_frames and late and ssrc not in self._asked_key:
                    self._asked_key.add(ssrc)
                    await self._send(bytes(RtcpPsfbPacket(_PLI_FMT, self._rtcp_ssrc, ssrc)))
            if not reports:
                continue
            remb = RtcpPsfbPacket(
                _REMB_FMT, self._rtcp_ssrc, 0, pack_remb_fci(_REMB_BPS, [r.ssrc for r in reports])
            )
            for i in range(0, len(reports), 31):  # an RR holds at most 31 report blocks
                rr = RtcpRrPacket(ssrc=self._rtcp_ssrc, reports=reports[i : i + 31])
                await self._send(bytes(rr) + (bytes(remb) if i == 0 else b""))

    async def _send(self, packet: bytes) -> None:
        if self.subscriber is not None:
            await self.subscriber.send(packet)

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] %s: %s failed: %r", self.room, self.label, what, exc)
        self.errors.append(f"{what} failed: {exc!r}")
