"""Token requests per second and latency under N concurrent clients, against a bare FastAPI
endpoint on the same server in the same run (the ratio is what to compare across runs).

    .venv/bin/python bench/token_service.py [--clients 16] [--seconds 10]

The server runs in its own process (spawn) with one uvicorn worker, the load generator in
this one; both on 127.0.0.1. No media, so no namespace is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from talkplatform_agents.config import Settings
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade

SECRET = "bench-app-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(database_url: str, port: int) -> None:
    import uvicorn

    from talkplatform_agents.service import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        APP_JWT_SECRET=SECRET,
        LOG_LEVEL="WARNING",
    )
    app = create_app(settings)

    @app.get("/bench/bare")
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _load(
    base: str,
    path: str,
    body: dict[str, str] | None,
    headers: dict[str, str],
    clients: int,
    seconds: float,
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            if body is None:
                reply = await client.get(path, headers=headers)
            else:
                reply = await client.post(path, json=body, headers=headers)
            latencies.append((time.perf_counter() - start) * 1000)
            errors += reply.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
    }


async def _run(base: str, clients: int, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {mint_app_token(SECRET, 'bench-user', 'Bench', 3600)}"}
    async with httpx.AsyncClient(base_url=base) as client:
        created = await client.post("/api/v1/meetings", json={"title": "bench"}, headers=headers)
        created.raise_for_status()
        meeting_id = created.json()["id"]
    await _load(base, "/bench/bare", None, {}, clients, 1.0)  # warm up both paths
    bare = await _load(base, "/bench/bare", None, {}, clients, seconds)
    token = await _load(
        base, "/api/v1/livekit/token", {"meetingId": meeting_id}, headers, clients, seconds
    )
    rows = [{"endpoint": "bare FastAPI GET", **bare}, {"endpoint": "POST livekit/token", **token}]
    report(
        "token_service",
        rows,
        {
            "clients": clients,
            "seconds": seconds,
            "token_rps_over_bare": token["rps"] / bare["rps"],
            "token_p50_over_bare": token["p50_ms"] / bare["p50_ms"],
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
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
            asyncio.run(_run(base, args.clients, args.seconds))
        finally:
            server.terminate()
            server.join(10)


if __name__ == "__main__":
    main()
