"""A thin wrapper over livekit-server's API, for what the service does on users' behalf."""

from __future__ import annotations

import logging

from livekit import api

from talkplatform_agents.lk.tokens import Credentials

__all__ = ["ServerApi"]

logger = logging.getLogger(__name__)


class ServerApi:
    def __init__(self, http_url: str, credentials: Credentials) -> None:
        self._api = api.LiveKitAPI(http_url, credentials.api_key, credentials.api_secret)

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        """Who is in ``room`` now; an empty list when the room does not exist."""
        try:
            reply = await self._api.room.list_participants(api.ListParticipantsRequest(room=room))
        except api.TwirpError as exc:
            if exc.code == "not_found":
                return []
            raise
        return list(reply.participants)

    async def dispatch(self, room: str, agent_name: str) -> str:
        request = api.CreateAgentDispatchRequest(room=room, agent_name=agent_name)
        dispatch = await self._api.agent_dispatch.create_dispatch(request)
        logger.info("[%s] dispatched %s (%s)", room, agent_name, dispatch.id)
        return dispatch.id

    async def aclose(self) -> None:
        await self._api.aclose()
