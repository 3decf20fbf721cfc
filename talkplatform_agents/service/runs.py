"""Starting and stopping a bot's runs over a meeting room (recordings, transcriptions) on the
service's side, the same for a host's REST call and for a meeting whose settings start one
on their own (``settings.<section>.auto``). Each kind of run is a ``RunControl``
(``service/recording.py``, ``service/transcription.py``); the lifecycle is the store's
(``store/runs.py``).

A start writes the run (``starting``) first, then dispatches the bot into the meeting room
with the run's id as its job metadata. If the dispatch fails, the run ends ``failed`` with
the reason, so it is listed (nothing is lost) and does not block the next start; the caller
gets the failure (502 or 503), and the room hears the kind's ``failed`` notice (best
effort). A dispatch that reached livekit-server is not retried here: the server holds it
until a worker takes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, Self, TypeVar

from livekit import api

from talkplatform_agents.errors import ApiError, Conflict
from talkplatform_agents.lk.naming import RoomKind, meeting_room_name, parse_room
from talkplatform_agents.lk.server_api import as_api_error
from talkplatform_agents.store import MeetingRepository, MeetingView, RunStatus
from talkplatform_agents.store.runs import RunRepository, RunView

__all__ = ["AutoSettings", "FailedNotice", "RunControl", "RunDispatch"]

logger = logging.getLogger(__name__)

# A stopping run whose bot has not checked in for this long is taken for abandoned when a
# host asks again (bots check in every few seconds).
BOT_SILENT_S = 60.0


class RunDispatch(Protocol):
    """What starting a run needs of livekit-server (``ServerApi`` is one)."""

    async def dispatch(self, room: str, agent_name: str, metadata: str = "") -> str: ...

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None: ...


class AutoSettings(Protocol):
    """A meeting's settings section for a kind of run (a model of ``service/schemas.py``):
    ``auto`` starts a run on the meeting room's first join."""

    @property
    def auto(self) -> bool: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


# A kind's notice payload (``lk/recording.py``'s ``notice_payload``, ...), as sent when a
# run failed: run id, status, Unix ms, the reason.
FailedNotice = Callable[[str, Literal["failed"], int, str | None], str]

SettingsT = TypeVar("SettingsT", bound=AutoSettings)
ViewT = TypeVar("ViewT", bound=RunView)


@dataclass(frozen=True)
class RunControl(Generic[SettingsT]):
    """One kind of run as the service starts and stops it."""

    noun: str  # "recording": in log lines and errors
    bot: str  # "recorder": likewise
    id_key: str  # "recordingId": the run's id in an error's context
    agent_name: str  # the bot dispatched
    job_metadata: Callable[[str], str]  # the dispatch's metadata for a run's id
    notice_topic: str  # where the meeting room hears of a failed run
    notice_payload: FailedNotice
    settings_key: str  # "recording": the meeting's settings section
    settings_model: type[SettingsT]

    @property
    def auto_requester(self) -> str:
        """Who asked, for a run the meeting's settings started."""
        return f"settings.{self.settings_key}.auto"

    async def start(
        self, runs: RunRepository[Any, ViewT], server: RunDispatch, meeting_id: str, by: str
    ) -> ViewT:
        """A new run over the meeting, its bot dispatched. ``Conflict`` while one runs;
        livekit-server's failure (502, 503) once the run is marked failed."""
        room = meeting_room_name(meeting_id)
        run = await runs.start(meeting_id, by)
        try:
            await server.dispatch(room, self.agent_name, self.job_metadata(run.id))
        except Exception as exc:
            error = as_api_error(exc)
            reason = error.message if error else f"{type(exc).__name__}: {exc}"
            logger.warning("[%s] %s %s: the %s could not be dispatched: %s",
                           room, self.noun, run.id, self.bot, reason)  # fmt: skip
            await runs.finish(
                run.id, RunStatus.FAILED, f"the {self.bot} could not be dispatched: {reason}"
            )
            await self._tell_failed(server, room, run.id, reason)
            if error is None:
                raise  # a bug: the service's logged 500
            raise type(error)(
                f"the {self.bot} could not be dispatched: {error.message}",
                meetingId=meeting_id,
                **{self.id_key: run.id},
            ) from exc
        logger.info("[%s] %s %s requested by %s", room, self.noun, run.id, by)
        return run

    async def stop(self, runs: RunRepository[Any, ViewT], server: RunDispatch, run: ViewT) -> ViewT:
        """Ask the run to stop (its bot learns it at its next check-in); end it at once if
        no bot began, or if its bot fell silent after an earlier stop."""
        silent_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=BOT_SILENT_S)
        stopped = await runs.request_stop(run.id, silent_since=silent_since) or run
        room = meeting_room_name(run.meeting_id)
        logger.info("[%s] %s %s: stop asked (%s)", room, self.noun, run.id, stopped.status)
        if stopped.status is RunStatus.FAILED and run.status.running:
            # Its bot is gone, so nobody else says that the run is off.
            await self._tell_failed(server, room, run.id, stopped.error or "")
        return stopped

    def settings(self, meeting: MeetingView) -> SettingsT:
        """The meeting's settings section (malformed: the defaults, logged; settings are
        checked when written, but a meeting stored before that check may hold anything)."""
        value = meeting.settings.get(self.settings_key)
        if value is None:
            return self.settings_model()
        try:
            return self.settings_model.model_validate(value)
        except ValueError as exc:
            logger.warning("[%s] settings.%s is malformed (%s): the defaults apply",
                           meeting_room_name(meeting.id), self.settings_key, exc)  # fmt: skip
            return self.settings_model()

    async def auto_start(
        self,
        meetings: MeetingRepository,
        runs: RunRepository[Any, ViewT],
        server: RunDispatch,
        event: api.WebhookEvent,
    ) -> ViewT | None:
        """On someone joining a meeting room whose settings say ``auto``: start a run,
        unless one was made since the room started (running, or stopped by a host: a stop
        holds for the rest of that room's life). Never raises: a webhook is no place to
        fail for this, so failures are logged. The run started, if any."""
        if event.event != "participant_joined":
            return None
        if event.participant.kind == api.ParticipantInfo.Kind.AGENT:
            return None
        ref = parse_room(event.room.name)
        if ref.kind is not RoomKind.MEETING:
            return None
        try:
            meeting = await meetings.get(ref.key)
            if meeting is None or meeting.ended_at is not None:
                return None
            if not self.settings(meeting).auto:
                return None
            since = _room_created(event.room) or meeting.room_started_at
            made = await runs.of_meeting(meeting.id)
            if any(since is None or r.created_at >= since for r in made):
                return None
            return await self.start(runs, server, meeting.id, self.auto_requester)
        except Conflict:
            return None  # another service process started it
        except ApiError as exc:
            logger.warning("[%s] a %s on its own failed: %s", event.room.name, self.noun,
                           exc.message)  # fmt: skip
        except Exception:
            logger.exception("[%s] a %s on its own failed", event.room.name, self.noun)
        return None

    async def _tell_failed(self, server: RunDispatch, room: str, run_id: str, why: str) -> None:
        """Everyone in the room hears that the run failed; best effort (livekit-server may
        be what failed)."""
        payload = self.notice_payload(run_id, "failed", int(time.time() * 1000), why)
        try:
            await server.send_data(room, self.notice_topic, payload)
        except Exception as exc:
            logger.info("[%s] %s %s: failure notice not sent: %s", room, self.noun, run_id, exc)


def _room_created(room: api.Room) -> dt.datetime | None:
    """When livekit-server created this room (the webhook's word, so never the previous
    session's, as the store's ``room_started_at`` may be while webhooks race)."""
    if room.creation_time_ms:
        return dt.datetime.fromtimestamp(room.creation_time_ms / 1000, dt.UTC)
    if room.creation_time:
        return dt.datetime.fromtimestamp(room.creation_time, dt.UTC)
    return None
