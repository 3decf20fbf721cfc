"""One peer connection of a light client: aiortc gathers, checks and runs DTLS and SCTP; the
RTP and RTCP are ours.

aiortc would decode every received frame on a thread per track, and it cannot send simulcast.
So it is told that every media section is inactive (see ``sdp.py``), and its DTLS transport's
two packet handlers are replaced by ours: decrypted RTP and RTCP go straight to the client's
callbacks, and the client sends its own packets through the same transport's SRTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import aiortc
import pylibsrtp
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import rtc as lk_rtc

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.synthetic.wire.sdp import PublishSection, publish_offer, receive_answer

__all__ = ["LightPeer", "PeerError", "ice_servers", "packet_kind"]

logger = logging.getLogger(__name__)

RtpHandler = Callable[[bytes, float], None]  # (decrypted packet, wall time of arrival)
RtcpHandler = Callable[[bytes], None]
# TURN only (aioice has no TLS variant). STUN would only find our public address, which the
# SFU learns from our connectivity checks anyway (peer-reflexive), and aiortc gathers before
# it answers: an unreachable STUN server (LiveKit hands out public ones by default) would add
# aioice's 5 s timeout to every join.
_SCHEMES = ("turn:",)
_AIORTC_HOOKS = ("_handle_rtp_data", "_handle_rtcp_data", "_send_rtp")


class PeerError(TalkPlatformError):
    """A light peer connection failed; the message says how."""


def packet_kind(data: bytes) -> str | None:
    """``rtp`` or ``rtcp`` for an SRTP datagram (RFC 7983's first byte, RFC 5761's second);
    None for anything else (STUN, DTLS) or a datagram too short to be either."""
    if len(data) < 8 or not 127 < data[0] < 192:
        return None
    if 191 < data[1] < 224:  # RTCP packet types 192..223
        return "rtcp"
    return "rtp" if len(data) >= 12 else None


def ice_servers(servers: list[lk_rtc.ICEServer]) -> list[RTCIceServer]:
    """The join response's TURN servers, as aioice can use them. Only these: aiortc would
    otherwise add a public STUN server of its own."""
    return [
        RTCIceServer(urls=urls, username=s.username or None, credential=s.credential or None)
        for s in servers
        if (urls := [u for u in s.urls if u.startswith(_SCHEMES)])
    ]


class LightPeer:
    """``label`` tags log lines; ``on_rtp``/``on_rtcp`` get every decrypted packet."""

    def __init__(
        self,
        label: str,
        servers: list[RTCIceServer],
        on_rtp: RtpHandler,
        on_rtcp: RtcpHandler,
    ) -> None:
        self._label = label
        self._on_rtp, self._on_rtcp = on_rtp, on_rtcp
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.connected = asyncio.Event()
        self.failure: str | None = None
        self._dtls: Any = None  # aiortc's RTCDtlsTransport, once negotiated
        self._described = False
        self._pending: list[dict[str, Any]] = []
        self._closed = False
        self.packet_errors = 0
        self.pc.on("connectionstatechange", self._on_state)

    # -- negotiation ----------------------------------------------------------------------

    async def answer(self, offer: str) -> str:
        """Take the server's offer; return the answer to send (receiving every track)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for transceiver in self.pc.getTransceivers():
            transceiver.direction = "inactive"  # no receiver, no decoder thread
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._described_now()
        return receive_answer(self.pc.localDescription.sdp, offer)

    async def offer(self, stream: str, publish: list[PublishSection]) -> str:
        """Our publisher offer, one media section per entry of ``publish``."""
        for want in publish:
            self.pc.addTransceiver(want.kind, direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return publish_offer(self.pc.localDescription.sdp, stream, publish)

    async def accept(self, answer: str) -> None:
        """The server's answer to our offer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await self._described_now()

    async def add_candidate(self, init: dict[str, Any]) -> None:
        if not init.get("candidate"):
            return  # an empty candidate ends the candidates
        if not self._described:
            self._pending.append(init)
            return
        candidate = candidate_from_sdp(str(init["candidate"]).removeprefix("candidate:"))
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await self.pc.addIceCandidate(candidate)

    async def _described_now(self) -> None:
        self._hook()
        if not self._described:
            self._described = True
            pending, self._pending = self._pending, []
            for init in pending:
                await self.add_candidate(init)

    def _hook(self) -> None:
        transports = [t.receiver.transport for t in self.pc.getTransceivers()]
        if self.pc.sctp is not None:
            transports.append(self.pc.sctp.transport)
        for dtls in transports:
            dtls = cast(Any, dtls)
            if dtls is None or getattr(dtls, "_talkplatform_hooked", False):
                continue
            missing = [n for n in _AIORTC_HOOKS if not callable(getattr(dtls, n, None))]
            if missing:
                # A newer aiortc renamed what we replace: better a clear stop than a client
                # that silently counts nothing.
                raise PeerError(f"aiortc {aiortc.__version__} lacks {missing}: pin aiortc 1.16")
            # aiortc calls these two (instance lookups) for every decrypted packet; with
            # BUNDLE there is one transport, so one hook sees everything.
            dtls._handle_rtp_data = self._rtp
            dtls._handle_rtcp_data = self._rtcp
            dtls._talkplatform_hooked = True
            self._dtls = dtls

    def _short_cut(self) -> None:
        """Take SRTP straight from the socket. aioice first tries every datagram as STUN
        (an exception for each media packet), then queues it for the ICE transport, whose
        reader hands it to the DTLS transport's: three task hops per packet. Media needs
        none of that once DTLS has keyed SRTP, so the socket's protocol passes it here and
        everything else (STUN, DTLS) goes the usual way."""
        dtls = self._dtls
        srtp = getattr(dtls, "_rx_srtp", None)
        connection = getattr(getattr(dtls, "transport", None), "_connection", None)
        if srtp is None or connection is None:
            return  # not keyed yet, or another aiortc: the usual path still works
        rtp, rtcp = self._deliver_rtp, self._deliver_rtcp
        for protocol in list(getattr(connection, "_protocols", [])):
            usual = protocol.datagram_received

            def received(data: bytes, addr: Any, usual: Any = usual) -> None:
                kind = packet_kind(data)
                if kind is None:
                    usual(data, addr)  # STUN, DTLS: aioice and aiortc's way
                    return
                try:
                    if kind == "rtcp":
                        rtcp(srtp.unprotect_rtcp(data))
                    else:
                        rtp(srtp.unprotect(data))
                except pylibsrtp.Error:
                    pass  # replayed or damaged: what SRTP is for

            protocol.datagram_received = received

    async def _rtp(self, data: bytes, arrival_time_ms: int) -> None:
        self._deliver_rtp(data)

    async def _rtcp(self, data: bytes) -> None:
        self._deliver_rtcp(data)

    def _deliver_rtp(self, data: bytes) -> None:
        # Never let a packet's trouble out: in aiortc's reader it would end the connection,
        # in the socket's callback asyncio would log it for every packet.
        try:
            self._on_rtp(data, time.time())
        except Exception as exc:
            self._packet_failed(exc)

    def _deliver_rtcp(self, data: bytes) -> None:
        try:
            self._on_rtcp(data)
        except Exception as exc:
            self._packet_failed(exc)

    def _packet_failed(self, exc: Exception) -> None:
        self.packet_errors += 1
        if self.packet_errors == 1:
            logger.warning("%s: a packet could not be handled: %r", self._label, exc)

    # -- state and sending ----------------------------------------------------------------

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._short_cut()
            self.connected.set()
        elif state in ("failed", "closed") and self.failure is None and not self._closed:
            # "closed" without our asking: the server ended DTLS (close_notify).
            self.failure = "ICE or DTLS failed" if state == "failed" else "closed by the server"
            logger.warning("%s: peer connection %s", self._label, state)
            self.connected.set()  # wake the waiters: they check ``failure``

    def fail(self, reason: str) -> None:
        """Mark the connection failed (its waiters wake and raise ``reason``)."""
        if self.failure is None:
            self.failure = reason
        self.connected.set()

    async def wait_connected(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        except TimeoutError:
            raise PeerError(f"{self._label}: not connected in {timeout_s:.0f}s") from None
        if self.failure is not None:
            raise PeerError(f"{self._label}: {self.failure}")

    async def send(self, packet: bytes) -> bool:
        """Send one RTP or RTCP packet (SRTP-protected); False when not connected."""
        dtls = self._dtls
        if dtls is None or self._closed or not self.connected.is_set() or self.failure:
            return False
        try:
            await dtls._send_rtp(packet)
        except ConnectionError:
            return False
        return True

    async def close(self) -> None:
        """Close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.pc.close()
