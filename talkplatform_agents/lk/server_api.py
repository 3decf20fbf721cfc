"""A thin wrapper over livekit-server's API, for what the service does on users' behalf,
and ``as_api_error``: how its failures read to an API caller, the same through REST and RPC."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol, TypeVar

import aiohttp
from livekit import api
from livekit.protocol import agent
from livekit.protocol.agent_dispatch import RoomAgentDispatch

from talkplatform_agents.errors import ApiError, BadGateway, Unavailable
from talkplatform_agents.lk.tokens import Credentials

__all__ = ["AgentDispatchApi", "ServerApi", "as_api_error"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class AgentDispatchApi(Protocol):
    """What the service's bot reconciler needs of the server: who is in a room, which bots
    are on their way, a dispatch, and a word to the hosts. ``ServerApi`` is one; a unit
    test's fake is another."""

    async def participants(self, room: str) -> list[api.ParticipantInfo]: ...

    async def agents_in_flight(self, room: str) -> set[str]: ...

    async def dispatch(self, room: str, agent_name: str) -> str: ...

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None: ...


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

    async def rooms(self) -> list[api.Room]:
        """Every live room on the server (or the cluster)."""
        reply = await self._api.room.list_rooms(api.ListRoomsRequest())
        return list(reply.rooms)

    async def create_room(
        self, room: str, agents: Sequence[str] = (), *, empty_timeout_s: int = 0
    ) -> api.Room:
        """Create ``room`` (or find it, if it exists) with ``agents`` dispatched into it as
        it is created; ``empty_timeout_s`` (0: the server's) is how long it stays while
        nobody but bots has joined. (The calendar's scheduler: calendar/scheduler.py.)"""
        request = api.CreateRoomRequest(
            name=room,
            empty_timeout=empty_timeout_s,
            agents=[RoomAgentDispatch(agent_name=a) for a in agents],
        )
        return await self._api.room.create_room(request)

    async def delete_room(self, room: str) -> None:
        await _unless_missing(self._api.room.delete_room(api.DeleteRoomRequest(room=room)))

    async def agents_in_flight(self, room: str) -> set[str]:
        """The agent names whose dispatch into ``room`` a worker has taken and is starting: a
        job still pending. A running job whose bot is not in the room is no bot on its way:
        it may be starting, but it may as well have been removed or be leaving, and the job
        state does not tell these apart (a re-dispatch may then make a twin, which the bots'
        election resolves). A dispatch no worker took has no job at all."""
        dispatches = await _unless_missing(self._api.agent_dispatch.list_dispatch(room))
        return {
            d.agent_name
            for d in dispatches or []
            if any(job.state.status == agent.JobStatus.JS_PENDING for job in d.state.jobs)
        }

    async def dispatches(self, room: str) -> list[str]:
        """The agent name of every dispatch into ``room``, one entry per dispatch."""
        dispatches = await _unless_missing(self._api.agent_dispatch.list_dispatch(room))
        return [d.agent_name for d in dispatches or []]

    async def dispatch(self, room: str, agent_name: str, metadata: str = "") -> str:
        """Dispatch ``agent_name`` into ``room``; ``metadata`` is the job's (the bot reads
        it as ``ctx.job.metadata``). The dispatch's id."""
        request = api.CreateAgentDispatchRequest(
            room=room, agent_name=agent_name, metadata=metadata
        )
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


async def _unless_missing(call: Awaitable[T]) -> T | None:
    """The call's answer, or None when the server says the room or participant is not found."""
    try:
        return await call
    except api.TwirpError as exc:
        if exc.code == "not_found":
            return None
        raise
