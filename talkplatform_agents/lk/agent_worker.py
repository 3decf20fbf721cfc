"""A worker's link to livekit-server's agent service (``/agent``, a WebSocket of protobuf
``agent.WorkerMessage`` / ``agent.ServerMessage``): register an agent name, answer job
offers, receive assignments and terminations, report each job's state and the worker's load.

This is the wire side only; what a job becomes is the caller's (``JobHandler``). The link
reconnects by itself. Jobs already running are unaffected (their rooms are connections of
their own), but livekit-server v1.13 forgets a worker's jobs when its link drops: their
later status updates are "unknown job", and a dispatch deleted meanwhile never reaches
them (a deleted room still ends them, through the room itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

import aiohttp
from livekit import api
from livekit.protocol import agent, models

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE
from talkplatform_agents.tasks import TaskSet

__all__ = [
    "SERVER_TARGET_LOAD",
    "AgentLinkError",
    "AgentWorkerLink",
    "JobHandler",
    "LinkOptions",
    "WorkerLoad",
]

logger = logging.getLogger(__name__)


class AgentLinkError(TalkPlatformError):
    """livekit-server refused or broke the worker's registration."""


@dataclass(frozen=True)
class LinkOptions:
    ws_url: str
    api_key: str
    api_secret: str
    agent_name: str
    version: str = "talkplatform"
    status_interval_s: float = 2.5
    # livekit-server gives an accepted job this long to be assigned, and we the same.
    assignment_timeout_s: float = 7.5
    retry_max_s: float = 10.0


@dataclass(frozen=True)
class WorkerLoad:
    # livekit-server sends a job only to a worker whose load is under its target load
    # (``agents.target_load``, 0.7 by default), preferring the least loaded: a worker's
    # load is its fill scaled to that target, and ``full`` says when it takes no more.
    load: float
    jobs: int
    full: bool


# livekit-server's default ``agents.target_load``: a load at or above it gets no job.
SERVER_TARGET_LOAD = 0.7


class JobHandler(Protocol):
    def offer(self, agent_name: str, job: agent.Job) -> bool:
        """Whether to take ``job`` (room capacity): True reserves room for it."""
        ...

    def withdraw(self, agent_name: str, job: agent.Job) -> None:
        """A reserved job was never assigned: release its reservation."""
        ...

    def assigned(self, agent_name: str, job: agent.Job, url: str, token: str) -> None:
        """Run ``job``: join ``url`` with ``token``."""
        ...

    def terminated(self, agent_name: str, job_id: str) -> None:
        """livekit-server ends ``job_id`` (its room was deleted, or its dispatch removed)."""
        ...

    def status(self) -> WorkerLoad:
        """What the status updates report."""
        ...


class AgentWorkerLink:
    def __init__(self, options: LinkOptions, handler: JobHandler) -> None:
        self._options = options
        self._handler = handler
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, asyncio.Future[agent.JobAssignment]] = {}
        # Offers awaiting their assignment, and the status reports of the live connection.
        self._tasks = TaskSet(f"agent-link:{options.agent_name}")
        self._draining = False
        self._closed = False
        self.worker_id = ""
        self.registered = asyncio.Event()

    @property
    def agent_name(self) -> str:
        return self._options.agent_name

    async def run(self) -> None:
        """Stay registered until cancelled, reconnecting with backoff."""
        retry = 0
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    await self._session(http)
                except (aiohttp.ClientError, OSError, AgentLinkError, TimeoutError) as exc:
                    # A link that had registered starts its backoff afresh.
                    retry = 1 if self.registered.is_set() else retry + 1
                    self.registered.clear()
                    self._ws = None
                    delay = min(0.5 * 2**retry, self._options.retry_max_s)
                    logger.warning("[%s] agent link lost (%r); again in %.1fs",
                                   self.agent_name, exc, delay)  # fmt: skip
                    await asyncio.sleep(delay)
                finally:
                    self.registered.clear()
                    self._ws = None

    async def _session(self, http: aiohttp.ClientSession) -> None:
        options = self._options
        token = (
            api.AccessToken(options.api_key, options.api_secret)
            .with_grants(api.VideoGrants(agent=True))
            .to_jwt()
        )
        parsed = urlparse(options.ws_url)
        scheme = parsed.scheme.replace("http", "ws")
        url = f"{scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/agent"
        async with http.ws_connect(
            url, headers={"Authorization": f"Bearer {token}"}, heartbeat=30
        ) as ws:
            await self._register(ws)
            self._ws = ws
            sending = self._tasks.spawn(self._report_status(), "status")
            try:
                async for frame in ws:
                    if frame.type == aiohttp.WSMsgType.BINARY:
                        message = agent.ServerMessage()
                        message.ParseFromString(frame.data)
                        self._on_message(message)
                    elif frame.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
            finally:
                if sending is not None:
                    sending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sending
        raise AgentLinkError(f"livekit-server closed the agent link of {self.agent_name}")

    async def _register(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        request = agent.WorkerMessage()
        request.register.type = agent.JobType.JT_ROOM
        request.register.agent_name = self._options.agent_name
        request.register.version = self._options.version
        request.register.allowed_permissions.CopyFrom(
            models.ParticipantPermission(
                can_publish=True, can_subscribe=True, can_publish_data=True,
                can_update_metadata=True, agent=True,
            )
        )  # fmt: skip
        await ws.send_bytes(request.SerializeToString())
        frame = await asyncio.wait_for(ws.receive(), 30)
        if frame.type != aiohttp.WSMsgType.BINARY:
            raise AgentLinkError(f"registration of {self.agent_name} answered with {frame.type}")
        reply = agent.ServerMessage()
        reply.ParseFromString(frame.data)
        if not reply.HasField("register"):
            raise AgentLinkError(f"registration of {self.agent_name} answered with {reply}")
        self.worker_id = reply.register.worker_id
        self.registered.set()
        logger.info("[%s] registered as worker %s", self.agent_name, self.worker_id)

    def _on_message(self, message: agent.ServerMessage) -> None:
        kind = message.WhichOneof("message")
        if kind == "availability":
            job = message.availability.job
            self._tasks.spawn(self._answer_offer(job), f"offer {job.id} in {job.room.name}")
        elif kind == "assignment":
            assigned = message.assignment.job
            future = self._pending.pop(assigned.id, None)
            if future is not None and not future.done():
                future.set_result(message.assignment)
            else:
                # Too late (our wait ended) or never offered: livekit-server thinks it runs.
                logger.warning("[%s] assignment for job %s, which we no longer wait for",
                               assigned.room.name, assigned.id)  # fmt: skip
                failed = self.update_job(assigned.id, agent.JobStatus.JS_FAILED, "not taken")
                self._tasks.spawn(failed, f"refuse {assigned.id}")
        elif kind == "termination":
            self._handler.terminated(self.agent_name, message.termination.job_id)
        # pong, go_away: nothing to do (the link reconnects if the server goes away)

    async def _answer_offer(self, job: agent.Job) -> None:
        options = self._options
        take = not self._draining and not self._closed and self._handler.offer(self.agent_name, job)
        reply = agent.WorkerMessage()
        reply.availability.job_id = job.id
        reply.availability.available = take
        if take:
            reply.availability.participant_identity = f"agent-{job.id}"
            reply.availability.participant_attributes[AGENT_NAME_ATTRIBUTE] = options.agent_name
            future: asyncio.Future[agent.JobAssignment] = asyncio.get_running_loop().create_future()
            self._pending[job.id] = future
        await self._send(reply)
        if not take:
            logger.info("[%s] declined job %s: full", job.room.name, job.id)
            return
        try:
            assignment = await asyncio.wait_for(future, options.assignment_timeout_s)
        except TimeoutError:
            logger.warning("[%s] job %s was never assigned", job.room.name, job.id)
            self._handler.withdraw(self.agent_name, job)
            return
        finally:
            self._pending.pop(job.id, None)
        url = assignment.url or options.ws_url
        self._handler.assigned(self.agent_name, assignment.job, url, assignment.token)

    async def update_job(self, job_id: str, status: int, error: str = "") -> None:
        """Tell livekit-server a job's state (``agent.JobStatus``)."""
        message = agent.WorkerMessage()
        message.update_job.job_id = job_id
        message.update_job.status = status  # type: ignore[assignment]
        message.update_job.error = error
        await self._send(message)

    async def _report_status(self) -> None:
        while True:
            await self._send_status()
            ping = agent.WorkerMessage()
            ping.ping.timestamp = int(time.time() * 1000)
            await self._send(ping)
            await asyncio.sleep(self._options.status_interval_s)

    async def _send_status(self) -> None:
        try:
            status = self._handler.status()
        except Exception:
            logger.exception("[%s] could not read the worker's load", self.agent_name)
            return
        message = agent.WorkerMessage()
        full = self._draining or status.full
        message.update_worker.status = (
            agent.WorkerStatus.WS_FULL if full else agent.WorkerStatus.WS_AVAILABLE
        )
        message.update_worker.load = status.load
        message.update_worker.job_count = status.jobs
        message.update_worker.draining = self._draining
        await self._send(message)

    async def drain(self) -> None:
        """Take no new job from now on, and say so now."""
        self._draining = True
        await self._send_status()

    async def _send(self, message: agent.WorkerMessage) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # the reconnect re-registers; job states follow in later updates
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await ws.send_bytes(message.SerializeToString())

    async def aclose(self) -> None:
        """Cancel what is under way (offers awaiting their assignment); later offers are
        declined. Idempotent."""
        self._closed = True
        await self._tasks.aclose()
