"""Every failure of a request as JSON: ``{"error": {"code": ..., "message": ..., ...}}``.

One handler for the package's ``ApiError`` tree (``talkplatform_agents.errors``), which the
store, moderation and the routes raise; livekit-server's failures are translated into the
same tree by ``lk.server_api.as_api_error``, which the moderator bot's RPC answers use too.
What is left is a bug: a 500, logged with its traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from livekit import api
from starlette.exceptions import HTTPException as StarletteHTTPException

from talkplatform_agents.errors import ApiError, TooManyRequests, Unauthorized
from talkplatform_agents.lk.server_api import as_api_error

__all__ = ["install_error_handlers"]

logger = logging.getLogger(__name__)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _error(request: Request, exc: Exception) -> JSONResponse:
    error = as_api_error(exc)
    if error is None:
        logger.exception("unhandled error on %s %s", request.method, request.url.path,
                         exc_info=exc)  # fmt: skip
        return _json(500, {"error": {"code": "internal", "message": "internal server error"}})
    if error.status >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, error.message)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    return _json(error.status, error.body(), headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    error = {"code": "invalid_request", "message": "request is invalid", "details": details}
    return _json(422, {"error": error})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    # The exception's own headers stay: a 405's Allow says which methods the path takes.
    body = {"error": {"code": code, "message": str(exc.detail)}}
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405 and headers and "Allow" in headers:
        headers["Allow"] = _allowed(request, headers["Allow"])
    return _json(exc.status_code, body, headers)


def _allowed(request: Request, framework: str) -> str:
    """Every method the path takes. The framework's 405 names only the methods of the first
    route that matched the path, and a path may have a route per method (GET and POST): the
    OpenAPI document (built once, then cached) has them all."""
    methods = {m.strip() for m in framework.split(",") if m.strip()}
    path = request.url.path
    for template, operations in request.app.openapi().get("paths", {}).items():
        parts = re.split(r"(\{[^}/]+\})", template)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    # The framework's own refusals (a body that does not validate, no such route) get the
    # same body shape; everything else goes through the one handler.
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in (ApiError, api.TwirpError, aiohttp.ClientError, TimeoutError, Exception):
        app.add_exception_handler(kind, _error)
