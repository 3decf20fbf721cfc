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
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess, stt

from talkplatform_agents.bots.run_bot import (
    RunBot,
    RunProtocol,
    is_agent,
    is_meeting_room,
    take_run,
)
from talkplatform_agents.bots.transcriber.captions import CaptionOptions, Captions
from talkplatform_agents.bots.transcriber.engine import (
    DEFAULT_STT,
    EngineError,
    load_stt,
    streaming,
)
from talkplatform_agents.bots.transcriber.speaker import SpeakerOptions, TrackTranscriber
from talkplatform_agents.lk import transcription as proto
from talkplatform_agents.lk.naming import TRANSCRIBER_AGENT_NAME
from talkplatform_agents.lk.payloads import parse
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.runs import RunStatus
from talkplatform_agents.store.transcriptions import TranscriptionRepository, TranscriptionView

__all__ = ["TranscriberOptions", "transcriber_entrypoint", "transcriber_prewarm"]

logger = logging.getLogger(__name__)

_OPTIONS_KEY = "transcriber.options"
_ENGINE_KEY = "transcriber.engine"

PROTOCOL = RunProtocol(
    agent_name=TRANSCRIBER_AGENT_NAME,
    noun="transcription",
    job_run_id=lambda metadata: parse(proto.TranscriptionJob, metadata).transcription_id,
    attribute=proto.ATTR_TRANSCRIBING,
    notice_topic=proto.TOPIC_NOTICE,
    notice_payload=proto.notice_payload,
    rpc_stop=proto.RPC_TRANSCRIPTION_STOP,
    rpc_status=proto.RPC_TRANSCRIPTION_STATUS,
)


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
    if not is_meeting_room(ctx, PROTOCOL):
        return
    db = Database(options.database_url)
    runs = TranscriptionRepository(db)

    async def close_stopping(view: TranscriptionView) -> None:
        await runs.finish(view.id, RunStatus.COMPLETE)  # what was stored is the transcript

    taken = await take_run(ctx, PROTOCOL, runs, AutoSubscribe.AUDIO_ONLY, close_stopping)
    if taken is None:
        ctx.add_shutdown_callback(db.aclose)
        return
    view, election = taken
    engine = ctx.proc.userdata.get(_ENGINE_KEY)
    if engine is None:  # run without prewarm
        try:
            engine = streaming(load_stt(options.stt))
        except EngineError as exc:
            engine = exc
    # The transcriber closes the store itself, last: livekit-agents runs shutdown callbacks
    # all at once, and ending the transcription needs the store.
    transcriber = Transcriber(ctx, runs, MeetingRepository(db), view.id, options, db.aclose)
    if isinstance(engine, EngineError):
        # Configuration, not the meeting: the transcription fails with the reason, said.
        await transcriber.end(error=str(engine))
        return
    transcriber.start(engine)
    await election.mark_active()


class Transcriber(RunBot[TranscriptionView]):
    """The speakers, under the shared control (``run_bot.py``)."""

    def __init__(
        self,
        ctx: JobContext,
        runs: TranscriptionRepository,
        meetings: MeetingRepository,
        transcription_id: str,
        options: TranscriberOptions,
        close_store: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(ctx, PROTOCOL, runs, meetings, transcription_id, options.check_in_s,
                         close_store)  # fmt: skip
        self._options = options
        self._engine: stt.STT[Any] | None = None
        self._captions = Captions(
            ctx.room, runs, self._meeting_id, transcription_id, options.captions
        )
        self._speakers: dict[str, TrackTranscriber] = {}  # by track sid
        # Speakers whose track went (muted, unsubscribed, left), draining their last final.
        self._retiring: set[TrackTranscriber] = set()

    def start(self, engine: stt.STT[Any]) -> None:
        self._engine = engine
        room = self._room
        room.on("track_subscribed", self._on_subscribed)
        room.on("track_unsubscribed", self._on_unsubscribed)
        room.on("track_muted", self._on_muted)
        room.on("track_unmuted", self._on_unmuted)
        room.on("participant_disconnected", self._on_left)
        self._captions.start()
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                track = publication.track
                if isinstance(track, rtc.RemoteAudioTrack) and not publication.muted:
                    self._follow(participant, track)
        self.start_control()
        logger.info("[%s] transcription %s with %s", room.name, self._id, engine.label)

    def status_extra(self, view: TranscriptionView) -> dict[str, Any]:
        return {"speakers": sorted({s.identity for s in self._speakers.values()})}

    # -- following the room -------------------------------------------------------------

    def _follow(self, participant: rtc.RemoteParticipant, track: rtc.RemoteAudioTrack) -> None:
        engine = self._engine
        if engine is None or self._ended.is_set() or track.sid in self._speakers:
            return
        if is_agent(participant):
            return
        speaker = TrackTranscriber(
            self._room.name, participant, track, engine, self._captions.put,
            self.report_recogniser_failure, self._options.speaker,
        )  # fmt: skip
        self._speakers[track.sid] = speaker
        speaker.start()
        logger.info("[%s] transcribing %s (track %s)", self._room.name, participant.identity,
                    track.sid)  # fmt: skip

    def _drop(self, track_sid: str) -> None:
        speaker = self._speakers.pop(track_sid, None)
        if speaker is not None:
            self._retiring.add(speaker)
            self._tasks.spawn(self._retire(speaker), f"stop:{track_sid}")

    async def _retire(self, speaker: TrackTranscriber) -> None:
        try:
            await speaker.stop()
        finally:
            self._retiring.discard(speaker)

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

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        for sid in list(participant.track_publications):
            self._drop(sid)

    async def report_recogniser_failure(self, identity: str, error: BaseException) -> None:
        reason = f"the recogniser failed on {identity}'s audio ({type(error).__name__}: "
        reason += f"{error}); carrying on"
        try:
            await self.notice(proto.NOTICE_ERROR, reason)
        except Exception as exc:
            logger.warning("[%s] error notice not sent: %r", self._room.name, exc)

    # -- the end --------------------------------------------------------------------------

    async def _stop_speakers(self) -> None:
        """Every speaker stopped, its last final in the captions (those already retiring
        too: their drain is waited for, not cut off)."""
        speakers = [*self._speakers.values(), *self._retiring]
        self._speakers.clear()
        await asyncio.gather(*(s.stop() for s in speakers), return_exceptions=True)

    async def finish_work(self, error: str = "") -> None:
        await self._stop_speakers()
        await self._captions.aclose()

    async def leave_work(self) -> None:
        await self.finish_work()  # what a transcriber keeps is the same either way
