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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpSrPacket
from livekit.protocol import models as lk_models

from talkplatform_agents.synthetic.wire.peer import LightPeer, ice_servers
from talkplatform_agents.synthetic.wire.rtcp import receiver_reports, track_source
from talkplatform_agents.synthetic.wire.rtp import StreamStats, parse_header
from talkplatform_agents.synthetic.wire.sdp import parse_sections
from talkplatform_agents.synthetic.wire.signalling import SignalSession, SpeakersHandler
from talkplatform_agents.tasks import TaskSet

__all__ = ["LightClient", "ReceivedTrack"]

logger = logging.getLogger(__name__)

_RTCP_INTERVAL_S = 1.0
_KEY_FRAME_WAIT_S = 1.0  # a video stream without a key frame by then gets a PLI
_PLI_REPEAT_S = 2.0  # and another this often, until one comes
# What we tell the SFU we can receive: a LAN-class link, so its allocator never holds a
# layer back on our account (the load is what we want to see, not our estimate).
_REMB_BPS = 20_000_000
_CLOCK = {"opus": 48_000}
_PLI_FMT = 1


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
        self._by_ssrc: dict[int, ReceivedTrack] = {}
        # ssrc -> (track sid, kind, payload type -> codec): the offer lists every codec the
        # SFU could send; the packets' payload type says which one it does.
        self._ssrc_track: dict[int, tuple[str, str, dict[int, str]]] = {}
        self._asked_key: dict[int, float] = {}  # ssrc -> when we last asked for a key frame
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

    def lost_connection(self) -> str | None:
        """Why the client is no longer in the room, when that happened before it left."""
        if self._closed:
            return None
        if self.signal.closed.is_set():
            return self.signal.close_reason
        for peer in (self.subscriber, self.publisher):
            if peer is not None and peer.failure is not None:
                return peer.failure
        return None

    async def request_quality(self, track_sid: str, quality: str) -> None:
        """Ask the SFU for a simulcast layer: low, medium or high."""
        value = {
            "low": lk_models.VideoQuality.LOW,
            "medium": lk_models.VideoQuality.MEDIUM,
            "high": lk_models.VideoQuality.HIGH,
        }[quality]
        await self.signal.request_quality(track_sid, value)

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None] | None:
        return self._tasks.spawn(work, what)

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
        subscriber = self.subscriber
        assert subscriber is not None
        while True:
            offer = await self._offers.get()
            try:
                self._learn(offer)
                answer = await subscriber.answer(offer)
            except Exception as exc:
                # Not answering this one must not stop the next: say why, carry on. (aiortc
                # refuses a section none of whose codecs it knows: VP9, AV1, H.265.)
                logger.error("[%s] %s: cannot answer an offer: %r", self.room, self.label, exc)
                self.errors.append(f"could not answer the server's offer: {exc!r}")
                subscriber.fail(f"could not answer the server's offer: {exc!r}")
                continue
            await self.signal.answer(answer)

    def _learn(self, offer: str) -> None:
        offered: set[int] = set()
        for section in parse_sections(offer):
            if section.kind not in ("audio", "video") or not section.track_id:
                continue
            for ssrc in section.ssrcs:
                offered.add(ssrc)
                self._ssrc_track[ssrc] = (section.track_id, section.kind, section.codecs)
                self._by_ssrc.pop(ssrc, None)  # learn it again: it may be another track now
        # Tracks no longer offered (unsubscribed, unpublished) leave the reports; their
        # figures stay in ``tracks``.
        for ssrc in [s for s in self._by_ssrc if s not in offered]:
            del self._by_ssrc[ssrc]

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
        track = self._by_ssrc.get(ssrc)
        if track is None:
            track = self._track_for(ssrc, header.payload_type)
            if track is None:
                return  # an SSRC or payload type no offer named (RTX, probing padding)
            self._by_ssrc[ssrc] = track
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
            source = track_source(info.source) if info else ""
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
                    track.stats.sender_report(info.ntp_timestamp, info.rtp_timestamp, time.time())

    async def _report(self) -> None:
        """Receiver reports and REMB every second; a PLI, every few seconds, for a video
        stream that has not shown a key frame since it started (the one that answered the
        last request may have been lost)."""
        while True:
            await asyncio.sleep(_RTCP_INTERVAL_S)
            now = time.time()
            streams = list(self._by_ssrc.items())
            counted = [(ssrc, track.stats) for ssrc, track in streams]
            for packet in receiver_reports(self._rtcp_ssrc, counted, now, _REMB_BPS):
                await self._send(packet)
            for ssrc, track in streams:
                s = track.stats
                if s.kind != "video" or s.key_frames or s.first_at is None:
                    continue
                asked = self._asked_key.get(ssrc, s.first_at - _PLI_REPEAT_S + _KEY_FRAME_WAIT_S)
                if now - asked >= _PLI_REPEAT_S:
                    self._asked_key[ssrc] = now
                    await self._send(bytes(RtcpPsfbPacket(_PLI_FMT, self._rtcp_ssrc, ssrc)))

    async def _send(self, packet: bytes) -> None:
        if self.subscriber is not None:
            await self.subscriber.send(packet)

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] %s: %s failed: %r", self.room, self.label, what, exc)
        self.errors.append(f"{what} failed: {exc!r}")
