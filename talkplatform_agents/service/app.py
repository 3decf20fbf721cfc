"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from talkplatform_agents import __version__
from talkplatform_agents.config import Settings
from talkplatform_agents.service.calendar_routes import calendar_router
from talkplatform_agents.service.chat_routes import chat_router
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.dial_in_routes import router as dial_in_router
from talkplatform_agents.service.error_handlers import install_error_handlers
from talkplatform_agents.service.limits import AuthFailureGuard, LimitOptions, ServiceLimits
from talkplatform_agents.service.metrics import install_metrics
from talkplatform_agents.service.moderation_routes import router as moderation_router
from talkplatform_agents.service.recording_routes import recording_router
from talkplatform_agents.service.routes import router
from talkplatform_agents.service.scheduling import Invitations
from talkplatform_agents.service.security import SecurityHeaders, WebhookGate, install_cors
from talkplatform_agents.service.transcription_routes import transcription_router
from talkplatform_agents.service.web import dev_signin_router, web_router
from talkplatform_agents.store import Database, WebhookEventRepository

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """Build the app. The schema must already be migrated (``db upgrade``; ``up`` does it)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = ServiceContext.from_settings(settings, Database(settings.database_url))
        gate = WebhookGate(WebhookEventRepository(context.db), settings.webhook_max_age_seconds)
        app.state.context = context
        context.start()
        app.state.webhook_gate = gate
        try:
            yield
        finally:
            await gate.aclose()
            await context.aclose()

    app = FastAPI(title="TalkPlatform token service", version=__version__, lifespan=lifespan)
    limits = ServiceLimits(LimitOptions.from_settings(settings))
    app.state.limits = limits
    install_error_handlers(app)
    app.include_router(router)
    invitations = Invitations(settings)
    app.state.invitations = invitations
    app.include_router(calendar_router(invitations))
    app.include_router(moderation_router)
    app.include_router(dial_in_router)
    app.include_router(chat_router(settings))
    app.include_router(recording_router(settings))
    app.include_router(transcription_router)
    app.include_router(web_router(settings))
    if settings.dev_sign_in and settings.app_env == "development":
        app.include_router(dev_signin_router(settings))  # production's come from its login
    # The last added is the outermost: security headers on everything (CORS preflights and
    # the guard's 429s too), CORS headers on the guard's 429s so a browser can read them.
    if limits.guards_logins:
        app.add_middleware(AuthFailureGuard, limits=limits)
    install_cors(app, settings.cors_origins)
    app.add_middleware(SecurityHeaders, hsts=settings.api_url.startswith("https://"))
    install_metrics(app)  # outermost: it times and counts every answer
    return app
