"""A LiveKit signalling session of our own: the WebSocket to ``/rtc`` that a client keeps for
as long as it is in the room.

The light clients need no more of the protocol than this: the join, the server's offers to
our subscriber connection and its answers to our publisher connection, trickled candidates,
track publication, layer requests, the participants' updates and the active speakers, pings
and a leave. Everything else the server sends is counted and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from livekit.protocol import models as lk_models
from livekit.protocol import rtc as lk_rtc

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.tasks import TaskSet

__all__ = ["SignalError", "SignalSession", "Speaker"]

logger = logging.getLogger(__name__)

# Dual peer connections (subscriber primary): the protocol the SDKs of this server speak.
_PROTOCOL_VERSION = 15
_TRACK_PUBLISH_TIMEOUT_S = 10.0


class SignalError(TalkPlatformError):
    """The signalling session failed; the message says at which step and why."""


@dataclass(frozen=True)
class Speaker:
    identity: str
    level: float
    active: bool


OfferHandler = Callable[[str], None]  # the server's SDP offer for our subscriber connection
CandidateHandler = Callable[[bool, dict[str, object]], None]  # (for the publisher?, init)
SpeakersHandler = Callable[[list[Speaker], float], None]  # (loudest first, wall time)


@dataclass
class _Waiters:
    answers: list[asyncio.Future[str]] = field(default_factory=list)
    published: dict[str, asyncio.Future[lk_models.TrackInfo]] = field(default_factory=dict)


class SignalSession:
    """Join with ``token``; then the handlers receive what the server sends, in order.

    ``label`` tags log lines (the participant, until the join names the room)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        auto_subscribe: bool,
        label: str,
        on_offer: OfferHandler | None = None,
        on_candidate: CandidateHandler | None = None,
        on_speakers: SpeakersHandler | None = None,
    ) -> None:
        self._url, self._token, self._auto_subscribe = url, token, auto_subscribe
        self._label = label
        self.on_offer = on_offer
        self.on_candidate = on_candidate
        self.on_speakers = on_speakers
        self.join: lk_rtc.JoinResponse | None = None
        self.identities: dict[str, str] = {}  # participant sid -> identity
        self.tracks: dict[str, lk_models.TrackInfo] = {}  # track sid -> its info
        self.owners: dict[str, str] = {}  # track sid -> its publisher's identity
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.ignored = 0  # messages of kinds this client does not use
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._waiters = _Waiters()
        self._tasks = TaskSet(f"signal {label}", self._task_failed)

    @property
    def room(self) -> str:
        return self.join.room.name if self.join is not None else "?"

    async def connect(self, timeout_s: float) -> lk_rtc.JoinResponse:
        """Open the WebSocket and wait for the join response; then keep reading."""
        query = urllib.parse.urlencode(
            {
                "access_token": self._token,
                "protocol": _PROTOCOL_VERSION,
                "auto_subscribe": int(self._auto_subscribe),
                "sdk": "python",
                "version": "talkplatform-light",
            }
        )
        self._http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    self._ws = await self._http.ws_connect(
                        f"{self._url.rstrip('/')}/rtc?{query}", heartbeat=None, max_msg_size=0
                    )
                except aiohttp.WSServerHandshakeError as exc:
                    raise SignalError(
                        f"signalling refused: HTTP {exc.status} {exc.message}"
                    ) from exc
                except aiohttp.ClientError as exc:
                    raise SignalError(f"cannot reach signalling at {self._url}: {exc}") from exc
                first = await self._receive()
        except BaseException:
            await self.aclose()
            raise
        if first is None or first.WhichOneof("message") != "join":
            await self.aclose()
            kind = None if first is None else first.WhichOneof("message")
            raise SignalError(f"expected a join response, got {kind}")
        self.join = first.join
        for info in (first.join.participant, *first.join.other_participants):
            self._note_participant(info)
        self._tasks.spawn(self._read(), "reader")
        interval = first.join.ping_interval or 10
        self._tasks.spawn(self._ping(interval), "ping")
        return first.join

    async def send(self, request: lk_rtc.SignalRequest) -> None:
        if self._ws is None or self._ws.closed:
            raise SignalError(f"[{self.room}] signalling is closed: {self.close_reason}")
        await self._ws.send_bytes(request.SerializeToString())

    async def answer(self, sdp: str) -> None:
        body = lk_rtc.SessionDescription(type="answer", sdp=sdp)
        await self.send(lk_rtc.SignalRequest(answer=body))

    async def offer(self, sdp: str, timeout_s: float = 10.0) -> str:
        """Send our publisher connection's offer; return the server's answer."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.answers.append(waiter)
        await self.send(
            lk_rtc.SignalRequest(offer=lk_rtc.SessionDescription(type="offer", sdp=sdp))
        )
        async with asyncio.timeout(timeout_s):
            return await waiter

    async def trickle(self, candidate: str, sdp_mid: str, *, publisher: bool) -> None:
        target = lk_rtc.SignalTarget.PUBLISHER if publisher else lk_rtc.SignalTarget.SUBSCRIBER
        init = json.dumps({"candidate": candidate, "sdpMid": sdp_mid, "sdpMLineIndex": 0})
        await self.send(
            lk_rtc.SignalRequest(trickle=lk_rtc.TrickleRequest(candidateInit=init, target=target))
        )

    async def add_track(self, request: lk_rtc.AddTrackRequest) -> lk_models.TrackInfo:
        """Announce a track; return its info once the server has published it."""
        waiter: asyncio.Future[lk_models.TrackInfo] = asyncio.get_running_loop().create_future()
        self._waiters.published[request.cid] = waiter
        await self.send(lk_rtc.SignalRequest(add_track=request))
        try:
            async with asyncio.timeout(_TRACK_PUBLISH_TIMEOUT_S):
                return await waiter
        except TimeoutError:
            raise SignalError(
                f"[{self.room}] the server did not publish track {request.cid} "
                f"in {_TRACK_PUBLISH_TIMEOUT_S:.0f}s"
            ) from None
        finally:
            self._waiters.published.pop(request.cid, None)

    async def request_quality(self, track_sid: str, quality: lk_models.VideoQuality) -> None:
        settings = lk_rtc.UpdateTrackSettings(track_sids=[track_sid], quality=quality)
        await self.send(lk_rtc.SignalRequest(track_setting=settings))

    async def aclose(self) -> None:
        """Leave (politely, when still connected), stop reading, close. Idempotent."""
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await ws.send_bytes(
                    lk_rtc.SignalRequest(leave=lk_rtc.LeaveRequest()).SerializeToString()
                )
        await self._tasks.aclose()
        if ws is not None:
            await ws.close()
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        self._closed("left")

    # -- reading ------------------------------------------------------------------------

    async def _receive(self) -> lk_rtc.SignalResponse | None:
        assert self._ws is not None
        message = await self._ws.receive()
        if message.type != aiohttp.WSMsgType.BINARY:
            self._closed(f"signalling closed ({message.type.name})")
            return None
        response = lk_rtc.SignalResponse()
        response.ParseFromString(message.data)
        return response

    async def _read(self) -> None:
        while (message := await self._receive()) is not None:
            self._dispatch(message)

    def _dispatch(self, message: lk_rtc.SignalResponse) -> None:
        kind = message.WhichOneof("message")
        handler = self._handlers.get(kind or "")
        if handler is None:
            self.ignored += 1
        else:
            handler(message)

    @property
    def _handlers(self) -> dict[str, Callable[[lk_rtc.SignalResponse], None]]:
        return {
            "offer": self._got_offer,
            "answer": self._got_answer,
            "trickle": self._got_candidate,
            "track_published": self._got_published,
            "update": self._got_update,
            "speakers_changed": self._got_speakers,
            "leave": self._got_leave,
        }

    def _got_offer(self, message: lk_rtc.SignalResponse) -> None:
        if self.on_offer is not None:
            self.on_offer(message.offer.sdp)

    def _got_answer(self, message: lk_rtc.SignalResponse) -> None:
        if self._waiters.answers:
            waiter = self._waiters.answers.pop(0)
            if not waiter.done():
                waiter.set_result(message.answer.sdp)

    def _got_candidate(self, message: lk_rtc.SignalResponse) -> None:
        if self.on_candidate is not None:
            init = json.loads(message.trickle.candidateInit)
            publisher = message.trickle.target == lk_rtc.SignalTarget.PUBLISHER
            self.on_candidate(publisher, init)

    def _got_published(self, message: lk_rtc.SignalResponse) -> None:
        published = message.track_published
        self.tracks[published.track.sid] = published.track
        pending = self._waiters.published.get(published.cid)
        if pending is not None and not pending.done():
            pending.set_result(published.track)

    def _got_update(self, message: lk_rtc.SignalResponse) -> None:
        for info in message.update.participants:
            self._note_participant(info)

    def _got_speakers(self, message: lk_rtc.SignalResponse) -> None:
        if self.on_speakers is not None:
            speakers = [
                Speaker(self.identities.get(s.sid, s.sid), s.level, s.active)
                for s in message.speakers_changed.speakers
            ]
            self.on_speakers(speakers, time.time())

    def _got_leave(self, message: lk_rtc.SignalResponse) -> None:
        reason = lk_models.DisconnectReason.Name(message.leave.reason)
        logger.warning("[%s] %s: the server sent us away (%s)", self.room, self._label, reason)
        self._closed(f"sent away by the server: {reason}")

    def _note_participant(self, info: lk_models.ParticipantInfo) -> None:
        self.identities[info.sid] = info.identity
        for track in info.tracks:
            self.tracks[track.sid] = track
            self.owners[track.sid] = info.identity

    async def _ping(self, interval_s: int) -> None:
        while True:
            await asyncio.sleep(interval_s)
            ping = lk_rtc.Ping(timestamp=int(time.time() * 1000))
            with contextlib.suppress(SignalError):
                await self.send(lk_rtc.SignalRequest(ping_req=ping))

    def _closed(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            for waiter in self._waiters.answers:
                if not waiter.done():
                    waiter.set_exception(SignalError(f"[{self.room}] {reason}"))

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] %s: signalling %s failed: %r", self.room, self._label, what, exc)
        self._closed(f"signalling {what} failed: {exc!r}")
