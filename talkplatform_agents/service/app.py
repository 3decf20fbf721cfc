"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from talkplatform_agents import __version__
from talkplatform_agents.config import Settings
from talkplatform_agents.service.chat_routes import chat_router
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.error_handlers import install_error_handlers
from talkplatform_agents.service.metrics import router as metrics_router
from talkplatform_agents.service.moderation_routes import router as moderation_router
from talkplatform_agents.service.routes import router
from talkplatform_agents.store import Database

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """Build the app. The schema must already be migrated (``db upgrade``; ``up`` does it)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = ServiceContext.from_settings(settings, Database(settings.database_url))
        app.state.context = context
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(title="TalkPlatform token service", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(moderation_router)
    app.include_router(chat_router(settings))
    app.include_router(metrics_router)
    return app
