"""The web pages for hosts and guests under ``/app/``, and the development-only sign-in.

The pages are TypeScript (``web/``), built by ``scripts/build-web.sh`` into ``WEB_DIR``
(``web/dist``). This module serves a small HTML shell per page, which loads that page's
bundle; the bundle reads what it needs (the meeting id) from its own address, so nothing a
visitor types is ever written into HTML here.

Pages: ``/app/`` (start), ``/app/signin``, ``/app/greenroom``, ``/app/meeting/{id}`` (a
guest's view) and ``/app/host/{id}`` (the host console). Assets: ``/app/assets/<name>``.

``POST /api/v1/dev/sign-in`` mints an app JWT for a chosen user id, for local use. It exists
only with ``DEV_SIGN_IN=1`` (``up`` sets it; production refuses it): otherwise the platform's
own login issues app JWTs, and a page is handed one in its address's fragment
(``#token=...``, never sent to a server). The page shells say which (``data-dev-sign-in``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import ConfigDict, Field

from talkplatform_agents.config import Settings
from talkplatform_agents.errors import NotFound
from talkplatform_agents.service.auth import MAX_NAME, mint_app_token
from talkplatform_agents.service.openapi import BODY, errors
from talkplatform_agents.service.schemas import Wire

__all__ = ["dev_signin_router", "web_router"]

logger = logging.getLogger(__name__)

DEV_TOKEN_TTL_S: Final = 12 * 3600
_MEETING_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# What the build writes: a bundle (and its map) per page, and the stylesheet.
_ASSET = re.compile(r"^[a-z][a-z0-9-]{0,40}\.(js|css|js\.map|css\.map)$")
_TYPES: Final = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js.map": "application/json",
    "css.map": "application/json",
}
_TITLES: Final = {
    "index": "TalkPlatform",
    "signin": "Sign in · TalkPlatform",
    "greenroom": "Green room · TalkPlatform",
    "meeting": "Meeting · TalkPlatform",
    "host": "Host console · TalkPlatform",
}


def _origins(url: str) -> list[str]:
    """A LiveKit URL's origins for ``connect-src``: its websocket and its HTTP form (the
    client validates a failed join over HTTP)."""
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    return [
        f"{'wss' if secure else 'ws'}://{parts.netloc}",
        f"{'https' if secure else 'http'}://{parts.netloc}",
    ]


def page_csp(livekit_url: str) -> str:
    connect = " ".join(["'self'", *_origins(livekit_url)])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def _shell(page: str, bundle: str, dev_sign_in: bool) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_TITLES[page]}</title>
<link rel="stylesheet" href="/app/assets/app.css">
<link rel="icon" href="data:,">
<script type="module" src="/app/assets/{bundle}.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<main id="main" tabindex="-1" data-page="{page}" data-dev-sign-in="{int(dev_sign_in)}">
<p class="loading">Loading…</p>
<noscript><p class="problem">These pages need JavaScript.</p></noscript>
</main>
</body>
</html>
"""


_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pages not built · TalkPlatform</title></head>
<body><main><h1>The web pages are not built</h1>
<p>This token service has no page bundles in its <code>WEB_DIR</code>.
Build them with <code>scripts/build-web.sh</code> (<code>make setup</code> runs it).</p>
</main></body></html>
"""

_NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found · TalkPlatform</title></head>
<body><main><h1>No such page</h1>
<p>That is not a meeting address. <a href="/app/">Start again</a>.</p>
</main></body></html>
"""


def web_router(settings: Settings) -> APIRouter:
    """The pages and their assets, from the built bundles in ``settings.web_dir``."""
    router = APIRouter(include_in_schema=False)
    dist = Path(settings.web_dir)
    csp = page_csp(settings.client_livekit_url)
    dev_sign_in = settings.dev_sign_in and settings.app_env == "development"
    headers = {"Content-Security-Policy": csp, "Cache-Control": "no-cache"}

    def page(name: str, bundle: str | None = None) -> HTMLResponse:
        if not (dist / f"{bundle or name}.js").is_file():
            logger.error("web: %s has no %s.js: run scripts/build-web.sh", dist, bundle or name)
            return HTMLResponse(_MISSING, status_code=503)
        return HTMLResponse(_shell(name, bundle or name, dev_sign_in), headers=headers)

    @router.get("/app")
    async def app_root() -> RedirectResponse:
        return RedirectResponse("/app/", status_code=308)

    @router.get("/app/")
    async def index() -> HTMLResponse:
        return page("index")

    @router.get("/app/signin")
    async def signin() -> HTMLResponse:
        return page("signin")

    @router.get("/app/greenroom")
    async def greenroom() -> HTMLResponse:
        return page("greenroom")

    @router.get("/app/meeting/{meeting_id}")
    async def meeting(meeting_id: str) -> HTMLResponse:
        if not _MEETING_ID.fullmatch(meeting_id):
            return HTMLResponse(_NOT_FOUND, status_code=404)
        return page("meeting")

    @router.get("/app/host/{meeting_id}")
    async def host(meeting_id: str) -> HTMLResponse:
        if not _MEETING_ID.fullmatch(meeting_id):
            return HTMLResponse(_NOT_FOUND, status_code=404)
        return page("host")

    @router.get("/app/assets/{name}", response_model=None)
    async def asset(name: str) -> Response:
        path = dist / name
        if not _ASSET.fullmatch(name) or not path.is_file():
            raise NotFound("no such asset", name=name[:64])
        kind = name.split(".", 1)[1]
        return FileResponse(path, media_type=_TYPES[kind], headers={"Cache-Control": "no-cache"})

    return router


class SignInBody(Wire):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:+-]+$")
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)


class SignedIn(Wire):
    token: str
    user_id: str
    name: str
    expires_in: int


def dev_signin_router(settings: Settings) -> APIRouter:
    """``POST /api/v1/dev/sign-in``: only mounted with ``DEV_SIGN_IN=1``, in development."""
    router = APIRouter()
    logger.warning("DEV_SIGN_IN is on: POST /api/v1/dev/sign-in mints a login for anyone")
    secret = settings.app_jwt_secret.get_secret_value()

    # 429: the address guard (RATE_LIMIT_AUTH_FAILURES) answers every route; no 401, it is
    # the login itself.
    @router.post("/api/v1/dev/sign-in", responses=errors(BODY, 422, 429))
    async def dev_sign_in(body: SignInBody) -> SignedIn:
        """Local use only: an app JWT for any user id, as the platform's login would issue
        it. Absent (404) unless ``DEV_SIGN_IN=1`` (never with ``APP_ENV=production``)."""
        name = body.name.strip() if body.name and body.name.strip() else body.user_id
        token = mint_app_token(secret, body.user_id, name, DEV_TOKEN_TTL_S)
        logger.info("dev sign-in as %s", body.user_id)
        return SignedIn(token=token, user_id=body.user_id, name=name, expires_in=DEV_TOKEN_TTL_S)

    return router
