"""How every bot answers an RPC that fails: the same failure as the REST API would report,
with its HTTP status plus ``RPC_ERROR_BASE`` as the code (lk/waiting.py), never the SDK's
generic "application error" (1500), which tells a client nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from livekit import rtc

from talkplatform_agents.bots.metrics import RPC_ERRORS
from talkplatform_agents.errors import ApiError
from talkplatform_agents.lk.payloads import BadPayload
from talkplatform_agents.lk.server_api import as_api_error
from talkplatform_agents.lk.waiting import RPC_ERROR_BASE

__all__ = ["RpcHandler", "answer_errors", "rpc_error"]

logger = logging.getLogger(__name__)

RpcHandler = Callable[[rtc.RpcInvocationData], Awaitable[str]]


def rpc_error(exc: ApiError) -> rtc.RpcError:
    return rtc.RpcError(RPC_ERROR_BASE + exc.status, exc.message)


def answer_errors(tag: str, method: str, handler: RpcHandler) -> RpcHandler:
    """``handler``, with whatever it raises turned into an RPC error the caller can act on:
    its own ``RpcError`` as it is, a bad payload as 400, an ``ApiError`` (or a failure
    ``as_api_error`` reads as one: the store or livekit-server unreachable) as its status,
    and anything else, logged, as 500."""

    async def answer(data: rtc.RpcInvocationData) -> str:
        try:
            return await handler(data)
        except rtc.RpcError as exc:
            RPC_ERRORS.labels(method, str(exc.code)).inc()
            raise
        except BadPayload as exc:
            RPC_ERRORS.labels(method, str(RPC_ERROR_BASE + 400)).inc()
            raise rtc.RpcError(RPC_ERROR_BASE + 400, f"invalid payload: {exc}") from exc
        except Exception as exc:
            error = as_api_error(exc)
            if error is None:
                logger.exception("[%s] %s by %s failed", tag, method, data.caller_identity)
                RPC_ERRORS.labels(method, str(RPC_ERROR_BASE + 500)).inc()
                raise rtc.RpcError(RPC_ERROR_BASE + 500, "internal error") from exc
            logger.info("[%s] %s by %s refused: %s", tag, method, data.caller_identity, error)
            refusal = rpc_error(error)
            RPC_ERRORS.labels(method, str(refusal.code)).inc()
            raise refusal from exc

    return answer
