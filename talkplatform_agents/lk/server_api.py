"""A thin wrapper over livekit-server's API, for what the service does on users' behalf."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from livekit import api
from livekit.protocol import agent

from talkplatform_agents.lk.tokens import Credentials

__all__ = ["ServerApi"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
        job still pending. A running job whose bot is not in the room is no bot on its way
        (it was removed, or is leaving), and a dispatch no worker took has no job at all."""
        dispatches = await _unless_missing(self._api.agent_dispatch.list_dispatch(room))
        live = (agent.JobStatus.JS_PENDING,)
        return {
            d.agent_name
            for d in dispatches or []
            if any(job.state.status in live for job in d.state.jobs)
        }

    async def dispatch(self, room: str, agent_name: str) -> str:
        request = api.CreateAgentDispatchRequest(room=room, agent_name=agent_name)
        dispatch = await self._api.agent_dispatch.create_dispatch(request)
        logger.info("[%s] dispatched %s (%s)", room, agent_name, dispatch.id)
        return dispatch.id

    async def aclose(self) -> None:
        await self._api.aclose()


async def _unless_missing(call: Awaitable[T]) -> T | None:
    """The call's answer, or None when the server says the room or participant is not found."""
    try:
        return await call
    except api.TwirpError as exc:
        if exc.code == "not_found":
            return None
        raise
