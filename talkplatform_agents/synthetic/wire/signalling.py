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
from typing import Any

import aiohttp
from google.protobuf.message import DecodeError
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
        self.bad_messages = 0  # messages that did not parse or could not be handled
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
            try:
                first = await asyncio.wait_for(self._open(query), timeout_s)
            except TimeoutError:
                raise SignalError(
                    f"no join response from {self._url} in {timeout_s:.0f}s"
                ) from None
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

    async def _open(self, query: str) -> lk_rtc.SignalResponse | None:
        assert self._http is not None
        try:
            self._ws = await self._http.ws_connect(
                f"{self._url.rstrip('/')}/rtc?{query}", heartbeat=None, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            refused = f"signalling refused: HTTP {exc.status} {exc.message}"
            raise SignalError(refused) from exc
        except aiohttp.ClientError as exc:
            raise SignalError(f"cannot reach signalling at {self._url}: {exc}") from exc
        return await self._receive(self._ws)

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
        try:
            body = lk_rtc.SessionDescription(type="offer", sdp=sdp)
            await self.send(lk_rtc.SignalRequest(offer=body))
            return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except TimeoutError:
            raise SignalError(f"[{self.room}] no answer to our offer in {timeout_s:.0f}s") from None
        finally:
            # Answered or not, this offer is done: a late answer must not meet the next one.
            if waiter in self._waiters.answers:
                self._waiters.answers.remove(waiter)

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
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await ws.send_bytes(
                    lk_rtc.SignalRequest(leave=lk_rtc.LeaveRequest()).SerializeToString()
                )
        # The reader stops before the socket goes: it must never read a closed one.
        await self._tasks.aclose()
        self._ws = None
        if ws is not None:
            await ws.close()
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        self._closed("left")

    # -- reading ------------------------------------------------------------------------

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> lk_rtc.SignalResponse | None:
        """The next message; None once the socket closes. One that does not parse is
        counted and skipped: the session goes on."""
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.BINARY:
                self._closed(f"signalling closed ({message.type.name})")
                return None
            response = lk_rtc.SignalResponse()
            try:
                response.ParseFromString(message.data)
            except DecodeError as exc:
                self._bad("an unreadable message", exc)
                continue
            return response

    async def _read(self) -> None:
        assert self._ws is not None
        ws = self._ws
        while (message := await self._receive(ws)) is not None:
            self._dispatch(message)

    def _dispatch(self, message: lk_rtc.SignalResponse) -> None:
        kind = message.WhichOneof("message")
        handler = self._handlers.get(kind or "")
        if handler is None:
            self.ignored += 1
            return
        try:
            handler(message)
        except Exception as exc:
            # One bad message (or a handler's failure on it) must not end the session.
            self._bad(f"a {kind} message", exc)

    def _bad(self, what: str, exc: BaseException) -> None:
        self.bad_messages += 1
        if self.bad_messages <= 3:  # enough to see what it is; a flood must not fill the log
            logger.warning("[%s] %s: signalling skipped %s: %r", self.room, self._label, what, exc)

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
            "request_response": self._got_refusal,
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

    def _got_refusal(self, message: lk_rtc.SignalResponse) -> None:
        response = message.request_response
        if response.WhichOneof("request") != "add_track":
            return
        pending = self._waiters.published.get(response.add_track.cid)
        if pending is not None and not pending.done():
            reason = _name(lk_rtc.RequestResponse.Reason, response.reason)
            refused = f"[{self.room}] the server refused track {response.add_track.cid}"
            pending.set_exception(SignalError(f"{refused}: {reason} {response.message}"))

    def _got_leave(self, message: lk_rtc.SignalResponse) -> None:
        reason = _name(lk_models.DisconnectReason, message.leave.reason)
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
            for published in self._waiters.published.values():
                if not published.done():
                    published.set_exception(SignalError(f"[{self.room}] {reason}"))

    def _task_failed(self, what: str, exc: BaseException) -> None:
        logger.error("[%s] %s: signalling %s failed: %r", self.room, self._label, what, exc)
        self._closed(f"signalling {what} failed: {exc!r}")
        ws = self._ws
        if ws is not None and not ws.closed:
            # Not left open half alive: the server sees the participant go.
            self._tasks.spawn(_close(ws), "close")


async def _close(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()


def _name(enum: Any, value: int) -> str:
    """An enum value's name, or its number for one newer than our protocol package."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)
