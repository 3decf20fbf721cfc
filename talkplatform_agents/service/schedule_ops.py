"""The service's operations as the calendar's scheduler calls them (``MeetingOps`` of
``calendar/scheduler.py``): the same code the REST routes and webhooks run, nothing of its
own. Opening a room is livekit-server's CreateRoom with the meeting's bots dispatched as it
is created (the tokens' ``roomConfig`` does the same for a room a guest creates); runs
start through ``RunControl.start``; the end is ``HostControls.end`` run as the meeting's
host.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import uuid
from typing import Any

from livekit import api

from talkplatform_agents.calendar.scheduler import (
    Clock,
    RunKind,
    Scheduled,
    Scheduler,
    SchedulerOptions,
)
from talkplatform_agents.calendar.stored import schedule_of
from talkplatform_agents.config import Settings
from talkplatform_agents.errors import Conflict, Invalid
from talkplatform_agents.lk.naming import MEETING_AGENTS, lobby_room_name, meeting_room_name
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.moderation import HostControls
from talkplatform_agents.roles import Role
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.recording import RECORDING
from talkplatform_agents.service.runs import RunControl
from talkplatform_agents.service.transcription import TRANSCRIPTION
from talkplatform_agents.store import MeetingRepository, ScheduleActionRepository
from talkplatform_agents.store.recordings import RecordingRepository
from talkplatform_agents.store.runs import RunRepository
from talkplatform_agents.store.transcriptions import TranscriptionRepository

__all__ = ["ServiceOps", "scheduler_holder", "service_scheduler"]

logger = logging.getLogger(__name__)


class ServiceOps:
    def __init__(
        self,
        *,
        meetings: MeetingRepository,
        actions: ScheduleActionRepository,
        server: ServerApi,
        controls: HostControls,
        recordings: RecordingRepository,
        transcriptions: TranscriptionRepository,
    ) -> None:
        self._meetings = meetings
        self._actions = actions
        self._server = server
        self._controls = controls
        self._runs: dict[RunKind, tuple[RunControl[Any], RunRepository[Any, Any]]] = {
            "record": (RECORDING, recordings),
            "transcribe": (TRANSCRIPTION, transcriptions),
        }

    async def due(self, window_start: dt.datetime, window_end: dt.datetime) -> list[Scheduled]:
        found: list[Scheduled] = []
        for meeting, view in await self._actions.due_schedules(window_start, window_end):
            try:
                schedule = schedule_of(view)
            except (Invalid, ValueError, KeyError) as exc:
                logger.warning("[%s] stored schedule unreadable, skipped: %s",
                               meeting_room_name(meeting.id), exc)  # fmt: skip
                continue
            found.append(
                Scheduled(
                    meeting.id,
                    schedule,
                    record=RECORDING.settings(meeting).auto,
                    transcribe=TRANSCRIPTION.settings(meeting).auto,
                )
            )
        return found

    async def open_room(self, meeting_id: str, empty_timeout_s: int) -> None:
        room = meeting_room_name(meeting_id)
        await self._server.create_room(room, MEETING_AGENTS, empty_timeout_s=empty_timeout_s)
        logger.info("[%s] opened ahead of its start, with %s", room, ", ".join(MEETING_AGENTS))

    async def start_run(self, meeting_id: str, kind: RunKind, since: dt.datetime) -> None:
        control, runs = self._runs[kind]
        made = await runs.of_meeting(meeting_id)
        if any(r.created_at >= since for r in made):
            return  # started since the room opened (a first join's, a host's), or stopped
        try:
            await control.start(runs, self._server, meeting_id, control.auto_requester)
        except Conflict:
            return  # one runs already

    async def humans_in(self, meeting_id: str) -> int:
        present = await self._server.participants(meeting_room_name(meeting_id))
        return sum(1 for p in present if p.kind != api.ParticipantInfo.Kind.AGENT)

    async def end(self, meeting_id: str, *, series_goes_on: bool) -> None:
        if series_goes_on:
            # Ending the meeting would end the series; this occurrence's rooms close.
            await self._server.delete_room(meeting_room_name(meeting_id))
            await self._server.delete_room(lobby_room_name(meeting_id))
            logger.info("[%s] occurrence closed; the series goes on",
                        meeting_room_name(meeting_id))  # fmt: skip
            return
        moderators = await self._meetings.moderators(meeting_id)
        host = next((user for user, role in moderators.items() if role is Role.HOST), None)
        if host is None:
            raise Conflict("the meeting has no host to end it as", meetingId=meeting_id)
        await self._controls.end(meeting_id, host)


def service_scheduler(
    ctx: ServiceContext,
    settings: Settings,
    *,
    clock: Clock | None = None,
    tick_s: float | None = None,
) -> Scheduler:
    """The scheduler over the service's own context (its store, its server API, its host
    controls), timed by ``settings`` (SCHEDULER_LEAD_S, SCHEDULER_GRACE_S)."""
    actions = ScheduleActionRepository(ctx.db)
    ops = ServiceOps(
        meetings=ctx.meetings,
        actions=actions,
        server=ctx.server,
        controls=ctx.controls,
        recordings=RecordingRepository(ctx.db),
        transcriptions=TranscriptionRepository(ctx.db),
    )
    defaults = SchedulerOptions()
    options = SchedulerOptions(
        lead_s=settings.scheduler_lead_s,
        grace_s=settings.scheduler_grace_s,
        tick_s=tick_s if tick_s is not None else defaults.tick_s,
    )
    return Scheduler(ops, actions, holder=scheduler_holder(), clock=clock, options=options)


# schedule_actions.holder is String(128).
MAX_HOLDER = 128


def scheduler_holder(hostname: str | None = None) -> str:
    """This process's name on the actions it claims (one scheduler of several acts):
    ``scheduler/<host>/<pid>/<random>``, within ``MAX_HOLDER`` characters whatever the host's
    name (a long one is cut, with a hash of the whole so that two hosts stay apart)."""
    host = socket.gethostname() if hostname is None else hostname
    tail = f"/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    room = MAX_HOLDER - len("scheduler/") - len(tail)
    if len(host) > room:
        digest = hashlib.sha256(host.encode()).hexdigest()[:12]
        host = f"{host[: room - len(digest) - 1]}~{digest}"
    return f"scheduler/{host}{tail}"
