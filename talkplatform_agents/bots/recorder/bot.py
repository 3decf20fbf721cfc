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

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import AutoSubscribe, JobContext, JobProcess

from talkplatform_agents.bots.recorder.manifest import RecordingManifest
from talkplatform_agents.bots.recorder.session import (
    MANIFEST_NAME,
    RecordingSession,
    SessionOptions,
)
from talkplatform_agents.bots.recorder.storage import LocalStorage
from talkplatform_agents.bots.run_bot import RunBot, RunProtocol, is_meeting_room, take_run
from talkplatform_agents.lk import recording as proto
from talkplatform_agents.lk.naming import RECORDER_AGENT_NAME
from talkplatform_agents.lk.payloads import parse
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.recordings import RecordingRepository, RecordingView
from talkplatform_agents.store.runs import RunStatus

__all__ = ["RecorderOptions", "recorder_entrypoint", "recorder_prewarm"]

logger = logging.getLogger(__name__)

_OPTIONS_KEY = "recorder.options"

PROTOCOL = RunProtocol(
    agent_name=RECORDER_AGENT_NAME,
    noun="recording",
    job_run_id=lambda metadata: parse(proto.RecordingJob, metadata).recording_id,
    attribute=proto.ATTR_RECORDING,
    notice_topic=proto.TOPIC_NOTICE,
    notice_payload=proto.notice_payload,
    rpc_stop=proto.RPC_RECORDING_STOP,
    rpc_status=proto.RPC_RECORDING_STATUS,
)


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
    if not is_meeting_room(ctx, PROTOCOL):
        return
    db = Database(options.database_url)
    recordings = RecordingRepository(db)

    async def close_stopping(view: RecordingView) -> None:
        _close_manifest(LocalStorage(options.recordings_dir), view.id)
        await recordings.finish(view.id, RunStatus.COMPLETE)

    taken = await take_run(ctx, PROTOCOL, recordings, AutoSubscribe.SUBSCRIBE_ALL, close_stopping)
    if taken is None:
        ctx.add_shutdown_callback(db.aclose)
        return
    view, election = taken
    # The recorder closes the store itself, last: livekit-agents runs shutdown callbacks
    # all at once, and ending the recording needs the store.
    Recorder(ctx, recordings, MeetingRepository(db), view.id, options, db.aclose).start()
    await election.mark_active()


class Recorder(RunBot[RecordingView]):
    """The recording session, under the shared control (``run_bot.py``)."""

    def __init__(
        self,
        ctx: JobContext,
        recordings: RecordingRepository,
        meetings: MeetingRepository,
        recording_id: str,
        options: RecorderOptions,
        close_store: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(ctx, PROTOCOL, recordings, meetings, recording_id, options.check_in_s,
                         close_store)  # fmt: skip
        self._session = RecordingSession(
            ctx.room, recording_id, LocalStorage(options.recordings_dir), options.session,
            self._failed,
        )  # fmt: skip

    def start(self) -> None:
        self._session.start()
        self.start_control()
        logger.info("[%s] recording %s, part %d", self._room.name, self._id, self._session.part)

    def status_extra(self, view: RecordingView) -> dict[str, Any]:
        return {"parts": view.parts}

    def _failed(self, reason: str) -> None:
        self._tasks.spawn(self.end(error=reason), "fail")

    async def finish_work(self, error: str = "") -> None:
        # A write error keeps what was written; a stop closes the manifest as complete.
        await self._session.stop(error)
        if not error:
            self._session.finish()

    async def leave_work(self) -> None:
        # SIGTERM or the room ending: every file and the manifest closed before exit; the
        # manifest is finished only if the recording ends here (run_bot.room_over).
        await self._session.stop()
        if self.room_over():
            self._session.finish()


def _close_manifest(storage: LocalStorage, recording_id: str) -> None:
    path = storage.path_for(recording_id, MANIFEST_NAME)
    if path.exists():
        manifest = RecordingManifest.load(path)
        manifest.finish(time.time_ns())
        manifest.write(path)
