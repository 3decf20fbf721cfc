"""docker-compose.yml as Docker reads it (Debian's docker-compose validates it, no engine
needed), and the wiring the native run (tests/integration/test_compose.py) relies on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.compose import (
    ComposeError,
    ComposeFile,
    interpolate,
    read_env_file,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def _compose() -> ComposeFile:
    return ComposeFile.load(COMPOSE, read_env_file(ENV_EXAMPLE))


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (Debian's docker-compose: apt-get install it)",
)
def test_docker_compose_accepts_the_file_with_the_example_env(tmp_path: Path) -> None:
    # A clean environment: compose would take any LIVEKIT_* of this shell over .env.example.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_example_env_is_valid_for_local_use() -> None:
    settings = Settings(_env_file=str(ENV_EXAMPLE))  # type: ignore[call-arg]
    assert settings.livekit_url == "ws://127.0.0.1:7880"
    assert settings.client_livekit_url == settings.livekit_url


def test_services_link_inside_and_give_browsers_the_public_url() -> None:
    services = _compose().services
    for name in ("token-service", "workers"):
        env = services[name].environment
        assert env["LIVEKIT_URL"] == "ws://livekit:7880"
        assert env["LIVEKIT_PUBLIC_URL"] == "ws://localhost:7880"
        assert env["DATABASE_URL"].startswith("mysql+aiomysql://talk:talk@mariadb/")
        Settings(_env_file=None, **env)  # type: ignore[call-arg]
    assert "--agents" in services["workers"].command
    assert services["workers"].command[services["workers"].command.index("--agents") + 1] == "all"


def test_every_dependency_waits_for_health_or_the_migration() -> None:
    services = _compose().services
    for service in services.values():
        for dependency, condition in service.depends_on.items():
            done = dependency == "migrate"
            expected = "service_completed_successfully" if done else "service_healthy"
            assert condition == expected, (service.name, dependency)
    # The schema is migrated once, by its own one-shot service, never by each replica.
    assert list(services["migrate"].command) == ["talkplatform-agents", "db", "upgrade"]
    assert services["migrate"].depends_on.keys() == {"mariadb"}
    assert services["token-service"].depends_on.keys() == {"migrate", "livekit"}
    assert "upgrade" not in " ".join(services["token-service"].command)
    assert all(s.healthcheck for n, s in services.items() if n not in ("coturn", "migrate"))


def test_secrets_have_no_defaults(tmp_path: Path) -> None:
    """Without .env, compose refuses, rather than publish ports behind the repo's dev keys."""
    values = read_env_file(ROOT / ".env.example")
    for name in ("LIVEKIT_API_SECRET", "APP_JWT_SECRET", "LIVEKIT_API_KEY"):
        with pytest.raises(ComposeError, match=name):
            ComposeFile.load(ROOT / "docker-compose.yml", {**values, name: ""})


def test_livekit_config_uses_redis_and_signs_webhooks_with_the_env_key() -> None:
    services = _compose().services
    config_mount = next(v for v in services["livekit"].volumes if v.target == "/etc/livekit.yaml")
    config = yaml.safe_load((ROOT / config_mount.source).read_text())
    assert config["redis"]["address"] == "redis:6379"
    assert config["webhook"]["urls"] == ["http://token-service:8000/api/v1/livekit/webhook"]
    assert "api_key" not in config["webhook"]  # LIVEKIT_WEBHOOK_API_KEY, from the environment
    env = services["livekit"].environment
    key = services["token-service"].environment["LIVEKIT_API_KEY"]
    secret = services["token-service"].environment["LIVEKIT_API_SECRET"]
    assert env["LIVEKIT_KEYS"] == f"{key}: {secret}"
    assert env["LIVEKIT_WEBHOOK_API_KEY"] == key


def test_interpolation_follows_compose() -> None:
    values = {"SET": "x", "EMPTY": ""}
    text = "${SET:-d}/${EMPTY:-d}/${EMPTY-d}/${UNSET-d}/$SET/$$"
    assert interpolate(text, values) == "x/d//d/x/$"
    with pytest.raises(ComposeError, match="NEEDED"):
        interpolate("${NEEDED:?set it}", values)


def test_a_bad_env_line_is_refused_with_its_place(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GOOD=1\nnot a line\n")
    with pytest.raises(ComposeError, match=r"\.env:2"):
        read_env_file(env)


def test_a_healthy_wait_on_a_service_without_a_healthcheck_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(
        "services:\n"
        "  a: {image: redis:7, depends_on: {b: {condition: service_healthy}}}\n"
        "  b: {image: redis:7}\n"
    )
    with pytest.raises(ComposeError, match="no healthcheck"):
        ComposeFile.load(path, {})
