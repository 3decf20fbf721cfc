"""The recorder bot (agent_name ``recorder``), a process per recording (livekit-agents): it
decodes and encodes media, so it needs the cores, not a shared event loop.

The recording lives in the store (``store/recordings.py``); the bot is one part of it:

- dispatched with ``{"recordingId"}`` (``lk/recording.py``), or without metadata (the
  service's sweep replacing a recorder that died), it takes the meeting's running
  recording. Meeting rooms only: a lobby is never recorded;
- ``mark_active`` gives it its part number; it records (``session.py``), says so to
  everyone (its attribute ``tp.recording: "1"`` and a ``started`` notice), and checks in
  every few seconds; a host's stop (``stopping``) ends the recording ``complete``, a write
  error ``failed`` with the reason; both are announced;
- its job ending otherwise (SIGTERM, the room ending) closes every file and the manifest;
  the recording ends ``complete`` once nobody is left in the room, and stays ``active``
  while people are, for the next recorder to carry on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess

from talkplatform_agents.bots.election import Election
from talkplatform_agents.bots.recorder.manifest import RecordingManifest
from talkplatform_agents.bots.recorder.session import (
    MANIFEST_NAME,
    RecordingSession,
    SessionOptions,
)
from talkplatform_agents.bots.recorder.storage import LocalStorage
from talkplatform_agents.bots.rpc_errors import answer_errors
from talkplatform_agents.errors import Forbidden, NotFound
from talkplatform_agents.lk import recording as proto
from talkplatform_agents.lk.naming import RECORDER_AGENT_NAME, RoomKind, parse_room
from talkplatform_agents.lk.payloads import BadPayload, parse
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.recordings import RecordingRepository, RunStatus
from talkplatform_agents.tasks import TaskSet

__all__ = ["RecorderOptions", "recorder_entrypoint", "recorder_prewarm"]

logger = logging.getLogger(__name__)

_OPTIONS_KEY = "recorder.options"


@dataclass(frozen=True)
class RecorderOptions:
    database_url: str = ""
    recordings_dir: Path = Path("var/recordings")
    session: SessionOptions = field(default_factory=SessionOptions)
    check_in_s: float = 2.0


def recorder_prewarm(proc: JobProcess, options: RecorderOptions) -> None:
    """Once in each job process: the options for the entrypoint."""
    proc.userdata[_OPTIONS_KEY] = options


async def recorder_entrypoint(ctx: JobContext) -> None:
    options: RecorderOptions = ctx.proc.userdata.get(_OPTIONS_KEY, RecorderOptions())
    room_name = ctx.job.room.name
    ref = parse_room(room_name)
    if ref.kind is not RoomKind.MEETING:
        logger.warning("[%s] the recorder records meeting rooms only; leaving", room_name)
        ctx.shutdown("not a meeting room")
        return
    db = Database(options.database_url)
    recordings = RecordingRepository(db)
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_ALL)
    # A second recorder may come (the REST start's dispatch and the reconciler's, for one):
    # of two, one records, the one already recording if any.
    election = Election(ctx.room, RECORDER_AGENT_NAME, lambda _: ctx.shutdown("duplicate"))

    async def close_election() -> None:
        election.close()

    ctx.add_shutdown_callback(close_election)
    recording_id = await _recording_id(ctx.job.metadata, recordings, ref.key)
    view = None
    if election.start() and recording_id:
        view = await recordings.mark_active(recording_id)
    if view is not None and view.status is RunStatus.STOPPING:
        # Stopped while no recorder ran (the last one died after the host's stop): what
        # earlier parts wrote is all there is; close the recording.
        _close_manifest(LocalStorage(options.recordings_dir), view.id)
        await recordings.finish(view.id, RunStatus.COMPLETE)
        logger.info("[%s] recording %s was stopping: completed", room_name, view.id)
    if view is None or view.status is not RunStatus.ACTIVE:
        logger.info("[%s] no recording to carry on (%s); leaving", room_name,
                    view.status.value if view else "none")  # fmt: skip
        ctx.add_shutdown_callback(db.aclose)
        ctx.shutdown("no running recording")
        return
    # The recorder closes the store itself, last: livekit-agents runs shutdown callbacks
    # all at once, and ending the recording needs the store.
    Recorder(ctx, recordings, MeetingRepository(db), view.id, options, db.aclose).start()
    await election.mark_active()


async def _recording_id(metadata: str, recordings: RecordingRepository, meeting: str) -> str:
    if metadata:
        try:
            return parse(proto.RecordingJob, metadata).recording_id
        except BadPayload as exc:
            logger.warning("[meeting-%s] bad recorder metadata: %s", meeting, exc)
    running = await recordings.running(meeting)
    return running.id if running else ""


class Recorder:
    """The bot's control: the session, the store's word on stopping, and the announcements."""

    def __init__(
        self,
        ctx: JobContext,
        recordings: RecordingRepository,
        meetings: MeetingRepository,
        recording_id: str,
        options: RecorderOptions,
        close_store: Callable[[], Awaitable[None]],
    ) -> None:
        self._ctx = ctx
        self._room = ctx.room
        self._recordings = recordings
        self._meetings = meetings
        self._meeting_id = parse_room(ctx.room.name).key
        self._id = recording_id
        self._options = options
        self._tasks = TaskSet(f"recorder-control:{ctx.room.name}")
        self._session = RecordingSession(
            ctx.room, recording_id, LocalStorage(options.recordings_dir), options.session,
            self._failed,
        )  # fmt: skip
        self._ended = asyncio.Event()
        self._close_store = close_store
        # Whether the last person left (seen while connected: once the bot itself is
        # disconnected, its room lists nobody, whether people remain or not).
        self._alone = False

    def start(self) -> None:
        self._room.on("participant_connected", self._on_people)
        self._room.on("participant_disconnected", self._on_people)
        self._session.start()
        self._ctx.add_shutdown_callback(self._on_shutdown)
        local = self._room.local_participant
        for method, handler in ((proto.RPC_RECORDING_STOP, self._rpc_stop),
                                (proto.RPC_RECORDING_STATUS, self._rpc_status)):  # fmt: skip
            local.register_rpc_method(method, answer_errors(self._room.name, method, handler))
        self._tasks.spawn(self._announce_on(), "announce")
        self._tasks.spawn(self._check_in(), "check-in")
        logger.info("[%s] recording %s, part %d", self._room.name, self._id, self._session.part)

    async def _announce_on(self) -> None:
        await self._room.local_participant.set_attributes(
            {proto.ATTR_RECORDING: proto.ATTR_RECORDING_ON}
        )
        await self._notice(proto.NOTICE_STARTED)

    async def _check_in(self) -> None:
        while not self._ended.is_set():
            await asyncio.sleep(self._options.check_in_s)
            try:
                view = await self._recordings.check_in(self._id)
            except Exception as exc:  # the store away: keep recording, ask again later
                logger.warning("[%s] recording %s: check-in failed: %r", self._room.name,
                               self._id, exc)  # fmt: skip
                continue
            if view is None or view.status is not RunStatus.ACTIVE:
                await self._end(error="")
                return

    # -- the hosts' RPCs (the store says who is a host, never the caller) ---------------

    async def _host_only(self, data: rtc.RpcInvocationData) -> None:
        if await self._meetings.role(self._meeting_id, data.caller_identity) not in (
            MODERATOR_ROLES
        ):
            raise Forbidden("only the meeting's hosts and co-hosts control its recording")

    async def _rpc_stop(self, data: rtc.RpcInvocationData) -> str:
        await self._host_only(data)
        view = await self._recordings.request_stop(self._id)
        if view is None:
            raise NotFound("no such recording", recordingId=self._id)
        # The next check-in ends it: the answer must reach the caller before the bot leaves.
        return json.dumps({"id": view.id, "status": view.status.value})

    async def _rpc_status(self, data: rtc.RpcInvocationData) -> str:
        await self._host_only(data)
        view = await self._recordings.get(self._id)
        if view is None:
            raise NotFound("no such recording", recordingId=self._id)
        started = view.started_at.isoformat() if view.started_at else None
        return json.dumps({"id": view.id, "status": view.status.value, "parts": view.parts,
                           "startedAt": started})  # fmt: skip

    def _failed(self, reason: str) -> None:
        self._tasks.spawn(self._end(error=reason), "fail")

    async def _end(self, error: str) -> None:
        """A host's stop (or the recording ended elsewhere), or a failure: close the part,
        end the recording, announce it, leave."""
        if self._ended.is_set():
            return
        self._ended.set()
        await self._session.stop(error)
        if error:
            await self._recordings.finish(self._id, RunStatus.FAILED, error)
        else:
            self._session.finish()
            await self._recordings.finish(self._id, RunStatus.COMPLETE)
        await self._announce_off(proto.NOTICE_FAILED if error else proto.NOTICE_STOPPED, error)
        self._ctx.shutdown("recording failed" if error else "recording stopped")

    async def _announce_off(self, status: proto.NoticeStatus, error: str = "") -> None:
        try:
            await self._room.local_participant.set_attributes(
                {proto.ATTR_RECORDING: proto.ATTR_RECORDING_OFF}
            )
            await self._notice(status, error)
        except Exception as exc:  # leaving anyway: the attribute goes with the bot
            logger.warning("[%s] could not announce %s: %r", self._room.name, status, exc)

    async def _notice(self, status: proto.NoticeStatus, error: str = "") -> None:
        payload = proto.notice_payload(self._id, status, int(time.time() * 1000), error or None)
        await self._room.local_participant.publish_data(
            payload, reliable=True, topic=proto.TOPIC_NOTICE
        )

    def _on_people(self, _participant: rtc.RemoteParticipant) -> None:
        if self._room.isconnected():
            self._alone = not _people_in(self._room)

    async def _on_shutdown(self) -> None:
        # SIGTERM, or the room ended: every file and the manifest closed before exit. The
        # recording ends with the meeting; while people remain, a new recorder carries it
        # on (the service's reconciler dispatches one to a room being recorded).
        try:
            if not self._ended.is_set():
                self._ended.set()
                await self._session.stop()
                if self._alone:
                    self._session.finish()
                    await self._recordings.finish(self._id, RunStatus.COMPLETE)
            await self._tasks.aclose()
        finally:
            await self._close_store()


def _people_in(room: rtc.Room) -> bool:
    return any(
        p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        for p in room.remote_participants.values()
    )


def _close_manifest(storage: LocalStorage, recording_id: str) -> None:
    path = storage.path_for(recording_id, MANIFEST_NAME)
    if path.exists():
        manifest = RecordingManifest.load(path)
        manifest.finish(time.time_ns())
        manifest.write(path)
