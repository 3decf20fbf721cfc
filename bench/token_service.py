"""The token endpoint (``POST /api/v1/livekit/token``) against a bare FastAPI endpoint on the
same server in the same run, with the work each request costs.

    .venv/bin/python bench/token_service.py [--clients 16] [--seconds 10] [--rounds 5]
                                            [--burst 1000]

What it measures, and the goals it reports against (issue 11):
- steady load: N clients, each a request at a time, alternating between the bare endpoint
  and the token endpoint in ``--rounds`` slices so that both see the same background load
  (the ratio is what to compare across runs): token requests/s >= 0.5x bare, p99 <= 3x bare;
- a burst: ``--burst`` distinct users (each their own app JWT) asking at once for a token to
  ONE open meeting, served within 5 s, without errors; then the same crowd knocking at a
  meeting with a waiting room, and a check that every knock is in the store;
- the work per request, from the server: SQL statements and connection checkouts (counted
  by engine events in the server process) and the time in each stage of the route (its
  ``Server-Timing`` header: auth, store, server, policy, write, mint; a mean over the
  requests, waits included: under a burst, "store" and "write" are mostly time in line).

The server runs in its own process (spawn) with one uvicorn worker, the load generator in
this one; both on 127.0.0.1 and SQLite (the embedded default). No media, no namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from talkplatform_agents.config import Settings
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade

SECRET = "bench-app-secret-0123456789abcdef"
TOKEN = "/api/v1/livekit/token"
STAGES = ("auth", "store", "server", "policy", "write", "mint")
GOAL_RPS_RATIO = 0.5
GOAL_P99_RATIO = 3.0
GOAL_BURST_S = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(database_url: str, port: int) -> None:
    import uvicorn
    from sqlalchemy import event

    from talkplatform_agents.service import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        APP_JWT_SECRET=SECRET,
        LOG_LEVEL="WARNING",
        # One user and one address at a thousand requests a second: far past the abuse
        # limits, which stay in the path (their cost is measured) but never refuse.
        RATE_LIMIT_TOKEN_PER_USER="100000000/s",
        RATE_LIMIT_TOKEN_PER_ADDRESS="100000000/s",
    )
    app = create_app(settings)
    counts = {"statements": 0, "checkouts": 0}
    listening: list[bool] = []

    def count(what: str) -> Any:
        def listener(*_: Any) -> None:
            counts[what] += 1

        return listener

    @app.get("/bench/bare")
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/work")
    async def work(request: Request) -> dict[str, int]:
        """The server's SQL statements and connection checkouts so far."""
        if not listening:
            engine = request.app.state.context.db.engine.sync_engine
            event.listen(engine, "before_cursor_execute", count("statements"))
            event.listen(engine, "checkout", count("checkouts"))
            listening.append(True)
        return dict(counts)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@dataclass
class Load:
    """What one kind of request did: latencies, errors and the server's stage times."""

    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)  # HTTP status or exception: count
    stages_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statements: int = 0
    checkouts: int = 0

    def record(self, status: int | str, server_timing: str, started: float) -> None:
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        if status != 200:
            self.errors[str(status)] += 1
        for item in server_timing.split(","):
            name, _, params = item.strip().partition(";")
            if params.startswith("dur="):
                self.stages_ms[name].append(float(params.removeprefix("dur=")))

    def row(self) -> dict[str, Any]:
        count = len(self.latencies_ms)
        cuts = statistics.quantiles(self.latencies_ms, n=100) if count > 1 else [0.0] * 99
        row: dict[str, Any] = {
            "requests": count,
            "errors": sum(self.errors.values()),
            "rps": count / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_ms": cuts[49],
            "p99_ms": cuts[98],
            "sql/req": self.statements / count if count else 0.0,
            "conn/req": self.checkouts / count if count else 0.0,
        }
        for stage in STAGES:
            # A stage the route did not take (no write) counts as 0; "-": no header at all.
            total = sum(self.stages_ms.get(stage, ()))
            row[f"{stage}_ms"] = total / count if self.stages_ms else "-"
        return row


async def _work(client: httpx.AsyncClient) -> dict[str, int]:
    reply = await client.get("/bench/work")
    reply.raise_for_status()
    counts: dict[str, int] = reply.json()
    return counts


async def _steady(
    client: httpx.AsyncClient,
    load: Load,
    request: Callable[[], httpx.Request],
    clients: int,
    seconds: float,
) -> None:
    stop_at = time.perf_counter() + seconds

    async def one() -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            reply = await client.send(request())
            load.record(reply.status_code, reply.headers.get("server-timing", ""), started)

    before = await _work(client)
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    load.elapsed_s += time.perf_counter() - started
    after = await _work(client)
    load.statements += after["statements"] - before["statements"]
    load.checkouts += after["checkouts"] - before["checkouts"]


async def _burst(base: str, meeting_id: str, users: list[str]) -> Load:
    """Every user asks at once, each on a connection of their own (tokens minted before).
    Done when the last is answered. A few lines of raw HTTP/1.1 rather than httpx: at a
    thousand requests in flight httpx's pool costs the client more than the server's whole
    work, on the cores they share, and it is the server this measures."""
    address = httpx.URL(base)
    host, port = address.host, address.port or 80
    body = json.dumps({"meetingId": meeting_id}).encode()
    requests = [
        (
            f"POST {TOKEN} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {mint_app_token(SECRET, user, user, 3600)}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + body
        for user in users
    ]
    load = Load()

    async def one(request: bytes) -> None:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.read()  # the body, until the server closes
            finally:
                writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            load.record(type(exc).__name__, "", started)
            return
        lines = head.decode("latin-1").split("\r\n")
        timing = next((line for line in lines if line.lower().startswith("server-timing:")), "")
        load.record(int(lines[0].split()[1]), timing.partition(":")[2], started)

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        before = await _work(client)
        started = time.perf_counter()
        await asyncio.gather(*(one(request) for request in requests))
        load.elapsed_s = time.perf_counter() - started
        after = await _work(client)
    load.statements = after["statements"] - before["statements"]
    load.checkouts = after["checkouts"] - before["checkouts"]
    return load


async def _meeting(client: httpx.AsyncClient, host: dict[str, str], **settings: Any) -> str:
    created = await client.post(
        "/api/v1/meetings", json={"title": "bench", "settings": settings}, headers=host
    )
    created.raise_for_status()
    meeting_id: str = created.json()["id"]
    return meeting_id


async def _run(args: argparse.Namespace, base: str) -> None:
    host = {"Authorization": f"Bearer {mint_app_token(SECRET, 'bench-user', 'Bench', 3600)}"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        meeting_id = await _meeting(client, host)

        def bare_request() -> httpx.Request:
            return client.build_request("GET", "/bench/bare")

        def token_request() -> httpx.Request:
            return client.build_request("POST", TOKEN, json={"meetingId": meeting_id}, headers=host)

        await _steady(client, Load(), bare_request, args.clients, 1.0)  # warm up both paths
        await _steady(client, Load(), token_request, args.clients, 1.0)
        bare, token = Load(), Load()
        for _ in range(args.rounds):
            await _steady(client, bare, bare_request, args.clients, args.seconds / args.rounds)
            await _steady(client, token, token_request, args.clients, args.seconds / args.rounds)
        open_meeting = await _meeting(client, host)
        waiting_meeting = await _meeting(client, host, waiting_room=True)
    users = [f"burst-{i:05d}" for i in range(args.burst)]
    joins = await _burst(base, open_meeting, users)
    knocks = await _burst(base, waiting_meeting, users)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        stats = await client.get(
            f"/api/v1/meetings/{waiting_meeting}/waiting-room/stats", headers=host
        )
        stats.raise_for_status()
        recorded = stats.json()["counts"]["waiting"]

    cases = {
        "bare GET": bare.row(),
        "token (host)": token.row(),
        f"{args.burst} joins": joins.row(),
        f"{args.burst} knocks": knocks.row(),
    }
    # One row per metric, one column per case: narrow enough for an 80-column terminal.
    rows = [{"metric": metric, **{case: row[metric] for case, row in cases.items()}}
            for metric in cases["bare GET"]]  # fmt: skip
    bare_row, token_row = cases["bare GET"], cases["token (host)"]
    rps_ratio = token_row["rps"] / bare_row["rps"]
    p99_ratio = token_row["p99_ms"] / bare_row["p99_ms"]
    report(
        "token_service",
        rows,
        {
            "clients": args.clients,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "token_rps_over_bare": rps_ratio,
            "token_p99_over_bare": p99_ratio,
            "token_p50_over_bare": token_row["p50_ms"] / bare_row["p50_ms"],
            "burst_users": args.burst,
            "burst_join_s": joins.elapsed_s,
            "burst_join_errors": dict(joins.errors),
            "burst_knock_s": knocks.elapsed_s,
            "burst_knock_errors": dict(knocks.errors),
            "knocks_recorded": recorded,
            "nothing_lost": recorded == args.burst,
            "goal_rps_ratio_met": rps_ratio >= GOAL_RPS_RATIO,
            "goal_p99_ratio_met": p99_ratio <= GOAL_P99_RATIO,
            "goal_burst_met": joins.elapsed_s <= GOAL_BURST_S and not joins.errors,
            "stages": "auth_ms..mint_ms: mean per request, from the route's Server-Timing",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint, in all")
    parser.add_argument("--rounds", type=int, default=5, help="alternating slices")
    parser.add_argument("--burst", type=int, default=1000, help="distinct users in the burst")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        upgrade(database_url)
        port = _free_port()
        server = mp.get_context("spawn").Process(target=_serve, args=(database_url, port))
        server.start()
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or not server.is_alive():
                    raise SystemExit("the token service did not start")
                time.sleep(0.2)
            asyncio.run(_run(args, base))
        finally:
            server.terminate()
            server.join(10)


if __name__ == "__main__":
    main()
