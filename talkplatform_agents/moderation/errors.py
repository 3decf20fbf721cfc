"""What a moderation action can fail with. Each error knows its HTTP status, so the REST
routes and the bot's RPC answers (status + 2000) say the same thing."""

from __future__ import annotations

from typing import Any

__all__ = ["Conflict", "Forbidden", "Gone", "Invalid", "ModerationError", "NotFound"]


class ModerationError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class Invalid(ModerationError):
    status, code = 400, "invalid_request"


class Forbidden(ModerationError):
    status, code = 403, "forbidden"


class NotFound(ModerationError):
    status, code = 404, "not_found"


class Conflict(ModerationError):
    status, code = 409, "conflict"


class Gone(ModerationError):
    status, code = 410, "gone"
