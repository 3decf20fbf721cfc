"""The echo demo: a synthetic participant asks the token service for a green-room token,
joins, and measures its own tone coming back through the echo bot."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

import httpx

from talkplatform_agents.service.auth import mint_app_token
from talkplatform_agents.synthetic import (
    ParticipantConfig,
    SyntheticParticipant,
    ToneConfig,
    percentile,
)

__all__ = ["EchoDemoResult", "run_echo_demo"]

_TAG = 7


@dataclass(frozen=True)
class EchoDemoResult:
    identity: str
    room: str
    echo_from: str
    join_s: float
    markers_sent: int
    markers_echoed: int
    rtt_p50_ms: float | None
    rtt_p95_ms: float | None
    echo_level_dbfs: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def run_echo_demo(
    api_url: str, app_jwt_secret: str, *, user: str = "demo-user", seconds: float = 8.0
) -> EchoDemoResult:
    app_token = mint_app_token(app_jwt_secret, user, "Demo User", ttl_s=600)
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.post(
            f"{api_url}/api/v1/greenroom/token", headers={"Authorization": f"Bearer {app_token}"}
        )
        reply.raise_for_status()
        grant = reply.json()
    config = ParticipantConfig(
        url=grant["wsUrl"], token=grant["token"], publish_video=False, tone=ToneConfig(tag=_TAG)
    )
    async with SyntheticParticipant(config) as participant:
        async with asyncio.timeout(30):
            probe = await participant.wait_for_audio_marker(tag=_TAG)
        await asyncio.sleep(seconds)
        sent = participant.marker_log.sent_count
        rtts = probe.latencies_ms(tag=_TAG)
        return EchoDemoResult(
            identity=participant.identity,
            room=grant["room"],
            echo_from=probe.sender,
            join_s=participant.join_time_s or 0.0,
            markers_sent=sent,
            markers_echoed=len(rtts),
            rtt_p50_ms=percentile(rtts, 50),
            rtt_p95_ms=percentile(rtts, 95),
            echo_level_dbfs=probe.rms_dbfs,
        )
