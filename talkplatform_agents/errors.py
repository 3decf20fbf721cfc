"""The package's error tree. Every exception the package raises on purpose derives from
``TalkPlatformError``, so a caller can tell "ours, with a readable message" from a bug.

``ApiError`` and its subclasses are the failures a caller of the platform's API sees: each
carries its HTTP status, a machine code, a message and context. The service answers them
as ``{"error": {"code", "message", ...context}}`` with that status (one handler,
``service/error_handlers.py``); the moderator bot answers the same errors to an RPC with
the status plus 2000 (``lk/waiting.py``). So REST and RPC say the same thing.

This module imports nothing from the package: every layer, the store included, may use it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "BadGateway",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "TalkPlatformError",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
]


class TalkPlatformError(Exception):
    """The root of the package's own errors."""


class ApiError(TalkPlatformError):
    """A request that cannot be done, and why, as an API caller should see it."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.context}}


class Invalid(ApiError):
    status, code = 400, "invalid_request"


class Unprocessable(Invalid):
    """Input that is well-formed but does not validate as a value of its kind (an RRULE no
    date matches, an end before the start, an unknown time zone): the 422 a request body
    that fails the schema gets, with the same code. A subclass of ``Invalid``, so code that
    refuses ``Invalid`` refuses this too; a route turns the core's ``Invalid`` into it
    where its contract says 422 (``Unprocessable.of``)."""

    status, code = 422, "invalid_request"

    @classmethod
    def of(cls, error: Invalid) -> Unprocessable:
        return error if isinstance(error, Unprocessable) else cls(error.message, **error.context)


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Gone(ApiError):
    status, code = 410, "gone"


class TooManyRequests(ApiError):
    """Too many requests from one user or address for now. ``retry_after`` (whole seconds,
    at least 1) says when the same request may succeed: the service sends it as
    ``Retry-After`` and in the body as ``retryAfter``."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **context: Any) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message, retryAfter=self.retry_after, **context)


class Unavailable(ApiError):
    """Something the request needs (the database, livekit-server) cannot be reached now; the
    same request may succeed later."""

    status, code = 503, "unavailable"


class BadGateway(ApiError):
    """A server the request needs (livekit-server) answered with an error of its own."""

    status, code = 502, "bad_gateway"
