"""The transcriber bot (agent_name ``transcriber``), a process per transcription
(livekit-agents): speech recognition needs the cores, not a shared event loop.

The transcription lives in the store (``store/transcriptions.py``); the bot is one part of
it, as the recorder is of a recording:

- dispatched with ``{"transcriptionId"}`` (``lk/transcription.py``), or without metadata
  (the service's sweep replacing a transcriber that died), it takes the meeting's running
  transcription. Meeting rooms only;
- it follows the room: one recogniser stream per speaking participant's audio track
  (``speaker.py``), made on subscription and unmute, ended on mute, unsubscription and
  departure; agents are never transcribed;
- captions go to everyone and finals to the store (``captions.py``);
- it says so (its attribute ``tp.transcribing: "1"`` and ``tp.transcription`` notices),
  checks in every few seconds, and ends on a host's stop (REST or its RPC);
- a recogniser that fails is logged and announced (``error``), and that speaker carries on
  with a new stream; one that cannot even be made ends the transcription ``failed``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess, stt

from talkplatform_agents.bots.election import Election
from talkplatform_agents.bots.rpc_errors import answer_errors
from talkplatform_agents.bots.transcriber.captions import CaptionOptions, Captions
from talkplatform_agents.bots.transcriber.engine import (
    DEFAULT_STT,
    EngineError,
    load_stt,
    streaming,
)
from talkplatform_agents.bots.transcriber.speaker import SpeakerOptions, TrackTranscriber
from talkplatform_agents.errors import Forbidden, NotFound
from talkplatform_agents.lk import transcription as proto
from talkplatform_agents.lk.naming import TRANSCRIBER_AGENT_NAME, RoomKind, parse_room
from talkplatform_agents.lk.payloads import BadPayload, parse
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.runs import RunStatus
from talkplatform_agents.store.transcriptions import TranscriptionRepository
from talkplatform_agents.tasks import TaskSet

__all__ = ["TranscriberOptions", "transcriber_entrypoint", "transcriber_prewarm"]

logger = logging.getLogger(__name__)

_OPTIONS_KEY = "transcriber.options"
_ENGINE_KEY = "transcriber.engine"


@dataclass(frozen=True)
class TranscriberOptions:
    database_url: str = ""
    stt: str = DEFAULT_STT  # module:factory (engine.py)
    check_in_s: float = 2.0
    speaker: SpeakerOptions = field(default_factory=SpeakerOptions)
    captions: CaptionOptions = field(default_factory=CaptionOptions)


def transcriber_prewarm(proc: JobProcess, options: TranscriberOptions) -> None:
    """Once in each job process: the options, and the recogniser made ahead of the job (a
    model loads in seconds); a recogniser that cannot be made is kept as its error."""
    proc.userdata[_OPTIONS_KEY] = options
    try:
        proc.userdata[_ENGINE_KEY] = streaming(load_stt(options.stt))
    except EngineError as exc:
        logger.error("the transcriber's recogniser cannot be made: %s", exc)
        proc.userdata[_ENGINE_KEY] = exc


async def transcriber_entrypoint(ctx: JobContext) -> None:
    options: TranscriberOptions = ctx.proc.userdata.get(_OPTIONS_KEY, TranscriberOptions())
    room_name = ctx.job.room.name
    ref = parse_room(room_name)
    if ref.kind is not RoomKind.MEETING:
        logger.warning("[%s] the transcriber serves meeting rooms only; leaving", room_name)
        ctx.shutdown("not a meeting room")
        return
    db = Database(options.database_url)
    runs = TranscriptionRepository(db)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    election = Election(ctx.room, TRANSCRIBER_AGENT_NAME, lambda _: ctx.shutdown("duplicate"))

    async def close_election() -> None:
        election.close()

    ctx.add_shutdown_callback(close_election)
    run_id = await _transcription_id(ctx.job.metadata, runs, ref.key)
    view = await runs.mark_active(run_id) if election.start() and run_id else None
    if view is not None and view.status is RunStatus.STOPPING:
        # Stopped while no transcriber ran: what was stored is the transcript.
        await runs.finish(view.id, RunStatus.COMPLETE)
        logger.info("[%s] transcription %s was stopping: completed", room_name, view.id)
    if view is None or view.status is not RunStatus.ACTIVE:
        logger.info("[%s] no transcription to carry on (%s); leaving", room_name,
                    view.status.value if view else "none")  # fmt: skip
        ctx.add_shutdown_callback(db.aclose)
        ctx.shutdown("no running transcription")
        return
    engine = ctx.proc.userdata.get(_ENGINE_KEY)
    if engine is None:  # run without prewarm (a test's own job)
        try:
            engine = streaming(load_stt(options.stt))
        except EngineError as exc:
            engine = exc
    if isinstance(engine, EngineError):
        await runs.finish(view.id, RunStatus.FAILED, str(engine))
        await _notice(ctx.room, view.id, proto.NOTICE_FAILED, str(engine))
        ctx.add_shutdown_callback(db.aclose)
        ctx.shutdown("no recogniser")
        return
    # The transcriber closes the store itself, last: livekit-agents runs shutdown callbacks
    # all at once, and ending the transcription needs the store.
    transcriber = Transcriber(ctx, runs, MeetingRepository(db), view.id, engine, options)
    transcriber.start(db.aclose)
    await election.mark_active()


async def _transcription_id(metadata: str, runs: TranscriptionRepository, meeting: str) -> str:
    if metadata:
        try:
            return parse(proto.TranscriptionJob, metadata).transcription_id
        except BadPayload as exc:
            logger.warning("[meeting-%s] bad transcriber metadata: %s", meeting, exc)
    running = await runs.running(meeting)
    return running.id if running else ""


class Transcriber:
    """The bot's control: the speakers, the store's word on stopping, the announcements."""

    def __init__(
        self,
        ctx: JobContext,
        runs: TranscriptionRepository,
        meetings: MeetingRepository,
        transcription_id: str,
        engine: stt.STT[Any],
        options: TranscriberOptions,
    ) -> None:
        self._ctx = ctx
        self._room = ctx.room
        self._runs = runs
        self._meetings = meetings
        self._meeting_id = parse_room(ctx.room.name).key
        self._id = transcription_id
        self._engine = engine
        self._options = options
        self._tasks = TaskSet(f"transcriber-control:{ctx.room.name}")
        self._captions = Captions(
            ctx.room, runs, self._meeting_id, transcription_id, options.captions
        )
        self._speakers: dict[str, TrackTranscriber] = {}  # by track sid
        self._ended = asyncio.Event()
        self._close_store: Callable[[], Awaitable[None]] | None = None
        # Whether the last person left (seen while connected).
        self._alone = False

    def start(self, close_store: Callable[[], Awaitable[None]]) -> None:
        self._close_store = close_store
        room = self._room
        room.on("track_subscribed", self._on_subscribed)
        room.on("track_unsubscribed", self._on_unsubscribed)
        room.on("track_muted", self._on_muted)
        room.on("track_unmuted", self._on_unmuted)
        room.on("participant_connected", self._on_people)
        room.on("participant_disconnected", self._on_left)
        self._captions.start()
        self._ctx.add_shutdown_callback(self._on_shutdown)
        local = room.local_participant
        for method, handler in ((proto.RPC_TRANSCRIPTION_STOP, self._rpc_stop),
                                (proto.RPC_TRANSCRIPTION_STATUS, self._rpc_status)):  # fmt: skip
            local.register_rpc_method(method, answer_errors(room.name, method, handler))
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                track = publication.track
                if isinstance(track, rtc.RemoteAudioTrack) and not publication.muted:
                    self._follow(participant, track)
        self._tasks.spawn(self._announce_on(), "announce")
        self._tasks.spawn(self._check_in(), "check-in")
        logger.info("[%s] transcription %s with %s", room.name, self._id, self._engine.label)

    # -- following the room -------------------------------------------------------------

    def _follow(self, participant: rtc.RemoteParticipant, track: rtc.RemoteAudioTrack) -> None:
        if self._ended.is_set() or track.sid in self._speakers or _is_agent(participant):
            return
        speaker = TrackTranscriber(
            self._room.name, participant, track, self._engine, self._captions.put,
            self._recogniser_failed, self._options.speaker,
        )  # fmt: skip
        self._speakers[track.sid] = speaker
        speaker.start()
        logger.info("[%s] transcribing %s (track %s)", self._room.name, participant.identity,
                    track.sid)  # fmt: skip

    def _drop(self, track_sid: str) -> None:
        speaker = self._speakers.pop(track_sid, None)
        if speaker is not None:
            self._tasks.spawn(speaker.stop(), f"stop:{track_sid}")

    def _on_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if isinstance(track, rtc.RemoteAudioTrack) and not publication.muted:
            self._follow(participant, track)

    def _on_unsubscribed(
        self,
        track: rtc.Track,
        _publication: rtc.RemoteTrackPublication,
        _participant: rtc.RemoteParticipant,
    ) -> None:
        self._drop(track.sid)

    def _on_muted(self, _participant: rtc.Participant, publication: rtc.TrackPublication) -> None:
        self._drop(publication.sid)

    def _on_unmuted(self, participant: rtc.Participant, publication: rtc.TrackPublication) -> None:
        track = publication.track
        if isinstance(participant, rtc.RemoteParticipant) and isinstance(
            track, rtc.RemoteAudioTrack
        ):
            self._follow(participant, track)

    def _on_people(self, _participant: rtc.RemoteParticipant) -> None:
        if self._room.isconnected():
            self._alone = not _people_in(self._room)

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        for sid in list(participant.track_publications):
            self._drop(sid)
        self._on_people(participant)

    async def _recogniser_failed(self, identity: str, error: BaseException) -> None:
        reason = f"the recogniser failed on {identity}'s audio ({type(error).__name__}: "
        reason += f"{error}); carrying on"
        try:
            await _notice(self._room, self._id, proto.NOTICE_ERROR, reason)
        except Exception as exc:
            logger.warning("[%s] error notice not sent: %r", self._room.name, exc)

    # -- the store's word ---------------------------------------------------------------

    async def _check_in(self) -> None:
        while not self._ended.is_set():
            await asyncio.sleep(self._options.check_in_s)
            try:
                view = await self._runs.check_in(self._id)
            except Exception as exc:  # the store away: keep transcribing, ask again later
                logger.warning("[%s] transcription %s: check-in failed: %r", self._room.name,
                               self._id, exc)  # fmt: skip
                continue
            if view is None or view.status is not RunStatus.ACTIVE:
                await self._end()
                return

    async def _host_only(self, data: rtc.RpcInvocationData) -> None:
        role = await self._meetings.role(self._meeting_id, data.caller_identity)
        if role not in MODERATOR_ROLES:
            raise Forbidden("only the meeting's hosts and co-hosts control its transcription")

    async def _rpc_stop(self, data: rtc.RpcInvocationData) -> str:
        await self._host_only(data)
        view = await self._runs.request_stop(self._id)
        if view is None:
            raise NotFound("no such transcription", transcriptionId=self._id)
        # The next check-in ends it: the answer must reach the caller before the bot leaves.
        return json.dumps({"id": view.id, "status": view.status.value})

    async def _rpc_status(self, data: rtc.RpcInvocationData) -> str:
        await self._host_only(data)
        view = await self._runs.get(self._id)
        if view is None:
            raise NotFound("no such transcription", transcriptionId=self._id)
        started = view.started_at.isoformat() if view.started_at else None
        speakers = sorted({s.identity for s in self._speakers.values()})
        return json.dumps({"id": view.id, "status": view.status.value, "startedAt": started,
                           "speakers": speakers})  # fmt: skip

    # -- beginning and end --------------------------------------------------------------

    async def _announce_on(self) -> None:
        await self._room.local_participant.set_attributes({proto.ATTR_TRANSCRIBING: "1"})
        await _notice(self._room, self._id, proto.NOTICE_STARTED)

    async def _stop_speakers(self) -> None:
        speakers = list(self._speakers.values())
        self._speakers.clear()
        await asyncio.gather(*(s.stop() for s in speakers), return_exceptions=True)

    async def _end(self) -> None:
        """A host's stop (or the transcription ended elsewhere): the last finals stored,
        the transcription complete, announced; leave."""
        if self._ended.is_set():
            return
        self._ended.set()
        await self._stop_speakers()
        await self._captions.aclose()
        await self._runs.finish(self._id, RunStatus.COMPLETE)
        try:
            await self._room.local_participant.set_attributes({proto.ATTR_TRANSCRIBING: "0"})
            await _notice(self._room, self._id, proto.NOTICE_STOPPED)
        except Exception as exc:  # leaving anyway: the attribute goes with the bot
            logger.warning("[%s] could not announce the stop: %r", self._room.name, exc)
        self._ctx.shutdown("transcription stopped")

    async def _on_shutdown(self) -> None:
        # SIGTERM, the room ending, or our own stop. The transcription ends with the
        # meeting; while people remain, a new transcriber carries it on.
        try:
            if not self._ended.is_set():
                self._ended.set()
                await self._stop_speakers()
                await self._captions.aclose()
                if self._alone:
                    await self._runs.finish(self._id, RunStatus.COMPLETE)
            await self._tasks.aclose()
        finally:
            if self._close_store is not None:
                await self._close_store()


async def _notice(room: rtc.Room, run_id: str, status: proto.NoticeStatus, error: str = "") -> None:
    payload = proto.notice_payload(run_id, status, int(time.time() * 1000), error or None)
    await room.local_participant.publish_data(payload, reliable=True, topic=proto.TOPIC_NOTICE)


def _is_agent(participant: rtc.RemoteParticipant) -> bool:
    return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


def _people_in(room: rtc.Room) -> bool:
    return any(not _is_agent(p) for p in room.remote_participants.values())
