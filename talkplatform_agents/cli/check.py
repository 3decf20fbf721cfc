"""``talkplatform-agents check``: the green-room preflight, as a table or JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from talkplatform_agents.lk.ice import IceServer
from talkplatform_agents.synthetic.preflight import PreflightOptions, StepResult, run_preflight

__all__ = ["CheckTarget", "render", "run_check"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckTarget:
    """Either the token service (``api_url`` + ``app_token``) or a ready ``url``/``token``."""

    api_url: str | None = None
    app_token: str | None = None
    url: str | None = None
    token: str | None = None
    turn: IceServer | None = None  # instead of the service's ICE servers
    step_timeout_s: float = 15.0


async def run_check(target: CheckTarget) -> list[StepResult]:
    results: list[StepResult] = []
    if target.api_url is not None:
        started = time.perf_counter()
        try:
            options = await _from_api(target)
        except Exception as exc:
            results.append(
                StepResult("api", False, _api_error(target.api_url, exc), _since(started))
            )
            return results
        results.append(
            StepResult("api", True, f"green-room token from {target.api_url}", _since(started))
        )
    else:
        assert target.url and target.token
        options = PreflightOptions(
            url=target.url,
            token=target.token,
            ice_servers=[target.turn] if target.turn else [],
            step_timeout_s=target.step_timeout_s,
        )
    return results + await run_preflight(options)


async def _from_api(target: CheckTarget) -> PreflightOptions:
    assert target.api_url and target.app_token
    headers = {"Authorization": f"Bearer {target.app_token}"}
    async with httpx.AsyncClient(base_url=target.api_url, timeout=10, headers=headers) as http:
        grant = await http.post("/api/v1/greenroom/token")
        grant.raise_for_status()
        if target.turn is not None:  # --turn replaces the service's ICE servers: not asked
            servers = [target.turn]
        else:
            info = await http.get("/api/v1/livekit/connection-info")
            info.raise_for_status()
            servers = [IceServer.from_json(s) for s in info.json().get("iceServers", [])]
    body = grant.json()
    return PreflightOptions(
        url=body["wsUrl"],
        token=body["token"],
        ice_servers=servers,
        step_timeout_s=target.step_timeout_s,
    )


def _api_error(api_url: str, exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            message = exc.response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.response.text[:200]
        return f"{api_url} answered {exc.response.status_code}: {message}"
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach the token service at {api_url}: {type(exc).__name__} {exc}"
    return f"{type(exc).__name__}: {exc}"


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def render(results: list[StepResult], console: Console, as_json: bool) -> int:
    """Print the results; the exit status: 1 when any step failed."""
    failed = any(r.ok is False for r in results)
    if as_json:
        body = {"ok": not failed, "steps": [r.as_dict() for r in results]}
        console.print_json(json.dumps(body, default=str))
        return 1 if failed else 0
    table = Table(title="green-room preflight")
    table.add_column("step")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("detail", overflow="fold")
    marks = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[yellow]skip[/yellow]"}
    for result in results:
        table.add_row(result.name, marks[result.ok], f"{result.seconds:.2f}s", result.detail)
    console.print(table)
    console.print("[red]preflight failed[/red]" if failed else "[green]preflight passed[/green]")
    return 1 if failed else 0


def check_sync(target: CheckTarget, console: Console, as_json: bool) -> int:
    # The SDK's handle destructors can raise while the garbage collector runs (after a
    # retried join, say); Python prints those as tracebacks a user cannot act on. Log them.
    sys.unraisablehook = _log_unraisable
    return render(asyncio.run(run_check(target)), console, as_json)


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    logger.debug("ignored in %r: %r", unraisable.object, unraisable.exc_value)
