"""How long a client's ICE gathering, ICE connectivity checks and DTLS handshake take against
a LiveKit server, as Twilio's Preflight reports them.

The realtime SDK's stats cannot give these: ``RTCTransportStats`` and the candidate-pair
stats carry states, counters and the agreed ciphers, but no time of any state change, and
``Room.connect`` returns only once the peer connection is up, so polling stats afterwards is
too late. So the timings come from timed state-change events of a peer connection of our own
(aiortc), negotiated through LiveKit's signalling like any client's publisher connection
carrying only a data channel: the same server, ports and network path as the SDK's.

Signalling: a WebSocket to ``/rtc`` with the participant's token, the join response, our
offer, the server's answer and trickled candidates, then a leave. The participant is in the
room only for these moments, so run it while no other session of the same identity is
connected (the server would replace one with the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models as signal_models
from livekit.protocol import rtc as signal

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.lk.ice import IceServer

__all__ = ["HandshakeError", "HandshakeTimings", "measure_handshake"]

logger = logging.getLogger(__name__)

# The signalling protocol of the dual peer-connection era: publisher offers, server answers.
_PROTOCOL_VERSION = 15
_AIORTC_SCHEMES = ("stun:", "turn:")  # gathering through plain STUN and TURN; no TLS variants


class HandshakeError(TalkPlatformError):
    """The handshake could not complete; the message says at which stage."""


@dataclass
class HandshakeTimings:
    """Seconds for each stage; ``None`` where a stage never happened."""

    signal_s: float | None = None  # WebSocket open to the join response
    ice_gathering_s: float | None = None  # gathering started -> complete
    ice_connectivity_s: float | None = None  # checks started -> a pair succeeded
    dtls_handshake_s: float | None = None  # DTLS started -> connected
    total_s: float | None = None  # WebSocket open to DTLS connected
    local_candidates: int = 0
    remote_candidates: int = 0
    _marks: dict[str, float] = field(default_factory=dict, repr=False)

    def mark(self, what: str) -> None:
        self._marks.setdefault(what, time.perf_counter())

    def span(self, start: str, end: str) -> float | None:
        if start in self._marks and end in self._marks:
            return max(self._marks[end] - self._marks[start], 0.0)
        return None

    def as_ms(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return round(value * 1000, 1) if value is not None else None

        return {
            "signal_ms": ms(self.signal_s),
            "ice_gathering_ms": ms(self.ice_gathering_s),
            "ice_connectivity_ms": ms(self.ice_connectivity_s),
            "dtls_handshake_ms": ms(self.dtls_handshake_s),
            "total_ms": ms(self.total_s),
            "local_candidates": self.local_candidates,
            "remote_candidates": self.remote_candidates,
        }


async def measure_handshake(
    url: str, token: str, ice_servers: list[IceServer] | None = None
) -> HandshakeTimings:
    """Join through signalling, connect a peer connection, time each stage, leave.

    ``ice_servers``: the platform's STUN/TURN servers (``connection-info``); None takes
    those of the join response, as the SDK does.

    The caller bounds the time (``asyncio.timeout``); cancelling is safe here: the
    WebSocket and the peer connection are closed on the way out.
    """
    timings = HandshakeTimings()
    query = urllib.parse.urlencode(
        {"access_token": token, "protocol": _PROTOCOL_VERSION, "auto_subscribe": 0}
    )
    endpoint = f"{url.rstrip('/')}/rtc?{query}"
    pcs: list[RTCPeerConnection] = []  # made once the join response names the ICE servers
    try:
        async with aiohttp.ClientSession() as http:
            timings.mark("ws_start")
            try:
                ws = await http.ws_connect(endpoint, heartbeat=None)
            except aiohttp.WSServerHandshakeError as exc:
                raise HandshakeError(
                    f"signalling refused: HTTP {exc.status} {exc.message}"
                ) from exc
            except aiohttp.ClientError as exc:
                raise HandshakeError(f"cannot reach signalling at {url}: {exc}") from exc
            async with ws:
                await _negotiate(ws, pcs, timings, ice_servers)
                # Leaving politely; a server already closing the socket has let us go anyway.
                with contextlib.suppress(aiohttp.ClientError):
                    await ws.send_bytes(
                        signal.SignalRequest(leave=signal.LeaveRequest()).SerializeToString()
                    )
    finally:
        for pc in pcs:
            await pc.close()
    timings.signal_s = timings.span("ws_start", "joined")
    timings.ice_gathering_s = timings.span("gathering", "gathered")
    timings.ice_connectivity_s = timings.span("checking", "ice_connected")
    timings.dtls_handshake_s = timings.span("dtls_connecting", "dtls_connected")
    timings.total_s = timings.span("ws_start", "dtls_connected")
    return timings


async def _negotiate(
    ws: aiohttp.ClientWebSocketResponse,
    pcs: list[RTCPeerConnection],
    timings: HandshakeTimings,
    ice_servers: list[IceServer] | None,
) -> None:
    connected = asyncio.Event()
    failed: list[str] = []
    join = await _next(ws)
    if join.WhichOneof("message") != "join":
        raise HandshakeError(f"expected a join response, got {join.WhichOneof('message')}")
    timings.mark("joined")
    # Only the ICE servers the platform gives (aiortc would otherwise add a public STUN
    # server of its own): gathering is then what any client of this deployment does. A
    # STUN or TURN server that does not answer holds gathering up to aioice's 5 s limit.
    given: list[tuple[list[str], str | None, str | None]]
    if ice_servers is None:
        given = [(list(s.urls), s.username, s.credential) for s in join.join.ice_servers]
    else:
        given = [(list(s.urls), s.username, s.credential) for s in ice_servers]
    servers = [
        RTCIceServer(urls=urls, username=username or None, credential=credential or None)
        for all_urls, username, credential in given
        if (urls := [u for u in all_urls if u.startswith(_AIORTC_SCHEMES)])
    ]
    logger.debug("handshake: ICE servers %s", [s.urls for s in servers])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
    pcs.append(pc)
    # The server connects the primary transport first and gives up on a participant whose
    # primary never connects: with a subscribe grant it is the subscriber (server offers),
    # else the publisher (we offer, with a data channel as the SDKs do).
    remote = _Remote(pc, timings, ws, subscriber=join.join.subscriber_primary)
    if not remote.subscriber:
        channel = pc.createDataChannel("_reliable", ordered=True)
        _watch(pc, timings, connected, failed)
        await remote.describe_local("offer")
    while not connected.is_set():
        # Two short-lived futures raced here and nowhere else; whatever ends the race (one of
        # them, or a cancellation from outside) cancels the other.
        reader = asyncio.ensure_future(_next(ws))
        waiter = asyncio.ensure_future(connected.wait())
        try:
            done, _ = await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (reader, waiter):
                if not pending.done():
                    pending.cancel()
        if reader not in done:
            with contextlib.suppress(asyncio.CancelledError, HandshakeError):
                await reader
            break
        if await remote.on_message(reader.result()):  # the server's offer is in: answer it
            _watch(pc, timings, connected, failed)
            await remote.describe_local("answer")
    if failed:
        raise HandshakeError(failed[0])
    if not remote.subscriber:
        channel.close()


def _watch(
    pc: RTCPeerConnection, timings: HandshakeTimings, connected: asyncio.Event, failed: list[str]
) -> None:
    """Timestamps of the state changes: the whole point of this module."""
    dtls = _dtls_transport(pc)

    def on_ice() -> None:
        state = pc.iceConnectionState
        if state == "checking":
            timings.mark("checking")
        elif state == "completed":
            timings.mark("ice_connected")
        elif state == "failed":
            failed.append("ICE connectivity checks failed: no candidate pair answered")
            connected.set()

    def on_dtls() -> None:
        if dtls.state == "connecting":
            timings.mark("dtls_connecting")
        elif dtls.state == "connected":
            timings.mark("dtls_connected")
            connected.set()
        elif dtls.state == "failed":
            failed.append("the DTLS handshake failed")
            connected.set()

    pc.on("iceconnectionstatechange", on_ice)
    dtls.on("statechange", on_dtls)


def _dtls_transport(pc: RTCPeerConnection) -> Any:
    # aiortc makes the SCTP transport (over DTLS) for a data channel, or one per transceiver.
    if pc.sctp is not None:
        return pc.sctp.transport
    for transceiver in pc.getTransceivers():
        return transceiver.receiver.transport
    raise HandshakeError("the session has neither a data channel nor media to connect")


class _Remote:
    """The server's side: its description and its trickled candidates (which may come
    before the description they belong to)."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        timings: HandshakeTimings,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        subscriber: bool,
    ) -> None:
        self._pc = pc
        self._timings = timings
        self._ws = ws
        self.subscriber = subscriber
        self._target = (
            signal.SignalTarget.SUBSCRIBER if subscriber else signal.SignalTarget.PUBLISHER
        )
        self._pending: list[dict[str, Any]] = []
        self._described = False

    async def describe_local(self, kind: str) -> None:
        # aiortc gathers every candidate inside setLocalDescription and puts them in the SDP.
        self._timings.mark("gathering")
        description = await (self._pc.createOffer() if kind == "offer" else self._pc.createAnswer())
        await self._pc.setLocalDescription(description)
        self._timings.mark("gathered")
        sdp = self._pc.localDescription.sdp
        self._timings.local_candidates = sdp.count("a=candidate:")
        body = signal.SessionDescription(type=kind, sdp=sdp)
        request = (
            signal.SignalRequest(offer=body)
            if kind == "offer"
            else signal.SignalRequest(answer=body)
        )
        await self._ws.send_bytes(request.SerializeToString())

    async def on_message(self, message: signal.SignalResponse) -> bool:
        """Handle one signalling message; True when it was the offer we must answer."""
        kind = message.WhichOneof("message")
        if kind == "leave":
            reason = signal_models.DisconnectReason.Name(message.leave.reason)
            raise HandshakeError(f"the server sent us away: {reason}")
        if kind == "trickle" and message.trickle.target == self._target:
            init = json.loads(message.trickle.candidateInit)
            if init.get("candidate"):  # an empty one ends the candidates
                self._timings.remote_candidates += 1
                if self._described:
                    await _add_candidate(self._pc, init)
                else:
                    self._pending.append(init)
            return False
        expected = "offer" if self.subscriber else "answer"
        if kind != expected or self._described:
            return False
        sdp = getattr(message, kind).sdp
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp, kind))
        self._timings.remote_candidates += sdp.count("a=candidate:")
        self._described = True
        for init in self._pending:
            await _add_candidate(self._pc, init)
        self._pending.clear()
        return bool(kind == "offer")


async def _add_candidate(pc: RTCPeerConnection, init: dict[str, Any]) -> None:
    candidate = candidate_from_sdp(str(init["candidate"]).removeprefix("candidate:"))
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    await pc.addIceCandidate(candidate)


async def _next(ws: aiohttp.ClientWebSocketResponse) -> signal.SignalResponse:
    message = await ws.receive()
    if message.type != aiohttp.WSMsgType.BINARY:
        raise HandshakeError(f"signalling closed or sent {message.type.name}: {message.data!r}")
    response = signal.SignalResponse()
    response.ParseFromString(message.data)
    return response
