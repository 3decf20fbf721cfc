"""The chat bot's RPC methods (lk/chat.py): hosts delete messages and mute people's chat;
anyone reads the reaction totals.

The caller's identity comes from livekit-server (``RpcInvocationData.caller_identity``),
never from the payload, and their role from the store, asked at each call so that a role
granted or revoked mid-meeting counts at once.
"""

from __future__ import annotations

import logging

from livekit import rtc

from talkplatform_agents.bots.chat.context import ChatContext
from talkplatform_agents.bots.chat.moderation import Code
from talkplatform_agents.bots.rpc_errors import answer_errors
from talkplatform_agents.lk import chat as proto

__all__ = ["ChatRpc"]

logger = logging.getLogger(__name__)


class ChatRpc:
    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    def register(self, local: rtc.LocalParticipant) -> None:
        methods = {
            proto.RPC_DELETE: self.delete,
            proto.RPC_MUTE: self.mute,
            proto.RPC_REACTIONS: self.reactions,
        }
        for name, method in methods.items():
            # A store failure (Unavailable) is an error the caller can act on, as in REST.
            local.register_rpc_method(name, answer_errors(self._ctx.tag, name, method))

    async def delete(self, data: rtc.RpcInvocationData) -> str:
        ctx = self._ctx
        request = _parse(proto.DeleteRequest, data.payload)
        await self._require_moderator(data.caller_identity)
        stored = await ctx.store.chat.delete(ctx.meeting_id, request.id, by=data.caller_identity)
        if stored is None:
            raise rtc.RpcError(proto.NOT_FOUND, f"no message {request.id} in this meeting")
        logger.info("[%s] %s deleted %s", ctx.tag, data.caller_identity, request.id)
        await ctx.event({"type": "deleted", "id": stored.id, "by": data.caller_identity})
        if to := ctx.audience(stored, ctx.roster.humans(), exclude=None):
            await ctx.outbox.message(stored, "deleted", to)
        return proto.dumps({"id": stored.id, "deleted": True})

    async def mute(self, data: rtc.RpcInvocationData) -> str:
        ctx = self._ctx
        request = _parse(proto.MuteRequest, data.payload)
        caller = data.caller_identity
        await self._require_moderator(caller)
        await ctx.store.chat.set_muted(
            ctx.meeting_id, request.identity, muted=request.muted, by=caller
        )
        if request.muted:
            ctx.muted.add(request.identity)
        else:
            ctx.muted.discard(request.identity)
        logger.info(
            "[%s] %s set chat mute of %s to %s", ctx.tag, caller, request.identity, request.muted
        )
        await ctx.event(
            {"type": "muted", "identity": request.identity, "muted": request.muted, "by": caller}
        )
        if request.muted and ctx.roster.here(request.identity):
            await ctx.outbox.notice(
                request.identity, Code.MUTED, "A host has muted your chat.", None
            )
        return proto.dumps({"identity": request.identity, "muted": request.muted})

    async def reactions(self, data: rtc.RpcInvocationData) -> str:
        _parse(proto.EmptyRequest, data.payload)
        counts = await self._ctx.store.chat.reaction_counts(self._ctx.meeting_id)
        return proto.dumps({"meeting": counts.meeting, "messages": counts.messages})

    async def _require_moderator(self, caller: str) -> None:
        if caller not in await self._ctx.load_moderators():
            raise rtc.RpcError(proto.FORBIDDEN, "only the meeting's hosts may do that")


def _parse(model: type[proto.PayloadT], payload: str) -> proto.PayloadT:
    try:
        return proto.parse(model, payload)
    except proto.BadPayload as exc:
        raise rtc.RpcError(proto.INVALID_PAYLOAD, f"invalid payload: {exc}") from exc
