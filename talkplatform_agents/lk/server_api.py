"""A thin wrapper over livekit-server's API, for what the service does on users' behalf,
and ``as_api_error``: how its failures read to an API caller, the same through REST and RPC."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import aiohttp
from livekit import api
from livekit.protocol import agent

from talkplatform_agents.errors import ApiError, BadGateway, Unavailable
from talkplatform_agents.lk.tokens import Credentials

__all__ = ["STARTING_S", "AgentDispatchApi", "ServerApi", "as_api_error", "job_is_starting"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class AgentDispatchApi(Protocol):
    """What the service's bot reconciler needs of the server: who is in a room, which bots
    are on their way, and a dispatch. ``ServerApi`` is one; a unit test's fake is another."""

    async def participants(self, room: str) -> list[api.ParticipantInfo]: ...

    async def agents_in_flight(self, room: str) -> set[str]: ...

    async def dispatch(self, room: str, agent_name: str) -> str: ...


class ServerApi:
    def __init__(self, http_url: str, credentials: Credentials) -> None:
        self._api = api.LiveKitAPI(http_url, credentials.api_key, credentials.api_secret)

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        """Who is in ``room`` now; an empty list when the room does not exist."""
        request = api.ListParticipantsRequest(room=room)
        reply = await _unless_missing(self._api.room.list_participants(request))
        return list(reply.participants) if reply else []

    async def participant(self, room: str, identity: str) -> api.ParticipantInfo | None:
        request = api.RoomParticipantIdentity(room=room, identity=identity)
        return await _unless_missing(self._api.room.get_participant(request))

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None:
        """Reliable data into ``room``, to ``destinations`` only (``None``: everyone). Works
        from outside the room: the service and bots in other rooms use it."""
        request = api.SendDataRequest(
            room=room,
            data=payload.encode(),
            kind=api.DataPacket.Kind.RELIABLE,
            destination_identities=list(destinations or []),
            topic=topic,
        )
        await _unless_missing(self._api.room.send_data(request))  # gone: nobody to tell

    async def mute_track(self, room: str, identity: str, track_sid: str) -> None:
        request = api.MuteRoomTrackRequest(
            room=room, identity=identity, track_sid=track_sid, muted=True
        )
        await self._api.room.mute_published_track(request)

    async def remove(self, room: str, identity: str) -> bool:
        """Remove ``identity`` from ``room``; False when they were not there."""
        request = api.RoomParticipantIdentity(room=room, identity=identity)
        return await _unless_missing(self._api.room.remove_participant(request)) is not None

    async def update_role(
        self,
        room: str,
        identity: str,
        attributes: dict[str, str],
        metadata: str,
        permission: api.ParticipantPermission,
    ) -> bool:
        """A present participant's new role; False when they are not in the room."""
        request = api.UpdateParticipantRequest(
            room=room,
            identity=identity,
            attributes=attributes,
            metadata=metadata,
            permission=permission,
        )
        return await _unless_missing(self._api.room.update_participant(request)) is not None

    async def delete_room(self, room: str) -> None:
        await _unless_missing(self._api.room.delete_room(api.DeleteRoomRequest(room=room)))

    async def agents_in_flight(self, room: str) -> set[str]:
        """The agent names whose dispatch into ``room`` a worker has taken and is starting: a
        job still pending, or running for less than ``STARTING_S`` (a worker marks the job
        running when it takes it, and its process may take that long to start and join on a
        busy machine). A job running for longer whose bot is not in the room is no bot on its
        way (it was removed, or is leaving), and a dispatch no worker took has no job at all."""
        dispatches = await _unless_missing(self._api.agent_dispatch.list_dispatch(room))
        now = time.time()
        return {
            d.agent_name
            for d in dispatches or []
            if any(job_is_starting(job.state, now) for job in d.state.jobs)
        }

    async def dispatch(self, room: str, agent_name: str) -> str:
        request = api.CreateAgentDispatchRequest(room=room, agent_name=agent_name)
        dispatch = await self._api.agent_dispatch.create_dispatch(request)
        logger.info("[%s] dispatched %s (%s)", room, agent_name, dispatch.id)
        return dispatch.id

    async def aclose(self) -> None:
        await self._api.aclose()


def as_api_error(exc: BaseException) -> ApiError | None:
    """``exc`` as an API caller should see it: an ``ApiError`` as it is; livekit-server's
    answer with an error of its own a ``BadGateway`` (502); a server that cannot be reached
    or did not answer in time ``Unavailable`` (503, try again). None for anything else: a
    bug. The service's error handler and the moderator bot's RPC answers both use it."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, api.TwirpError):
        return BadGateway(f"livekit-server refused: {exc.code}: {exc.message}")
    if isinstance(exc, aiohttp.ClientError):  # the server API's transport
        return Unavailable(f"livekit-server is unreachable: {type(exc).__name__}")
    if isinstance(exc, TimeoutError):
        return Unavailable("a server this request needs did not answer in time")
    return None


STARTING_S = 60.0  # the worker's process start bound (45 s) and the join after it


def job_is_starting(state: agent.JobState, now: float) -> bool:
    if state.status == agent.JobStatus.JS_PENDING:
        return True
    if state.status != agent.JobStatus.JS_RUNNING or not state.started_at:
        return False
    return now - _epoch_seconds(state.started_at) < STARTING_S


def _epoch_seconds(stamp: int) -> float:
    """livekit-server stamps jobs in Unix nanoseconds; milliseconds and seconds are read too,
    so that a server that changed its unit would not make every job look new or old."""
    if stamp > 10**17:
        return stamp / 1e9
    if stamp > 10**11:
        return stamp / 1e3
    return float(stamp)


async def _unless_missing(call: Awaitable[T]) -> T | None:
    """The call's answer, or None when the server says the room or participant is not found."""
    try:
        return await call
    except api.TwirpError as exc:
        if exc.code == "not_found":
            return None
        raise
