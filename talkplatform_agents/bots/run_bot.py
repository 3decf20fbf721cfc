"""What the recorder and the transcriber share: each serves one *run* of the meeting (a
recording, a transcription) whose state lives in the store (``store/runs.py``), and is one
part of it.

- ``take_run``: meeting rooms only; of two bots of the agent, one serves (``Election``);
  the run is the job's (its metadata) or the meeting's running one (a replacement
  dispatched without metadata); ``mark_active`` makes it this bot's; a run found stopping
  (stopped while no bot served it) is closed; anything else, and the bot leaves.
- ``RunBot``: the control every such bot has. It says the run is on (its own attribute,
  and a notice to everyone), checks in every few seconds (a host's stop is the store's
  ``stopping``), answers the hosts' stop and status RPCs (hosts as the store says, never
  the caller), and sees whether people remain (a bot that leaves an empty room ends its
  run; one that leaves people behind leaves the run for its replacement).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext

from talkplatform_agents.bots.election import Election
from talkplatform_agents.bots.rpc_errors import answer_errors
from talkplatform_agents.errors import Forbidden, NotFound
from talkplatform_agents.lk.naming import RoomKind, parse_room
from talkplatform_agents.lk.payloads import BadPayload
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.store import MeetingRepository
from talkplatform_agents.store.runs import RunRepository, RunStatus, RunView
from talkplatform_agents.tasks import TaskSet

__all__ = ["RunBot", "RunProtocol", "is_agent", "is_meeting_room", "people_in", "take_run"]

logger = logging.getLogger(__name__)

ViewT = TypeVar("ViewT", bound=RunView)
_ROOM_GONE = frozenset({rtc.DisconnectReason.ROOM_DELETED, rtc.DisconnectReason.ROOM_CLOSED})


@dataclass(frozen=True)
class RunProtocol:
    """One kind of run's wire protocol (``lk/recording.py``, ``lk/transcription.py``)."""

    agent_name: str
    noun: str  # "recording": for log lines and errors
    job_run_id: Callable[[str], str]  # job metadata -> run id; BadPayload if malformed
    attribute: str  # on the bot's participant: "1" while the run is on, "0" after
    notice_topic: str
    # (run id, status, at Unix ms, error or None) -> the notice's JSON
    notice_payload: Callable[[str, Any, int, str | None], str]
    rpc_stop: str
    rpc_status: str


def is_meeting_room(ctx: JobContext, protocol: RunProtocol) -> bool:
    """Whether the job's room is a meeting room; if not, the bot is told to leave."""
    if parse_room(ctx.job.room.name).kind is RoomKind.MEETING:
        return True
    logger.warning("[%s] the %s bot serves meeting rooms only; leaving", ctx.job.room.name,
                   protocol.agent_name)  # fmt: skip
    ctx.shutdown("not a meeting room")
    return False


async def take_run(
    ctx: JobContext,
    protocol: RunProtocol,
    runs: RunRepository[Any, ViewT],
    auto_subscribe: AutoSubscribe,
    close_stopping: Callable[[ViewT], Awaitable[None]],
) -> tuple[ViewT, Election] | None:
    """Connect, and take the run this bot serves (``active``), with the election it won;
    None when there is none to serve (the bot is told to leave). ``close_stopping`` ends
    a run that was found stopping (what earlier parts made is all there is)."""
    room_name = ctx.job.room.name
    meeting_id = parse_room(room_name).key
    await ctx.connect(auto_subscribe=auto_subscribe)
    # A second bot may come (the REST start's dispatch and the reconciler's, for one): of
    # two, one serves, the one already serving if any.
    election = Election(ctx.room, protocol.agent_name, lambda _: ctx.shutdown("duplicate"))

    async def close_election() -> None:
        election.close()

    ctx.add_shutdown_callback(close_election)
    run_id = ""
    if ctx.job.metadata:
        try:
            run_id = protocol.job_run_id(ctx.job.metadata)
        except BadPayload as exc:
            logger.warning("[%s] bad %s job metadata: %s", room_name, protocol.noun, exc)
    if not run_id:
        running = await runs.running(meeting_id)
        run_id = running.id if running else ""
    view = await runs.mark_active(run_id) if election.start() and run_id else None
    if view is not None and view.status is RunStatus.STOPPING:
        await close_stopping(view)
        logger.info("[%s] %s %s was stopping: completed", room_name, protocol.noun, view.id)
    if view is None or view.status is not RunStatus.ACTIVE:
        logger.info("[%s] no %s to carry on (%s); leaving", room_name, protocol.noun,
                    view.status.value if view else "none")  # fmt: skip
        ctx.shutdown(f"no running {protocol.noun}")
        return None
    return view, election


class RunBot(Generic[ViewT]):
    """The control of a bot that serves a run; subclasses do the work and ``end`` it."""

    def __init__(
        self,
        ctx: JobContext,
        protocol: RunProtocol,
        runs: RunRepository[Any, ViewT],
        meetings: MeetingRepository,
        run_id: str,
        check_in_s: float,
        close_store: Callable[[], Awaitable[None]],
    ) -> None:
        self._ctx = ctx
        self._room = ctx.room
        self._protocol = protocol
        self._runs = runs
        self._meetings = meetings
        self._meeting_id = parse_room(ctx.room.name).key
        self._id = run_id
        self._check_in_s = check_in_s
        self._tasks = TaskSet(f"{protocol.agent_name}-control:{ctx.room.name}")
        self._ended = asyncio.Event()
        # Whether the last person left (seen while connected: once the bot itself is
        # disconnected, its room lists nobody, whether people remain or not).
        self._alone = False
        self._close_store = close_store
        # The run's end, once begun: a shutdown meanwhile waits for it, never cuts it off.
        self._ending: asyncio.Task[None] | None = None
        ctx.add_shutdown_callback(self._on_shutdown)

    def start_control(self) -> None:
        """Announce, check in, answer the RPCs, watch who remains."""
        self._room.on("participant_connected", self._on_people)
        self._room.on("participant_disconnected", self._on_people)
        local = self._room.local_participant
        for method, handler in ((self._protocol.rpc_stop, self._rpc_stop),
                                (self._protocol.rpc_status, self._rpc_status)):  # fmt: skip
            local.register_rpc_method(method, answer_errors(self._room.name, method, handler))
        self._tasks.spawn(self._announce_on(), "announce")
        self._tasks.spawn(self._check_in(), "check-in")

    async def end(self, error: str = "") -> None:
        """The run is over: a host's stop (or it ended elsewhere), or ``error`` (a
        failure). Once: the work is stopped and kept, the run ended in the store, that
        announced, and the bot leaves, whatever of it fails."""
        if self._ending is None:
            if self._ended.is_set():
                return  # shutting down already
            self._ended.set()
            self._ending = asyncio.create_task(
                self._end_run(error), name=f"{self._protocol.agent_name}:{self._room.name}:end"
            )
        await asyncio.shield(self._ending)

    async def finish_work(self, error: str = "") -> None:
        """Stop the work and keep what it made (a subclass's): files closed, captions
        stored. ``error``: the run failed."""
        raise NotImplementedError

    async def leave_work(self) -> None:
        """Stop the work and keep what it made, the run going on for another bot."""
        raise NotImplementedError

    def room_over(self) -> bool:
        """Whether the meeting room is over for this run: nobody left in it, or the room
        deleted or closed (ending a meeting for all disconnects everyone at once, often
        before the bot sees anyone leave)."""
        reason = self._room.local_participant.disconnect_reason
        return self._alone or reason in _ROOM_GONE

    async def _end_run(self, error: str) -> None:
        try:
            await self.finish_work(error)
            status = RunStatus.FAILED if error else RunStatus.COMPLETE
            await self._runs.finish(self._id, status, error or None)
        except Exception:
            # The run stays as the store has it: a replacement, or a host's second stop,
            # closes it. The bot leaves all the same.
            logger.exception("[%s] %s %s: ending it failed", self._room.name,
                             self._protocol.noun, self._id)  # fmt: skip
        finally:
            await self.announce_off("failed" if error else "stopped", error)
            self._ctx.shutdown(f"{self._protocol.noun} {'failed' if error else 'stopped'}")

    async def _on_shutdown(self) -> None:
        # SIGTERM, the room ending, or our own end. The run ends with the meeting; while
        # people remain, a new bot carries it on.
        try:
            if self._ending is not None:
                await asyncio.gather(self._ending, return_exceptions=True)
            elif not self._ended.is_set():
                self._ended.set()
                await self.leave_work()
                if self.room_over():
                    await self._runs.finish(self._id, RunStatus.COMPLETE)
            await self._tasks.aclose()
        finally:
            await self._close_store()

    def status_extra(self, view: ViewT) -> dict[str, Any]:
        """More for the status RPC's answer."""
        return {}

    async def notice(self, status: str, error: str = "") -> None:
        payload = self._protocol.notice_payload(
            self._id, status, int(time.time() * 1000), error or None
        )
        await self._room.local_participant.publish_data(
            payload, reliable=True, topic=self._protocol.notice_topic
        )

    async def announce_off(self, status: str, error: str = "") -> None:
        try:
            await self._room.local_participant.set_attributes({self._protocol.attribute: "0"})
            await self.notice(status, error)
        except Exception as exc:  # leaving anyway: the attribute goes with the bot
            logger.warning("[%s] could not announce %s: %r", self._room.name, status, exc)

    async def _announce_on(self) -> None:
        await self._room.local_participant.set_attributes({self._protocol.attribute: "1"})
        await self.notice("started")

    async def _check_in(self) -> None:
        while not self._ended.is_set():
            await asyncio.sleep(self._check_in_s)
            try:
                view = await self._runs.check_in(self._id)
            except Exception as exc:  # the store away: keep working, ask again later
                logger.warning("[%s] %s %s: check-in failed: %r", self._room.name,
                               self._protocol.noun, self._id, exc)  # fmt: skip
                continue
            if view is None or view.status is not RunStatus.ACTIVE:
                await self.end()
                return

    async def _host_only(self, data: rtc.RpcInvocationData) -> None:
        role = await self._meetings.role(self._meeting_id, data.caller_identity)
        if role not in MODERATOR_ROLES:
            raise Forbidden(
                f"only the meeting's hosts and co-hosts control its {self._protocol.noun}"
            )

    async def _rpc_stop(self, data: rtc.RpcInvocationData) -> str:
        await self._host_only(data)
        view = await self._runs.request_stop(self._id)
        if view is None:
            raise NotFound(f"no such {self._protocol.noun}", id=self._id)
        # The next check-in ends it: the answer must reach the caller before the bot leaves.
        return json.dumps({"id": view.id, "status": view.status.value})

    async def _rpc_status(self, data: rtc.RpcInvocationData) -> str:
        await self._host_only(data)
        view = await self._runs.get(self._id)
        if view is None:
            raise NotFound(f"no such {self._protocol.noun}", id=self._id)
        started = view.started_at.isoformat() if view.started_at else None
        return json.dumps({"id": view.id, "status": view.status.value, "startedAt": started,
                           **self.status_extra(view)})  # fmt: skip

    def _on_people(self, _participant: rtc.RemoteParticipant) -> None:
        if self._room.isconnected():
            self._alone = not people_in(self._room)


def is_agent(participant: rtc.RemoteParticipant) -> bool:
    return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


def people_in(room: rtc.Room) -> bool:
    """Whether anyone but bots is in the room."""
    return any(not is_agent(p) for p in room.remote_participants.values())
