from __future__ import annotations

import pytest
from pydantic import ValidationError

from talkplatform_agents.config import Settings


def test_environment_names_and_the_seed_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_WS_URL", "wss://lk.example.test/")
    monkeypatch.setenv("TURN_SERVER_URL", "turn:turn.example.test:3478")
    monkeypatch.setenv("TURN_USERNAME", "livekit")
    monkeypatch.setenv("TURN_PASSWORD", "pw")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.livekit_url == "wss://lk.example.test"
    assert settings.livekit_http_url == "https://lk.example.test"
    [turn] = settings.ice_servers()
    assert turn.urls == ["turn:turn.example.test:3478"] and turn.credential == "pw"


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


def test_production_refuses_the_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ValidationError, match="LIVEKIT_API_SECRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("LIVEKIT_API_SECRET", "p" * 40)
    with pytest.raises(ValidationError, match="APP_JWT_SECRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("APP_JWT_SECRET", "q" * 40)
    assert Settings(_env_file=None).app_env == "production"  # type: ignore[call-arg]


def test_short_secrets_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_JWT_SECRET", "")
    with pytest.raises(ValidationError, match="APP_JWT_SECRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_ice_servers_ignore_unrelated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERNAME", "leaked")
    monkeypatch.setenv("STUN_URLS", '["stun:a"]')
    [stun] = Settings(_env_file=None).ice_servers()  # type: ignore[call-arg]
    assert stun.username is None
