"""Two synthetic participants through the real SFU: media markers and data both ways."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.synthetic import (
    MarkerLog,
    ParticipantConfig,
    SyntheticParticipant,
    ToneConfig,
)
from tests.integration.conftest import until

pytestmark = pytest.mark.integration


def _token(settings: Settings, identity: str, room: str) -> str:
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    return mint_token(
        creds,
        identity=identity,
        name=identity,
        room=room,
        role=Role.PARTICIPANT,
        ttl=dt.timedelta(minutes=5),
    ).jwt


async def test_two_participants_see_and_hear_each_other(live_settings: Settings) -> None:
    room = "sfu-pair"
    log = MarkerLog()  # one process, one clock: audio latency is measurable
    configs = [
        ParticipantConfig(
            url=live_settings.livekit_url,
            token=_token(live_settings, name, room),
            tone=ToneConfig(tag=tag),
            width=320,
            height=180,
            fps=15,
        )
        for name, tag in (("ann", 1), ("ben", 2))
    ]
    async with (
        SyntheticParticipant(configs[0], log) as ann,
        SyntheticParticipant(configs[1], log) as ben,
    ):
        async with asyncio.timeout(30):
            heard_by_ann = await ann.wait_for_audio_marker(sender="ben", tag=2)
            heard_by_ben = await ben.wait_for_audio_marker(sender="ann", tag=1)
        pairs = ((ann, "ben"), (ben, "ann"))

        def enough() -> bool:
            heard = all(len(p.latencies_ms()) >= 4 for p in (heard_by_ann, heard_by_ben))
            seen = [p for viewer, sender in pairs for p in viewer.video_probes.values()]
            return heard and len(seen) == 2 and all(p.frames > 15 for p in seen)

        await until(enough, 30)

        for probe in (heard_by_ann, heard_by_ben):
            assert all(0 < value < 2000 for value in probe.latencies_ms())

        for viewer, sender in pairs:
            [video] = [p for p in viewer.video_probes.values() if p.sender == sender]
            assert (video.width, video.height) == (320, 180)
            assert video.decoded >= video.frames * 0.8  # the barcode survives VP8
            assert all(0 <= value < 2000 for value in video.latencies)

        await ann.send_data(b'{"hello": "ben"}', topic="test", to=["ben"])
        await ben.send_data(b"broadcast", topic="test")
        async with asyncio.timeout(10):
            to_ben = await ben.data.get()
            to_ann = await ann.data.get()
        assert (to_ben.sender, to_ben.topic, to_ben.payload) == ("ann", "test", b'{"hello": "ben"}')
        assert (to_ann.sender, to_ann.payload) == ("ben", b"broadcast")


async def test_join_with_a_bad_token_is_a_clear_error(live_settings: Settings) -> None:
    from talkplatform_agents.synthetic import SyntheticError

    config = ParticipantConfig(
        url=live_settings.livekit_url, token="not-a-jwt", connect_timeout_s=5
    )
    participant = SyntheticParticipant(config)
    with pytest.raises(SyntheticError, match="could not join"):
        await participant.start()
    await participant.stop()  # idempotent after a failed start
