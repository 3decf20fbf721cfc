"""The echo round trip through the green-room bot, live and in playback mode, beside the SFU's
own forwarding latency measured in the same run.

    .venv/bin/python bench/echo_rtt.py [--markers 200]

Inside a fresh network namespace: the real livekit-server, token service and echo bot.
Participant A publishes a marked tone and listens for its echo (A -> SFU -> bot -> SFU -> A).
Participant B, in the same room, subscribes to A's tone directly (A -> SFU -> B), publishing
nothing, so the bot never echoes it. All share one clock, so both are measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import (
    ECHO_AGENT_NAME,
    Credentials,
    Role,
    greenroom_room_name,
    mint_token,
)
from talkplatform_agents.lk import greenroom as proto
from talkplatform_agents.synthetic import (
    AudioProbe,
    MarkerLog,
    ParticipantConfig,
    SyntheticParticipant,
    ToneConfig,
    percentile,
)

ROOT = Path(__file__).resolve().parents[1]
TAG = 6
INTERVAL_S = 0.25
PLAYBACK_S = 2.0


def _row(path: str, values: list[float]) -> dict[str, object]:
    return {
        "path": path,
        "markers": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "min_ms": min(values, default=float("nan")),
        "max_ms": max(values, default=float("nan")),
    }


async def _playback(
    user: SyntheticParticipant, bot: str, probe: AudioProbe, markers: int
) -> list[float]:
    """Switch the bot to playback; the round trips of markers played back."""
    await user.rpc(
        bot, proto.RPC_SET_AUDIO_MODE, f'{{"mode": "playback", "seconds": {PLAYBACK_S}}}'
    )
    switched = time.time() + 0.5  # markers echoed live before the switch are still in flight
    async with asyncio.timeout(markers * INTERVAL_S * 4 + 30):
        while True:
            probe.notify.clear()
            played = [m for m in probe.markers if m.received_at > switched and m.tag == TAG]
            if len(played) >= markers:
                break
            await probe.notify.wait()
    return [m.latency_ms for m in played if m.latency_ms is not None]


async def _measure(settings: Settings, markers: int, playback_markers: int) -> None:
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    room = greenroom_room_name("bench-a")

    def token(identity: str, agents: tuple[str, ...]) -> str:
        return mint_token(
            creds, identity=identity, name=identity, room=room, role=Role.PARTICIPANT,
            ttl=dt.timedelta(minutes=30), dispatch_agents=agents,
        ).jwt  # fmt: skip

    log = MarkerLog()
    a = SyntheticParticipant(
        ParticipantConfig(
            url=settings.livekit_url, token=token("bench-a", (ECHO_AGENT_NAME,)),
            publish_video=False, tone=ToneConfig(tag=TAG, interval_s=INTERVAL_S),
        ),
        log,
    )  # fmt: skip
    b = SyntheticParticipant(
        ParticipantConfig(
            url=settings.livekit_url, token=token("bench-b", ()),
            publish_audio=False, publish_video=False,
        ),
        log,
    )  # fmt: skip
    async with a, b:
        async with asyncio.timeout(60):
            echo = await a.wait_for_audio_marker(tag=TAG)
            direct = await b.wait_for_audio_marker(sender="bench-a", tag=TAG)
        async with asyncio.timeout(markers * INTERVAL_S * 2 + 60):
            while True:
                echo.notify.clear()
                if len(echo.latencies_ms(TAG)) >= markers:
                    break
                await echo.notify.wait()
        echo_ms = echo.latencies_ms(TAG)
        direct_ms = direct.latencies_ms(TAG)
        playback_ms = await _playback(a, echo.sender, echo, playback_markers)
    rows = [
        _row("echo A->SFU->bot->SFU->A", echo_ms),
        _row("direct A->SFU->B", direct_ms),
        _row(f"playback ({PLAYBACK_S:.0f} s recorded)", playback_ms),
    ]
    echo_p50, direct_p50 = percentile(echo_ms, 50), percentile(direct_ms, 50)
    echo_p95, direct_p95 = percentile(echo_ms, 95), percentile(direct_ms, 95)
    assert echo_p50 and direct_p50 and echo_p95 and direct_p95
    report(
        "echo_rtt",
        rows,
        {
            "markers_sent": log.sent_count,
            "echo_p50_over_direct": echo_p50 / direct_p50,
            "echo_p95_over_direct": echo_p95 / direct_p95,
            "playback_p50_minus_recording_over_direct": (
                (percentile(playback_ms, 50) or 0) - PLAYBACK_S * 1000
            )
            / direct_p50,
            "resolution_ms": 10,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markers", type=int, default=200)
    parser.add_argument("--playback-markers", type=int, default=24)
    args = parser.parse_args()
    run_in_local_stack(
        lambda stack: _measure(stack.child_settings, args.markers, args.playback_markers)
    )


if __name__ == "__main__":
    main()
