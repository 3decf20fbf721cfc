from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from talkplatform_agents.config import Settings
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
