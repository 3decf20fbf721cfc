"""End to end: token from the service, the echo bot dispatched, the tone comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from livekit import api as lkapi

from talkplatform_agents.config import Settings
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant, ToneConfig
from talkplatform_agents.synthetic.probes import ReceivedMarker

from .conftest import post_json, until

pytestmark = pytest.mark.integration


async def test_participant_hears_its_own_tone_through_the_echo_bot(
    api: httpx.AsyncClient,
    user_auth: Callable[..., dict[str, str]],
    live_settings: Settings,
) -> None:
    grant = await post_json(api, "/api/v1/greenroom/token", user_auth("erin", "Erin"))
    assert grant["room"] == "greenroom-erin"
    config = ParticipantConfig(
        url=grant["wsUrl"], token=grant["token"], publish_video=False, tone=ToneConfig(tag=13)
    )
    async with SyntheticParticipant(config) as participant:
        assert participant.identity == "erin"
        async with asyncio.timeout(45):
            probe = await participant.wait_for_audio_marker(tag=13)
        bot = participant.room.remote_participants[probe.sender]
        assert bot.kind == lkapi.ParticipantInfo.Kind.AGENT  # the echo came from the bot

        def a_few_echoed() -> list[ReceivedMarker] | None:
            echoed = [m for m in probe.markers if m.tag == 13]
            return echoed if len(echoed) >= 4 else None

        echoed = await until(a_few_echoed, timeout_s=30)
        seqs = [m.seq for m in echoed]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        rtts = probe.latencies_ms(tag=13)
        assert len(rtts) == len(echoed)  # every echoed marker is one we sent
        assert all(rtt > 0 for rtt in rtts)
        # The echo carries the tone at the level it was sent (-15 dBFS RMS), within Opus.
        assert -21 < probe.rms_dbfs < -11
        assert {m.tag for m in probe.markers} == {13}  # nobody else's audio

    # The bot leaves once the user has gone, and deletes the green room: well before
    # livekit-server's own empty-room timeout (20 s after the last departure here).
    room_api = lkapi.LiveKitAPI(
        live_settings.livekit_http_url,
        live_settings.livekit_api_key,
        live_settings.livekit_api_secret.get_secret_value(),
    )
    try:

        async def room_exists() -> bool:
            reply = await room_api.room.list_rooms(lkapi.ListRoomsRequest(names=["greenroom-erin"]))
            return bool(reply.rooms)

        # Until the room is gone. A generous bound, yet below the server's own 20 s: the room
        # must not merely have timed out.
        async with asyncio.timeout(15):
            while await room_exists():  # noqa: ASYNC110 (server state: nothing to await)
                await asyncio.sleep(0.2)
    finally:
        await room_api.aclose()
