"""The API's failures as its OpenAPI document declares them: one error body for every
status (``service/error_handlers.py`` answers it), and the statuses each kind of route
gives, so a client (and the schema fuzzer, ``tests/fuzz``) knows every answer to expect.

Routes compose them: ``responses=errors(LOGIN, STORE, MEETING, 409)``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BODY",
    "LIVEKIT",
    "LOGIN",
    "MEETING",
    "STORE",
    "TOKEN",
    "ErrorBody",
    "ErrorDetail",
    "ValidationIssue",
    "errors",
]


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorDetail(BaseModel):
    """What failed. Besides ``code`` and ``message``, the context that applies (such as
    ``meetingId``, ``identity``, ``reason``) rides along as further members."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Machine-readable: not_found, rate_limited, unavailable, ...")
    message: str = Field(description="For a person to read.")
    details: list[ValidationIssue] | None = Field(
        default=None, description="422 only: each part of the request that is invalid."
    )
    retry_after: int | None = Field(
        default=None, alias="retryAfter", description="429 only: seconds, as in Retry-After."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


_WHY = {
    400: "The request cannot be done as asked: a body that is not JSON at all, invalid "
    "settings, a stale webhook.",
    401: "No valid login (Authorization: Bearer <app JWT>).",
    403: "Logged in, but not allowed (not a host; locked, denied or removed).",
    404: "No such meeting, or nobody by that identity.",
    409: "Conflicts with the meeting's state (the host, a co-host, a concurrent knock).",
    410: "The meeting has ended.",
    422: "The request does not validate (path, query, headers or body).",
    429: "Too many requests for now: wait Retry-After seconds.",
    502: "livekit-server refused the operation.",
    503: "The database or livekit-server cannot be reached now; the same request may "
    "succeed later.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds until the same request may succeed.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

# The statuses of a kind of route. Each is a tuple, so that ``errors`` composes them.
LOGIN = (401, 422, 429)  # every route behind a login; 429: RATE_LIMIT_AUTH_FAILURES
BODY = (400,)  # a route that reads a body: one that is not even JSON (the framework's 400)
STORE = (503,)  # every route that reads or writes the database
MEETING = (404,)  # a route under /meetings/{meeting_id}
LIVEKIT = (502, 503)  # a route that asks livekit-server
TOKEN = (400, 403, 404, 409, 410)  # the meeting token: the door's refusals


def errors(*groups: tuple[int, ...] | int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` declaring the statuses in ``groups``, each with ErrorBody."""
    statuses: set[int] = set()
    for group in groups:
        statuses.update((group,) if isinstance(group, int) else group)
    declared: dict[int | str, dict[str, Any]] = {}
    for status in sorted(statuses):
        response: dict[str, Any] = {"model": ErrorBody, "description": _WHY[status]}
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        declared[status] = response
    return declared
