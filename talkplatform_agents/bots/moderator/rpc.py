"""The moderator bot's RPC methods: parse, call the shared moderation code, answer.

Caller identities come from livekit-server (``RpcInvocationData.caller_identity``), never
from the payload; the moderation code checks them against the store's roles.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc

from talkplatform_agents.bots.metrics import ADMISSIONS
from talkplatform_agents.bots.ratelimit import RpcLimits
from talkplatform_agents.bots.rpc_errors import RpcHandler, answer_errors
from talkplatform_agents.bots.rpc_limits import CallerLimits
from talkplatform_agents.lk import waiting as proto
from talkplatform_agents.lk.payloads import dumps, parse
from talkplatform_agents.moderation import HostControls, WaitingRoom

__all__ = ["register_rpc"]

logger = logging.getLogger(__name__)

Handler = Callable[[str, str, str], Awaitable[dict[str, Any]]]  # meeting, caller, payload


def _methods(waiting_room: WaitingRoom, controls: HostControls) -> dict[str, Handler]:
    async def queue(m: str, caller: str, payload: str) -> dict[str, Any]:
        parse(proto.EmptyRequest, payload)
        return {"waiting": await waiting_room.queue(m, caller)}

    async def admit(m: str, caller: str, payload: str) -> dict[str, Any]:
        identity = parse(proto.IdentityRequest, payload).identity
        result = await waiting_room.admit(m, caller, identity)
        _admitted(1 if result["changed"] else 0)
        return result

    async def admit_all(m: str, caller: str, payload: str) -> dict[str, Any]:
        parse(proto.EmptyRequest, payload)
        result = await waiting_room.admit_all(m, caller)
        _admitted(len(result["admitted"]))
        return result

    async def admit_many(m: str, caller: str, payload: str) -> dict[str, Any]:
        identities = parse(proto.IdentitiesRequest, payload).identities
        result = await waiting_room.admit_many(m, caller, identities)
        _admitted(len(result["admitted"]))
        return result

    async def deny(m: str, caller: str, payload: str) -> dict[str, Any]:
        request = parse(proto.DenyRequest, payload)
        return await waiting_room.deny(m, caller, request.identity, request.reason)

    async def message(m: str, caller: str, payload: str) -> dict[str, Any]:
        request = parse(proto.MessageRequest, payload)
        return await waiting_room.message(m, caller, request.text, request.identity)

    async def back(m: str, caller: str, payload: str) -> dict[str, Any]:
        identity = parse(proto.IdentityRequest, payload).identity
        return await waiting_room.return_to_waiting(m, caller, identity)

    async def mute(m: str, caller: str, payload: str) -> dict[str, Any]:
        r = parse(proto.MuteRequest, payload)
        return await controls.mute(m, caller, r.identity, r.track_sid, r.source)

    async def mute_all(m: str, caller: str, payload: str) -> dict[str, Any]:
        parse(proto.EmptyRequest, payload)
        return await controls.mute_all(m, caller)

    async def remove(m: str, caller: str, payload: str) -> dict[str, Any]:
        return await controls.remove(m, caller, parse(proto.IdentityRequest, payload).identity)

    async def pass_host(m: str, caller: str, payload: str) -> dict[str, Any]:
        identity = parse(proto.IdentityRequest, payload).identity
        return await controls.pass_host(m, caller, identity)

    async def add_cohost(m: str, caller: str, payload: str) -> dict[str, Any]:
        identity = parse(proto.IdentityRequest, payload).identity
        return await controls.add_cohost(m, caller, identity)

    async def lock(m: str, caller: str, payload: str) -> dict[str, Any]:
        return await controls.set_lock(m, caller, parse(proto.LockRequest, payload).locked)

    async def end(m: str, caller: str, payload: str) -> dict[str, Any]:
        parse(proto.EmptyRequest, payload)
        return await controls.end(m, caller)

    return {
        proto.RPC_WAITING_LIST: queue,
        proto.RPC_WAITING_ADMIT: admit,
        proto.RPC_WAITING_ADMIT_ALL: admit_all,
        proto.RPC_WAITING_ADMIT_MANY: admit_many,
        proto.RPC_WAITING_DENY: deny,
        proto.RPC_WAITING_MESSAGE: message,
        proto.RPC_WAITING_RETURN: back,
        proto.RPC_HOST_MUTE: mute,
        proto.RPC_HOST_MUTE_ALL: mute_all,
        proto.RPC_HOST_REMOVE: remove,
        proto.RPC_HOST_PASS: pass_host,
        proto.RPC_HOST_ADD_COHOST: add_cohost,
        proto.RPC_HOST_LOCK: lock,
        proto.RPC_HOST_END: end,
    }


def _admitted(count: int) -> None:
    if count > 0:
        ADMISSIONS.labels("rpc").inc(count)


def register_rpc(
    room: rtc.Room,
    meeting_id: str,
    waiting_room: WaitingRoom,
    controls: HostControls,
    limits: RpcLimits | None = None,
) -> list[str]:
    """Register every method on ``room``'s local participant, behind per-caller ``limits``;
    return their names."""
    # Ahead of every method: a caller's flood never reaches the store or livekit-server.
    room.local_participant.add_rpc_interceptor(CallerLimits(room.name, limits))
    methods = _methods(waiting_room, controls)
    for name, handler in methods.items():
        room.local_participant.register_rpc_method(
            name, _answer(room.name, meeting_id, name, handler)
        )
    return list(methods)


def _answer(room: str, meeting_id: str, method: str, handler: Handler) -> RpcHandler:
    async def answer(data: rtc.RpcInvocationData) -> str:
        result = await handler(meeting_id, data.caller_identity, data.payload)
        logger.info("[%s] %s by %s", room, method, data.caller_identity)
        return dumps(result)

    return answer_errors(room, method, answer)
