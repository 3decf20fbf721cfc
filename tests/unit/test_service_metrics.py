"""The token service's ``GET /metrics``: prometheus_client's format, each app's own figures,
routes by template, and the counters that the routes move."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from talkplatform_agents.config import Settings
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade
from tests.service.conftest import participant_joined, running_app

SECRET = "metrics-app-secret-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _settings(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    upgrade(url)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=url,
        APP_JWT_SECRET=SECRET,
        LIVEKIT_URL="ws://127.0.0.1:1",  # nothing listens
    )


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_app_token(SECRET, user, user.title(), 600)}"}


async def _scrape(http: httpx.AsyncClient) -> Samples:
    reply = await http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_every_figure_of_before_is_still_there(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path)) as (_, http):
        samples = await _scrape(http)
    names = {name for name, _ in samples}
    # bench/soak.py and the fault tests read these by name.
    kept = ("tp_bot_dispatches_total", "tp_bots_missing_warnings_total", "tp_bots_replaced_total",
            "tp_bots_redispatched_total", "tp_asyncio_tasks")  # fmt: skip
    for name in kept:
        assert name in names, name
    assert _value(samples, "tp_asyncio_tasks") >= 1
    assert "process_resident_memory_bytes" in names


async def test_requests_are_counted_by_route_template_and_status(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path)) as (_, http):
        for meeting in ("a" * 32, "b" * 32):
            reply = await http.get(f"/api/v1/meetings/{meeting}", headers=_auth("alice"))
            assert reply.status_code == 404
        assert (await http.get("/nowhere/at/all")).status_code == 404
        samples = await _scrape(http)
    route = "/api/v1/meetings/{meeting_id}"
    counted = _value(samples, "tp_http_requests_total", method="GET", route=route, status="404")
    assert counted == 2  # one series for both ids
    assert (
        _value(samples, "tp_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    timed = _value(samples, "tp_http_request_duration_seconds_count", method="GET", route=route)
    assert timed == 2
    assert not any("a" * 32 in str(labels) for _, labels in samples)


async def test_tokens_webhooks_and_admissions_are_counted(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with running_app(settings) as (_, http):
        created = await http.post(
            "/api/v1/meetings",
            json={"title": "t", "settings": {"waiting_room": True}},
            headers=_auth("alice"),
        )
        assert created.status_code == 201, created.text
        meeting = created.json()["id"]
        for user in ("alice", "bob"):
            reply = await http.post(
                "/api/v1/livekit/token", json={"meetingId": meeting}, headers=_auth(user)
            )
            assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "waiting"  # bob, at the door
        green = await http.post("/api/v1/greenroom/token", headers=_auth("carol"))
        assert green.status_code == 200, green.text
        admitted = await http.post(
            f"/api/v1/meetings/{meeting}/waiting-room/bob/admit", headers=_auth("alice")
        )
        assert admitted.status_code == 200, admitted.text
        body, headers = participant_joined(settings, f"meeting-{meeting}", "alice")
        for _ in range(2):  # the second is a replay
            hook = await http.post("/api/v1/livekit/webhook", content=body, headers=headers)
            assert hook.status_code == 200, hook.text
        samples = await _scrape(http)
    assert _value(samples, "tp_token_requests_total", kind="meeting", status="joined") == 1
    assert _value(samples, "tp_token_requests_total", kind="meeting", status="waiting") == 1
    assert _value(samples, "tp_token_requests_total", kind="greenroom", status="joined") == 1
    assert _value(samples, "tp_admissions_total", via="rest") == 1
    joined = {"event": "participant_joined"}
    assert _value(samples, "tp_webhooks_total", **joined, result="acted") == 1
    assert _value(samples, "tp_webhooks_total", **joined, result="duplicate") == 1


async def test_two_apps_in_one_process_count_apart(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        running_app(_settings(tmp_path / "one")) as (_, one),
        running_app(_settings(tmp_path / "two")) as (_, two),
    ):
        for _ in range(3):
            assert (await one.get("/healthz")).status_code == 200
        first, second = await _scrape(one), await _scrape(two)
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert _value(first, "tp_http_requests_total", **healthz) == 3
    assert _value(second, "tp_http_requests_total", **healthz) == 0
