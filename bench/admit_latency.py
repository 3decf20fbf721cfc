"""Waiting-room admission: how long from a host's decision to the guest hearing the meeting,
beside a direct join measured in the same run; and admit-all of a crowd.

    .venv/bin/python bench/admit_latency.py [--rounds 10] [--crowd 50]

Inside a fresh network namespace: the real livekit-server, token service and bots. A host
in the meeting publishes a tone. Per round:
- admitted: a guest waits in the lobby; the clock starts at the host's ``waiting.admit`` RPC
  and stops at the guest's first audio frame from the meeting (RPC, store, token, message
  to the lobby, leave the lobby, join the meeting, subscribe);
- direct (the baseline): a guest with a meeting token joins and hears the first frame
  (join, subscribe) — what admission costs on top is the ratio.
Then ``--crowd`` guests wait at once: one ``waiting.admit_all`` RPC, until every one of them
has its "admitted" message, beside admitting the same number one RPC at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import waiting as proto
from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE, WAITING_ROOM_AGENT_NAME
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant, percentile


class _Api:
    def __init__(self, stack: Stack) -> None:
        self.settings = stack.child_settings
        self.http = httpx.AsyncClient(base_url=self.settings.api_url, timeout=30)

    def auth(self, user: str) -> dict[str, str]:
        secret = self.settings.app_jwt_secret.get_secret_value()
        return {"Authorization": f"Bearer {mint_app_token(secret, user, user, 600)}"}

    async def meeting(self, host: str) -> str:
        body = {"title": "bench", "settings": {"waiting_room": True}}
        reply = await self.http.post("/api/v1/meetings", json=body, headers=self.auth(host))
        reply.raise_for_status()
        return str(reply.json()["id"])

    async def token(self, user: str, mid: str) -> dict[str, Any]:
        reply = await self.http.post(
            "/api/v1/livekit/token", json={"meetingId": mid}, headers=self.auth(user)
        )
        reply.raise_for_status()
        return dict(reply.json())


def _config(grant: dict[str, Any], audio: bool = False) -> ParticipantConfig:
    return ParticipantConfig(
        url=grant["wsUrl"], token=grant["token"], publish_audio=audio, publish_video=False
    )


async def _until(probe: Any, timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    return value


async def _status(p: SyntheticParticipant, status: str) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            message = json.loads((await p.next_data(proto.TOPIC_STATUS)).payload)
            if message.get("status") == status:
                return dict(message)


def _progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _first_frame(p: SyntheticParticipant) -> float | None:
    return next((a.first_frame_at for a in p.audio_probes.values() if a.first_frame_at), None)


async def _bot(p: SyntheticParticipant) -> str:
    def find() -> str | None:
        for other in p.room.remote_participants.values():
            if other.attributes.get(AGENT_NAME_ATTRIBUTE) == WAITING_ROOM_AGENT_NAME:
                return other.identity
        return None

    return str(await _until(find, 90))


async def _admitted_round(api: _Api, host: SyntheticParticipant, bot: str, mid: str) -> float:
    guest = f"g-{uuid.uuid4().hex[:6]}"
    lobby = SyntheticParticipant(_config(await api.token(guest, mid)))
    await lobby.start()
    try:
        await _status(lobby, "waiting")
        started = time.time()
        await host.rpc(bot, proto.RPC_WAITING_ADMIT, json.dumps({"identity": guest}))
        admitted = await _status(lobby, "admitted")
        inside = SyntheticParticipant(_config(admitted))
        # As a client would: join the meeting while leaving the lobby.
        await asyncio.gather(inside.start(), lobby.stop())
    finally:
        await lobby.stop()
    try:
        first = await _until(lambda: _first_frame(inside), 30)
    finally:
        await inside.stop()
    return (first - started) * 1000


async def _direct_round(api: _Api, mid: str, host_id: str) -> float:
    guest = f"d-{uuid.uuid4().hex[:6]}"
    grant = await api.token(guest, mid)
    assert grant["status"] == "joined"
    started = time.time()
    async with SyntheticParticipant(_config(grant)) as inside:
        first = await _until(lambda: _first_frame(inside), 30)
    return (first - started) * 1000


async def _crowd(
    api: _Api, host: SyntheticParticipant, bot: str, mid: str, n: int, all_at_once: bool
) -> float:
    guests = [f"c-{uuid.uuid4().hex[:6]}" for _ in range(n)]
    grants = [await api.token(g, mid) for g in guests]
    lobby = [SyntheticParticipant(_config(g)) for g in grants]
    try:
        async with asyncio.timeout(300):
            for p in lobby:
                await p.start()
            _progress(f"{n} guests in the lobby")
            await asyncio.gather(*(_status(p, "waiting") for p in lobby))
        _progress(f"{n} guests told they wait")
        started = time.perf_counter()
        if all_at_once:
            await host.rpc(bot, proto.RPC_WAITING_ADMIT_ALL, "{}", response_timeout_s=60)
        else:
            for g in guests:
                await host.rpc(bot, proto.RPC_WAITING_ADMIT, json.dumps({"identity": g}))
        async with asyncio.timeout(120):
            await asyncio.gather(*(_status(p, "admitted") for p in lobby))
        return (time.perf_counter() - started) * 1000
    finally:
        await asyncio.gather(*(p.stop() for p in lobby), return_exceptions=True)


async def _bench(stack: Stack, rounds: int, crowd: int) -> None:
    api = _Api(stack)
    host_id = f"host-{uuid.uuid4().hex[:6]}"
    mid = await api.meeting(host_id)
    # Direct joins need a meeting without the waiting room: the same host, a second meeting.
    open_mid = await api.meeting(host_id)
    await api.http.patch(
        f"/api/v1/public-meetings/{open_mid}",
        json={"settings": {"waiting_room": False}},
        headers=api.auth(host_id),
    )
    async with (
        SyntheticParticipant(_config(await api.token(host_id, mid), audio=True)) as host,
        SyntheticParticipant(_config(await api.token(host_id, open_mid), audio=True)) as open_host,
    ):
        bot = await _bot(host)
        await _bot(open_host)
        admitted, direct = [], []
        for i in range(rounds):  # interleaved, so drift on a shared machine hits both
            direct.append(await _direct_round(api, open_mid, host_id))
            admitted.append(await _admitted_round(api, host, bot, mid))
            _progress(f"round {i + 1}: direct {direct[-1]:.0f} ms, admitted {admitted[-1]:.0f} ms")
        one_by_one = await _crowd(api, host, bot, mid, crowd, all_at_once=False)
        all_at_once = await _crowd(api, host, bot, mid, crowd, all_at_once=True)
    await api.http.aclose()
    rows = [
        {"path": "direct join → first frame", "n": len(direct),
         "p50_ms": percentile(direct, 50), "p95_ms": percentile(direct, 95)},
        {"path": "admit RPC → first frame", "n": len(admitted),
         "p50_ms": percentile(admitted, 50), "p95_ms": percentile(admitted, 95)},
        {"path": f"admit {crowd} one RPC each → all told", "n": crowd,
         "p50_ms": one_by_one, "p95_ms": one_by_one},
        {"path": f"admit_all {crowd} → all told", "n": crowd,
         "p50_ms": all_at_once, "p95_ms": all_at_once},
    ]  # fmt: skip
    p50_admit, p50_direct = percentile(admitted, 50), percentile(direct, 50)
    report(
        "admit_latency",
        rows,
        {
            "admit_over_direct_p50": (p50_admit or 0) / (p50_direct or 1),
            "admit_all_over_one_by_one": all_at_once / one_by_one,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--crowd", type=int, default=50)
    args = parser.parse_args()
    run_in_local_stack(lambda stack: _bench(stack, args.rounds, args.crowd))


if __name__ == "__main__":
    main()
