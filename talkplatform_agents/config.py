"""The one settings object, read once from the environment (and ``.env``) at the edge.

Only the CLI builds it; everything below receives it as an argument.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A phone number as SIP and the API take it: "+", then 7 to 15 digits (ITU-T E.164).
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "RateLimit", "Settings"]

# Development defaults. livekit-server outside --dev mode needs a secret of 32+ characters.
DEV_API_KEY = "talkplatform-dev"
DEV_API_SECRET = "talkplatform-dev-secret-change-me-0123456789"
DEV_APP_JWT_SECRET = "talkplatform-app-dev-secret-change-me"

_PERIOD = re.compile(r"^(\d+(?:\.\d+)?)?\s*(s|sec|m|min|h|hour)$")
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class RateLimit:
    """``count`` per ``period_s``, written ``"N/period"`` (``30/min``, ``600/5m``, ``10/s``);
    ``count`` 0 (written ``0`` or ``off``) is no limit. What it bounds depends on the
    setting: a token bucket (``count`` at once, refilled at ``count`` per period) or a
    sliding window (``count`` in any period)."""

    count: int
    period_s: float = 60.0

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        value = text.strip().lower()
        if value in ("0", "off"):
            return cls(0)
        count, slash, period = value.partition("/")
        match = _PERIOD.match(period.strip())
        if not slash or not count.strip().isdigit() or match is None:
            raise ValueError(f"{text!r} is not N/period (e.g. 30/min, 600/5m, 10/s) or 0 (off)")
        span = float(match.group(1) or 1) * _UNIT_S[match.group(2)]
        if span <= 0:
            raise ValueError(f"{text!r}: the period must be longer than 0")
        return cls(int(count), span)

    @property
    def enabled(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        return f"{self.count}/{self.period_s:g}s" if self.count else "0"


def _listed(value: object) -> object:
    """A list setting from the environment: a JSON list, or comma-separated."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


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
    dev_sign_in: bool = Field(
        default=False,
        validation_alias="DEV_SIGN_IN",
        description="POST /api/v1/dev/sign-in: an app JWT for any user id, for local use "
        "(`up` turns it on). Refused with APP_ENV=production.",
    )
    livekit_url: str = Field(
        default="ws://127.0.0.1:7880",
        validation_alias=AliasChoices("LIVEKIT_URL", "LIVEKIT_WS_URL"),
        description="WebSocket URL of livekit-server, as this service and the bots reach it.",
    )
    livekit_public_url: str | None = Field(
        default=None,
        validation_alias="LIVEKIT_PUBLIC_URL",
        description="WebSocket URL of livekit-server as clients reach it (token responses, "
        "connection-info, admissions); LIVEKIT_URL when unset.",
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
    bot_lease_ttl_s: float = Field(
        default=3.0,
        gt=0.2,
        le=60,
        validation_alias="BOT_LEASE_TTL_S",
        description="A bot whose process stops renewing its lease this long is taken for "
        "dead, and replaced (the longest stall a bot process may have).",
    )
    bot_lease_beat_s: float = Field(
        default=0.5,
        gt=0,
        le=20,
        validation_alias="BOT_LEASE_BEAT_S",
        description="How often a bot process renews its leases (under BOT_LEASE_TTL_S).",
    )
    bot_sweep_s: float = Field(
        default=0.5,
        gt=0,
        le=3600,
        validation_alias="BOT_SWEEP_S",
        description="How often the service looks for expired bot leases (dead bots).",
    )
    bot_rooms_sweep_s: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        validation_alias="BOT_ROOMS_SWEEP_S",
        description="How often the service lists live rooms and checks each for its bots "
        "(0: never; arrivals and departures still trigger checks).",
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
    web_dir: str = Field(
        default="web/dist",
        validation_alias="WEB_DIR",
        description="The built web pages (scripts/build-web.sh), served under /app/.",
    )
    recordings_dir: str = Field(
        default="var/recordings",
        validation_alias="RECORDINGS_DIR",
        description="Where recordings are written: a directory per recording, with its "
        "manifest.json (the recorder writes, the service serves).",
    )
    recorder_video_layer: Literal["low", "medium", "high"] = Field(
        default="high",
        validation_alias="RECORDER_VIDEO_LAYER",
        description="The simulcast layer the recorder receives of each camera.",
    )
    recorder_video_max_width: int = Field(
        default=640, ge=16, le=3840, validation_alias="RECORDER_VIDEO_MAX_WIDTH"
    )
    recorder_video_max_height: int = Field(
        default=360, ge=16, le=2160, validation_alias="RECORDER_VIDEO_MAX_HEIGHT"
    )
    recorder_video_max_fps: int = Field(
        default=15, ge=1, le=60, validation_alias="RECORDER_VIDEO_MAX_FPS"
    )
    transcriber_stt: str = Field(
        default="talkplatform_agents.bots.transcriber.sphinx:general",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        validation_alias="TRANSCRIBER_STT",
        description="The transcriber's recogniser, as module:factory: a callable that "
        "returns a livekit-agents stt.STT (bots/transcriber/engine.py).",
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
    # Abuse limits of the token service (service/limits.py; per service process).
    rate_limit_token_per_user: Annotated[RateLimit, NoDecode] = Field(
        default=RateLimit(60, 60),
        validation_alias="RATE_LIMIT_TOKEN_PER_USER",
        description="Token requests (meeting and green room) per user: a token bucket.",
    )
    rate_limit_token_per_address: Annotated[RateLimit, NoDecode] = Field(
        default=RateLimit(1200, 60),
        validation_alias="RATE_LIMIT_TOKEN_PER_ADDRESS",
        description="Token requests per client address (a NAT may hide many users, and a "
        "load run all of its participants): a token bucket.",
    )
    rate_limit_auth_failures: Annotated[RateLimit, NoDecode] = Field(
        default=RateLimit(100, 300),
        validation_alias="RATE_LIMIT_AUTH_FAILURES",
        description="401s per client address in a sliding window; past it, the address "
        "gets 429 for anything until the window has room again.",
    )
    rate_limit_dial_out_per_user: Annotated[RateLimit, NoDecode] = Field(
        default=RateLimit(20, 3600),
        validation_alias="RATE_LIMIT_DIAL_OUT_PER_USER",
        description="Calls out (paid phone calls) per host: a token bucket.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="TRUSTED_PROXIES",
        description="Addresses or networks whose X-Forwarded-For names the client.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="CORS_ORIGINS",
        description="Browser origins (scheme://host[:port]) allowed to call the API.",
    )
    # Phones (UC-08, lk/sip.py): dial-in needs the numbers, dial-out the carrier's address.
    sip_dial_in_numbers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIP_DIAL_IN_NUMBERS",
        description="E.164 numbers callers dial (comma-separated); none: no dial-in.",
    )
    sip_inbound_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIP_INBOUND_ADDRESSES",
        description="Addresses or networks of the carrier or PBX that may call in.",
    )
    sip_inbound_username: str | None = Field(default=None, validation_alias="SIP_INBOUND_USERNAME")
    sip_inbound_password: SecretStr | None = Field(
        default=None, validation_alias="SIP_INBOUND_PASSWORD"
    )
    sip_outbound_address: str | None = Field(
        default=None,
        validation_alias="SIP_OUTBOUND_ADDRESS",
        description="host:port of the carrier or PBX that takes calls out; none: no dial-out.",
    )
    sip_outbound_number: str | None = Field(
        default=None, validation_alias="SIP_OUTBOUND_NUMBER",
        description="The E.164 caller id of calls out.",
    )  # fmt: skip
    sip_outbound_allowed_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIP_OUTBOUND_ALLOWED_PREFIXES",
        description="E.164 prefixes calls out may go to (such as +1,+44); empty: any.",
    )
    sip_outbound_transport: Literal["udp", "tcp"] = Field(
        default="udp", validation_alias="SIP_OUTBOUND_TRANSPORT"
    )
    sip_outbound_username: str | None = Field(
        default=None, validation_alias="SIP_OUTBOUND_USERNAME"
    )
    sip_outbound_password: SecretStr | None = Field(
        default=None, validation_alias="SIP_OUTBOUND_PASSWORD"
    )
    sip_ringing_timeout_seconds: float = Field(
        default=30.0, ge=5.0, le=70.0, validation_alias="SIP_RINGING_TIMEOUT_SECONDS",
        description="How long a call out rings before it counts as not answered.",
    )  # fmt: skip
    webhook_max_age_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        validation_alias="WEBHOOK_MAX_AGE_SECONDS",
        description="A livekit-server webhook created longer ago (or further ahead, by a "
        "skewed clock) is refused; replays within it are recognised by event id.",
    )
    allow_sqlite_in_production: bool = Field(
        default=False, validation_alias="ALLOW_SQLITE_IN_PRODUCTION"
    )
    # Operations: logs and metrics (the token service's metrics are its own GET /metrics).
    log_format: Literal["text", "json"] = Field(
        default="text",
        validation_alias="LOG_FORMAT",
        description="'json': every process logs one JSON object a line (time, level, "
        "logger, message, room, exc_info); 'text': for people.",
    )
    bot_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        validation_alias="BOT_METRICS_PORT",
        description="Port of the worker's Prometheus endpoint (/metrics), one for all its "
        "bot processes (0: none).",
    )
    bot_metrics_host: str = Field(
        default="0.0.0.0",
        validation_alias="BOT_METRICS_HOST",
        description="Address the worker's metrics endpoint binds (a scraper on another "
        "machine or container must reach it).",
    )
    # --- CalDAV sync (UC-04; calendar/sync.py) ---
    caldav_url: str | None = Field(
        default=None,
        validation_alias="CALDAV_URL",
        description="A user's calendar collection, {user} standing for the user id: "
        "http://host:5232/{user}/calendar/. Unset: no CalDAV sync.",
    )
    caldav_username: str | None = Field(default=None, validation_alias="CALDAV_USERNAME")
    caldav_password: SecretStr | None = Field(default=None, validation_alias="CALDAV_PASSWORD")
    caldav_category: str = Field(
        default="TalkPlatform",
        min_length=1,
        max_length=100,
        validation_alias="CALDAV_CATEGORY",
        description="An event in a synced calendar with this category becomes a meeting.",
    )

    # --- Invitations by email (UC-04; calendar/mail.py) ---
    smtp_url: str | None = Field(
        default=None,
        validation_alias="SMTP_URL",
        description="smtp://host:port of a mail server that relays the meetings' "
        "invitations to their attendees (port 25 if left out). Unset: no email.",
    )

    # --- Bots on time (UC-04; calendar/scheduler.py, ``talkplatform-agents scheduler``) ---
    scheduler_lead_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        validation_alias="SCHEDULER_LEAD_S",
        description="How long before a scheduled meeting's start its room is opened, with "
        "its bots in it.",
    )
    scheduler_grace_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        validation_alias="SCHEDULER_GRACE_S",
        description="How long after a scheduled meeting's end it is ended, once nobody but "
        "bots is left in its room.",
    )

    @field_validator(
        "rate_limit_token_per_user",
        "rate_limit_token_per_address",
        "rate_limit_auth_failures",
        "rate_limit_dial_out_per_user",
        mode="before",
    )
    @classmethod
    def _rate_limit(cls, value: object) -> object:
        return RateLimit.parse(value) if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        listed = _listed(value)
        if not isinstance(listed, list):
            return listed
        networks = []
        for item in listed:
            try:
                networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError as exc:
                raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an address or network") from exc
        return networks

    @field_validator(
        "sip_dial_in_numbers",
        "sip_inbound_addresses",
        "sip_outbound_allowed_prefixes",
        mode="before",
    )
    @classmethod
    def _sip_lists(cls, value: object) -> object:
        return _listed(value)

    @field_validator("sip_inbound_addresses")
    @classmethod
    def _sip_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"SIP_INBOUND_ADDRESSES: {item!r} is not a network") from exc
        return value

    @field_validator("sip_outbound_allowed_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"\+[0-9]{1,14}", item):
                raise ValueError(f"SIP_OUTBOUND_ALLOWED_PREFIXES: {item!r} is not +digits")
        return value

    @field_validator("sip_dial_in_numbers", "sip_outbound_number")
    @classmethod
    def _e164(cls, value: object, info: ValidationInfo) -> object:
        numbers = value if isinstance(value, list) else [value] if value else []
        for number in numbers:
            if not E164.match(str(number)):
                raise ValueError(f"{info.field_name}: {number!r} is not an E.164 number")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        listed = _listed(value)
        if not isinstance(listed, list):
            return listed
        origins = []
        for item in listed:
            origin = str(item).strip().rstrip("/")
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path \
                    or parts.query or parts.fragment or parts.username:  # fmt: skip
                raise ValueError(
                    f"CORS_ORIGINS: {item!r} is not an origin: scheme://host[:port], "
                    "nothing after it (no '*': list the origins)"
                )
            origins.append(origin)
        return origins

    @field_validator("livekit_url", "livekit_public_url")
    @classmethod
    def _ws_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.startswith(("ws://", "wss://")):
            name = "LIVEKIT_URL" if info.field_name == "livekit_url" else "LIVEKIT_PUBLIC_URL"
            raise ValueError(f"{name} must start with ws:// or wss://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_ready(self) -> Settings:
        """Every reason production would be unsafe, at once, each naming its variable."""
        if self.app_env != "production":
            return self
        problems = []
        dev = {DEV_API_SECRET, DEV_APP_JWT_SECRET}
        if self.livekit_api_secret.get_secret_value() in dev:
            problems.append("LIVEKIT_API_SECRET is the development secret: set your own")
        if self.app_jwt_secret.get_secret_value() in dev:
            problems.append("APP_JWT_SECRET is the development secret: set your own")
        if self.dev_sign_in:
            problems.append("DEV_SIGN_IN mints a login for anyone: turn it off")
        # Browsers are handed the public URL (token responses, admission messages): from an
        # https page only wss:// reaches it, and tokens travel on it. LIVEKIT_URL alone may
        # stay ws:// on a private network when LIVEKIT_PUBLIC_URL is set.
        if not self.client_livekit_url.startswith("wss://"):
            name = "LIVEKIT_PUBLIC_URL" if self.livekit_public_url else "LIVEKIT_URL"
            problems.append(f"{name} must be wss:// (clients are given it), not "
                            f"{self.client_livekit_url!r}")  # fmt: skip
        # Webhooks carry participants' identities and names.
        if self.public_api_url is not None and not self.public_api_url.startswith("https://"):
            problems.append(f"TOKEN_SERVICE_URL must be https://, not {self.public_api_url!r}")
        if self.database_url.startswith("sqlite") and not self.allow_sqlite_in_production:
            problems.append(
                "DATABASE_URL is SQLite: use MariaDB/MySQL, or set "
                "ALLOW_SQLITE_IN_PRODUCTION=1 for a single service process on one machine"
            )
        if problems:
            raise ValueError("APP_ENV=production refuses to start: " + "; ".join(problems))
        return self

    @field_validator("caldav_url")
    @classmethod
    def _caldav_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")) or "{user}" not in value:
            raise ValueError("CALDAV_URL must be an http(s) URL with {user} in it")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - a port out of range raises here
        except ValueError:
            raise ValueError(f"SMTP_URL has a bad port: {value!r}") from None
        if parts.scheme != "smtp" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"SMTP_URL must be smtp://host[:port], not {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def client_livekit_url(self) -> str:
        """What clients are given: ``LIVEKIT_PUBLIC_URL``, else ``LIVEKIT_URL``."""
        return self.livekit_public_url or self.livekit_url

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
