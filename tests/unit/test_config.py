from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from talkplatform_agents.config import RateLimit, Settings
from talkplatform_agents.lk.ice import IceServer, configured_ice_servers


def test_environment_names_and_the_seed_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_WS_URL", "wss://lk.example.test/")
    monkeypatch.setenv("TURN_SERVER_URL", "turn:turn.example.test:3478")
    monkeypatch.setenv("TURN_USERNAME", "livekit")
    monkeypatch.setenv("TURN_PASSWORD", "pw")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.livekit_url == "wss://lk.example.test"
    assert settings.livekit_http_url == "https://lk.example.test"
    [turn] = configured_ice_servers(settings)
    assert turn == IceServer(("turn:turn.example.test:3478",), "livekit", "pw")
    assert turn.relays


def test_bad_values_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "http://nope")
    with pytest.raises(ValidationError, match="ws://"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("LIVEKIT_URL", "ws://ok")
    monkeypatch.setenv("LIVEKIT_TOKEN_TTL_SECONDS", "5")
    with pytest.raises(ValidationError, match="LIVEKIT_TOKEN_TTL_SECONDS"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_child_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(_env_file=None, STUN_URLS=["stun:a"])  # type: ignore[call-arg]
    for key, value in original.child_env().items():
        monkeypatch.setenv(key, value)
    assert Settings(_env_file=None) == original  # type: ignore[call-arg]


PRODUCTION = {
    "APP_ENV": "production",
    "LIVEKIT_API_SECRET": "p" * 40,
    "APP_JWT_SECRET": "q" * 40,
    "LIVEKIT_URL": "wss://lk.example.test",
    "DATABASE_URL": "mysql+aiomysql://talk:pw@db.example.test/talkplatform",
}


def _production(monkeypatch: pytest.MonkeyPatch, **overrides: str | None) -> Settings:
    for key, value in {**PRODUCTION, **overrides}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_starts_when_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _production(monkeypatch, TOKEN_SERVICE_URL="https://api.example.test")
    assert settings.app_env == "production"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"LIVEKIT_API_SECRET": None}, "LIVEKIT_API_SECRET"),
        ({"APP_JWT_SECRET": None}, "APP_JWT_SECRET"),
        ({"LIVEKIT_URL": "ws://lk.example.test"}, "LIVEKIT_URL must be wss://"),
        ({"TOKEN_SERVICE_URL": "http://api.example.test"}, "TOKEN_SERVICE_URL must be https://"),
        (
            {"LIVEKIT_URL": "ws://livekit:7880", "LIVEKIT_PUBLIC_URL": "ws://lk.example.test"},
            "LIVEKIT_PUBLIC_URL must be wss://",
        ),
        ({"DATABASE_URL": None}, "DATABASE_URL is SQLite"),
        ({"DATABASE_URL": "sqlite+aiosqlite:////var/tp.db"}, "ALLOW_SQLITE_IN_PRODUCTION=1"),
    ],
)
def test_production_refuses_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str | None], variable: str
) -> None:
    with pytest.raises(ValidationError, match=f"APP_ENV=production refuses .*{variable}"):
        _production(monkeypatch, **overrides)


def test_production_lists_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    for variable in ("LIVEKIT_API_SECRET", "APP_JWT_SECRET", "LIVEKIT_URL", "DATABASE_URL"):
        assert variable in str(refused.value)


def test_production_may_keep_sqlite_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _production(monkeypatch, DATABASE_URL=None, ALLOW_SQLITE_IN_PRODUCTION="1")
    assert settings.database_url.startswith("sqlite") and settings.allow_sqlite_in_production


def test_development_accepts_what_production_refuses() -> None:
    settings = Settings(_env_file=None, TOKEN_SERVICE_URL="http://x.test")  # type: ignore[call-arg]
    assert settings.app_env == "development" and settings.livekit_url.startswith("ws://")


@pytest.mark.parametrize(
    ("text", "count", "period_s"),
    [
        ("30/min", 30, 60),
        ("600/5m", 600, 300),
        ("10/s", 10, 1),
        ("5/1h", 5, 3600),
        ("7/2.5s", 7, 2.5),
        ("0", 0, 60),
        ("off", 0, 60),
    ],
)
def test_rate_limits_parse(text: str, count: int, period_s: float) -> None:
    limit = RateLimit.parse(text)
    assert (limit.count, limit.period_s) == (count, period_s)
    assert RateLimit.parse(str(limit)) == limit


@pytest.mark.parametrize("text", ["60", "ten/min", "5/fortnight", "5/0s", "-1/min", ""])
def test_a_bad_rate_limit_names_its_setting(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("RATE_LIMIT_TOKEN_PER_USER", text)
    with pytest.raises(ValidationError, match="RATE_LIMIT_TOKEN_PER_USER"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_list_settings_take_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.test/, http://localhost:5173")
    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8", "::1"]')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == ["https://app.example.test", "http://localhost:5173"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1/128"]
    for key, value in settings.child_env().items():
        monkeypatch.setenv(key, value)
    assert Settings(_env_file=None) == settings  # type: ignore[call-arg]
    defaults = Settings(_env_file=None, CORS_ORIGINS="", TRUSTED_PROXIES="")  # type: ignore[call-arg]
    assert defaults.cors_origins == [] and defaults.trusted_proxies == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CORS_ORIGINS", "*"),
        ("CORS_ORIGINS", "https://app.example.test/path"),
        ("CORS_ORIGINS", "app.example.test"),
        ("TRUSTED_PROXIES", "10.0.0.1, proxy.example.test"),
    ],
)
def test_bad_list_entries_name_their_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_short_secrets_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_JWT_SECRET", "")
    with pytest.raises(ValidationError, match="APP_JWT_SECRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_ice_servers_ignore_unrelated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERNAME", "leaked")
    monkeypatch.setenv("STUN_URLS", '["stun:a"]')
    [stun] = configured_ice_servers(Settings(_env_file=None))  # type: ignore[call-arg]
    assert stun.username is None and not stun.relays


@pytest.mark.parametrize(
    ("variable", "value"),
    [("STUN_URLS", '["stun:ok", "http://not-ice"]'), ("TURN_SERVER_URL", "turn.example.test:3478")],
)
def test_a_malformed_ice_url_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=f"{variable}: .*must start with stun:"):
        configured_ice_servers(settings)


def test_ice_servers_read_back_from_connection_info() -> None:
    document = {"urls": ["turn:t:3478?transport=tcp"], "username": "u", "credential": "c"}
    assert IceServer.from_json(document) == IceServer(("turn:t:3478?transport=tcp",), "u", "c")
    for bad in [[], {"urls": "stun:a"}, {"urls": []}, {"urls": ["stun:a"], "username": 1}]:
        with pytest.raises(ValueError, match="ICE server"):
            IceServer.from_json(bad)


def test_a_servers_relay_urls_are_its_turn_urls_only() -> None:
    mixed = IceServer(("stun:t:3478", "turn:t:3478", "turns:t:5349"), "u", "c")
    assert mixed.relays and mixed.relay_urls == ("turn:t:3478", "turns:t:5349")
    assert IceServer(("stun:t:3478",)).relay_urls == ()


def test_the_synthetic_clients_do_not_load_the_settings() -> None:
    """synthetic/ knows LiveKit and tokens, not the platform's configuration: it must run
    against any deployment without pydantic-settings or the platform's environment."""
    code = (
        "import sys\n"
        "import talkplatform_agents.synthetic.preflight, talkplatform_agents.synthetic.handshake\n"
        "import talkplatform_agents.synthetic.load\n"
        "loaded = {'talkplatform_agents.config', 'pydantic_settings'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_production_lets_the_private_url_be_ws_when_clients_get_a_public_wss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _production(
        monkeypatch, LIVEKIT_URL="ws://livekit:7880", LIVEKIT_PUBLIC_URL="wss://meet.example.test/"
    )
    assert settings.livekit_url == "ws://livekit:7880"
    assert settings.client_livekit_url == "wss://meet.example.test"
    assert settings.livekit_http_url == "http://livekit:7880"


def test_the_public_url_defaults_to_the_private_one_and_is_checked() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.client_livekit_url == settings.livekit_url
    with pytest.raises(ValidationError, match="LIVEKIT_PUBLIC_URL must start with ws://"):
        Settings(_env_file=None, LIVEKIT_PUBLIC_URL="https://x.test")  # type: ignore[call-arg]


def test_the_waiting_room_bot_admits_guests_to_the_public_url() -> None:
    from talkplatform_agents.bots.moderator.bot import ModeratorOptions

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        LIVEKIT_URL="ws://livekit:7880",
        LIVEKIT_PUBLIC_URL="wss://meet.example.test",
    )
    options = ModeratorOptions.from_settings(settings)
    assert options.ws_url == "wss://meet.example.test"
    assert options.livekit_http_url == "http://livekit:7880"
