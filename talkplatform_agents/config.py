"""The one settings object, read once from the environment (and ``.env``) at the edge.

Only the CLI builds it; everything below receives it as an argument.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "Settings"]

# Development defaults. livekit-server outside --dev mode needs a secret of 32+ characters.
DEV_API_KEY = "talkplatform-dev"
DEV_API_SECRET = "talkplatform-dev-secret-change-me-0123456789"
DEV_APP_JWT_SECRET = "talkplatform-app-dev-secret-change-me"


class Settings(BaseSettings):
    """TalkPlatform configuration. Field names map to upper-case environment names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    app_env: Literal["development", "production"] = Field(
        default="development",
        validation_alias="APP_ENV",
        description="In production the committed development secrets are refused.",
    )
    livekit_url: str = Field(
        default="ws://127.0.0.1:7880",
        validation_alias=AliasChoices("LIVEKIT_URL", "LIVEKIT_WS_URL"),
        description="WebSocket URL of livekit-server, as clients reach it.",
    )
    livekit_api_key: str = Field(default=DEV_API_KEY, validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr = Field(
        default=SecretStr(DEV_API_SECRET), min_length=32, validation_alias="LIVEKIT_API_SECRET"
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/talkplatform.db", validation_alias="DATABASE_URL"
    )
    app_jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_APP_JWT_SECRET), min_length=32, validation_alias="APP_JWT_SECRET"
    )
    app_jwt_issuer: str | None = Field(default=None, validation_alias="APP_JWT_ISSUER")
    token_ttl_seconds: int = Field(
        default=3600, ge=60, le=86400, validation_alias="LIVEKIT_TOKEN_TTL_SECONDS"
    )
    api_host: str = Field(default="127.0.0.1", validation_alias="API_HOST")
    api_port: int = Field(default=8000, ge=1, le=65535, validation_alias="API_PORT")
    public_api_url: str | None = Field(
        default=None,
        validation_alias="TOKEN_SERVICE_URL",
        description="How livekit-server reaches the token service (webhooks).",
    )
    # The ICE servers connection-info hands out (lk/ice.py's configured_ice_servers).
    stun_urls: list[str] = Field(default_factory=list, validation_alias="STUN_URLS")
    turn_server_url: str | None = Field(default=None, validation_alias="TURN_SERVER_URL")
    turn_username: str | None = Field(default=None, validation_alias="TURN_USERNAME")
    turn_password: SecretStr | None = Field(default=None, validation_alias="TURN_PASSWORD")
    worker_load_threshold: float = Field(
        default=0.7,
        gt=0,
        validation_alias="WORKER_LOAD_THRESHOLD",
        description="Load above which a bot server takes no new jobs ('inf': never full).",
    )
    worker_load_mode: Literal["own", "jobs", "cpu"] = Field(
        default="own",
        validation_alias="WORKER_LOAD_MODE",
        description="What a bot server reports as its load: its own jobs and CPU ('own'), "
        "its jobs only, or the whole machine's CPU ('cpu', livekit-agents' default).",
    )
    worker_executor: Literal["auto", "host", "process", "thread"] = Field(
        default="auto",
        validation_alias="WORKER_EXECUTOR",
        description="How bot jobs run: 'auto' (chat and moderator many to a room host "
        "process, the green room a process per session), or 'host', 'process' or 'thread' "
        "(livekit-agents' thread executor, for measurement only) for every bot that can.",
    )
    worker_max_jobs: int = Field(
        default=8,
        ge=1,
        le=1000,
        validation_alias="WORKER_MAX_JOBS",
        description="Jobs per livekit-agents server (the green room: a process per job).",
    )
    worker_loop_monitor_ms: int = Field(
        default=0,
        ge=0,
        validation_alias="WORKER_LOOP_MONITOR_MS",
        description="livekit-agents' event-loop block warning threshold per job (0: off). "
        "It wakes each job twice every 20-50 ms, most of an idle meeting's CPU.",
    )
    worker_room_hosts: int = Field(
        default=2,
        ge=1,
        le=256,
        validation_alias="WORKER_ROOM_HOSTS",
        description="Room host processes (each serves many chat and moderator rooms).",
    )
    worker_rooms_per_host: int = Field(
        default=50,
        ge=1,
        le=1000,
        validation_alias="WORKER_ROOMS_PER_HOST",
        description="Rooms one room host process takes before it reports itself full.",
    )
    livekit_server_bin: str = Field(
        default="bin/livekit-server", validation_alias="LIVEKIT_SERVER_BIN"
    )
    livekit_config: str = Field(default="livekit.yaml", validation_alias="LIVEKIT_CONFIG")
    segmentation_model: str = Field(
        default="models/selfie_segmentation.tflite",
        validation_alias="SEGMENTATION_MODEL",
        description="Person-segmentation model for background blur (scripts/fetch-models.sh).",
    )
    # The chat relay bot (bots/chat/options.py says what each means).
    chat_history_size: int = Field(default=50, ge=0, le=500, validation_alias="CHAT_HISTORY_SIZE")
    chat_max_message_chars: int = Field(
        default=2000, ge=1, le=65536, validation_alias="CHAT_MAX_MESSAGE_CHARS"
    )
    chat_messages_per_second: float = Field(
        default=2.0, gt=0, validation_alias="CHAT_MESSAGES_PER_SECOND"
    )
    chat_message_burst: int = Field(default=10, ge=1, validation_alias="CHAT_MESSAGE_BURST")
    chat_reactions_per_second: float = Field(
        default=5.0, gt=0, validation_alias="CHAT_REACTIONS_PER_SECOND"
    )
    chat_reaction_burst: int = Field(default=20, ge=1, validation_alias="CHAT_REACTION_BURST")
    chat_blocked_words: str = Field(
        default="", validation_alias="CHAT_BLOCKED_WORDS", description="Comma-separated."
    )
    chat_blocked_action: Literal["reject", "mask"] = Field(
        default="reject", validation_alias="CHAT_BLOCKED_ACTION"
    )
    chat_hosts_see_private: bool = Field(default=False, validation_alias="CHAT_HOSTS_SEE_PRIVATE")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")

    @field_validator("livekit_url")
    @classmethod
    def _ws_scheme(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("LIVEKIT_URL must start with ws:// or wss://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        if self.app_env == "production":
            dev = {DEV_API_SECRET, DEV_APP_JWT_SECRET}
            if self.livekit_api_secret.get_secret_value() in dev:
                raise ValueError("APP_ENV=production needs its own LIVEKIT_API_SECRET")
            if self.app_jwt_secret.get_secret_value() in dev:
                raise ValueError("APP_ENV=production needs its own APP_JWT_SECRET")
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def livekit_http_url(self) -> str:
        """The same server, for the Twirp server API and health checks."""
        return "http" + self.livekit_url.removeprefix("ws")

    @property
    def api_url(self) -> str:
        return self.public_api_url or f"http://{self.api_host}:{self.api_port}"

    def child_env(self) -> dict[str, str]:
        """These settings as environment variables, for the processes the CLI starts."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            alias = info.validation_alias
            key = alias.choices[0] if isinstance(alias, AliasChoices) else alias
            value = getattr(self, name)
            if value is None or not isinstance(key, str):
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[key] = json.dumps(value) if isinstance(value, list) else str(value)
        return env
