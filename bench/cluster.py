"""What a second LiveKit node costs a meeting, and how long losing a node interrupts one.

One run, one two-node cluster (harness/cluster.py: Redis, two livekit-server nodes, each
with its token service and meeting-bot worker, on one MariaDB):

- **join**: ``room.connect`` through the node that hosts the room (the baseline) and through
  the other node, whose signalling LiveKit relays over Redis to the host node;
- **bots**: a new meeting's first join to both of its bots settled (joined and active);
- **failover**: a meeting whose room is on node A, its host connected through node B (as a
  load balancer routes); node A's livekit-server is SIGKILLed, and the clock runs to the
  room living on B again (the host's SDK rejoined) and to both bots settled again. The node
  is started again between trials. Its ratio is to **bots** on a new meeting.

    .venv/bin/python bench/cluster.py [--joins 10] [--failovers 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from livekit import rtc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, report

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace
from talkplatform_agents.harness.cluster import Cluster, ClusterOptions
from talkplatform_agents.harness.mariadb import MariaDB
from talkplatform_agents.lk.naming import ACTIVE_ATTRIBUTE, AGENT_NAME_ATTRIBUTE, MEETING_AGENTS
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade

HOSTS = ("10.77.0.2", "10.77.0.3")
SECRET = "bench-app-secret-0123456789-0123456789"


def _bots_settled(room: rtc.Room) -> bool:
    if room.connection_state != rtc.ConnectionState.CONN_CONNECTED:
        return False
    for name in MEETING_AGENTS:
        bots = [
            p for p in room.remote_participants.values()
            if p.attributes.get(AGENT_NAME_ATTRIBUTE) == name
        ]  # fmt: skip
        if len(bots) != 1 or bots[0].attributes.get(ACTIVE_ATTRIBUTE) != "1":
            return False
    return True


async def _until(probe: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not probe():  # noqa: ASYNC110 (polls SDK and Redis state)
            await asyncio.sleep(0.02)


class Bench:
    def __init__(self, cluster: Cluster, http: httpx.AsyncClient) -> None:
        self.cluster = cluster
        self.http = http
        self.registered: list[int] = []  # nodes in LiveKit's registry after each failover

    def url(self, node: int) -> str:
        return self.cluster.nodes[node].child_settings.livekit_url

    async def grant(self, meeting: str | None = None) -> dict[str, Any]:
        user = f"u-{uuid.uuid4().hex[:8]}"
        auth = {"Authorization": f"Bearer {mint_app_token(SECRET, user, user, 3600)}"}
        api = self.cluster.nodes[0].child_settings.api_url
        if meeting is None:
            body = {"title": "bench", "settings": {"waiting_room": False}}
            created = await self.http.post(f"{api}/api/v1/meetings", json=body, headers=auth)
            meeting = str(created.json()["id"])
        reply = await self.http.post(
            f"{api}/api/v1/livekit/token", json={"meetingId": meeting}, headers=auth
        )
        return {**reply.json(), "meeting": meeting}

    async def new_meeting(self) -> tuple[rtc.Room, dict[str, Any], int, float]:
        """A meeting with its first member (through node 0) and its bots: the room, the
        grant, the room's node and the seconds from the join to the bots settled."""
        grant = await self.grant()
        room = rtc.Room()
        started = time.monotonic()
        await room.connect(self.url(0), grant["token"])
        await _until(lambda: _bots_settled(room), 120)
        bots_s = time.monotonic() - started
        node = self.cluster.node_of_room(grant["room"])
        assert node is not None
        return room, grant, node, bots_s

    async def join(self, grant: dict[str, Any], node: int) -> float:
        room = rtc.Room()
        started = time.monotonic()
        await room.connect(self.url(node), (await self.grant(grant["meeting"]))["token"])
        elapsed = time.monotonic() - started
        await room.disconnect()
        return elapsed

    async def failover(self) -> tuple[float, float]:
        """One node lost under a meeting: seconds to the room back, and to its bots back."""
        room, grant, dead, _ = await self.new_meeting()
        await room.disconnect()
        alive = 1 - dead
        room = rtc.Room()
        await room.connect(self.url(alive), (await self.grant(grant["meeting"]))["token"])
        await _until(lambda: _bots_settled(room), 120)
        killed = time.monotonic()
        self.cluster.kill_node(dead)
        await _until(lambda: self.cluster.node_of_room(grant["room"]) == alive, 120)
        room_s = time.monotonic() - killed
        await _until(lambda: _bots_settled(room), 180)
        bots_s = time.monotonic() - killed
        # What LiveKit's registry says of the dead node once its meetings have moved.
        self.registered.append(self.cluster.registered_nodes())
        await room.disconnect()
        self.cluster.restart_node(dead)
        return room_s, bots_s


def _redis_commands(cluster: Cluster) -> int:
    """Commands Redis has processed since it started (INFO stats)."""
    assert cluster.redis is not None
    for line in cluster.redis.command("INFO", "stats").splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError("Redis INFO stats has no total_commands_processed")


async def _measure(
    cluster: Cluster, joins: int, failovers: int, redis: dict[str, float]
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"local": [], "relayed": [], "bots": [], "room": [], "back": []}
    # Redis's load from two idle nodes (their heartbeats and stats), then per meeting.
    before, started = _redis_commands(cluster), time.monotonic()
    await asyncio.sleep(10)  # a bench: the window of the idle rate, not a wait
    redis["idle commands/s"] = (_redis_commands(cluster) - before) / (time.monotonic() - started)
    async with httpx.AsyncClient(timeout=30) as http:
        bench = Bench(cluster, http)
        before, started = _redis_commands(cluster), time.monotonic()
        for _ in range(joins):
            room, grant, node, bots_s = await bench.new_meeting()
            out["bots"].append(bots_s)
            out["local"].append(await bench.join(grant, node))
            out["relayed"].append(await bench.join(grant, 1 - node))
            await room.disconnect()
        idle = redis["idle commands/s"] * (time.monotonic() - started)
        # Each meeting: made, its host and bots in, two more joins, everyone out.
        redis["commands per meeting"] = (_redis_commands(cluster) - before - idle) / joins
        for trial in range(failovers):
            room_s, back_s = await bench.failover()
            out["room"].append(room_s)
            out["back"].append(back_s)
            print(f"failover {trial + 1}: room {room_s:.2f} s, bots {back_s:.2f} s", flush=True)
        if bench.registered:
            redis["nodes registered after a failover (of 2, one dead)"] = min(bench.registered)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=10)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, NetNamespace.create() as namespace:
        for host in HOSTS:
            namespace.add_address(host)
        namespace.enter()  # before any thread: the SDK's threads inherit it
        database = MariaDB(Path(tmp) / "mariadb", database="bench_cluster")
        database.start()
        try:
            upgrade(database.url)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                DATABASE_URL=database.url,
                APP_JWT_SECRET=SECRET,
                LOG_LEVEL="WARNING",
            )
            options = ClusterOptions(
                root=ROOT, run_dir=Path(tmp) / "run", hosts=HOSTS, agents=MEETING_AGENTS
            )
            with Cluster(settings, options) as cluster:
                redis: dict[str, float] = {}
                times = asyncio.run(_measure(cluster, args.joins, args.failovers, redis))
        finally:
            database.stop()
    rows = []
    for key, what in (
        ("local", "join through the room's node"),
        ("relayed", "join through the other node"),
        ("bots", "new meeting: join to bots settled"),
        ("room", "node killed: to the room on the survivor"),
        ("back", "node killed: to the bots settled again"),
    ):
        values = times[key]
        rows.append({
            "what": what,
            "n": len(values),
            "median s": statistics.median(values),
            "min s": min(values),
            "max s": max(values),
        })  # fmt: skip
    median = {k: statistics.median(v) for k, v in times.items()}
    report(
        "cluster",
        rows,
        {
            "relayed / local join (median)": round(median["relayed"] / median["local"], 3),
            "failover bots / new-meeting bots (median)": round(median["back"] / median["bots"], 3),
            **{f"redis {k}": round(v, 1) for k, v in redis.items()},
        },
        width=120,
    )


if __name__ == "__main__":
    main()
