"""The green-room bot against the real server: echo modes, preview, meter, report, RPC."""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from livekit import rtc

from talkplatform_agents.lk import greenroom as proto
from talkplatform_agents.lk.naming import ECHO_AGENT_NAME
from talkplatform_agents.synthetic import (
    ParticipantConfig,
    PatternGenerator,
    SyntheticParticipant,
    ToneConfig,
)
from talkplatform_agents.synthetic.client import pump_frames
from talkplatform_agents.tasks import TaskSet

from .conftest import bot_in, post_json, until

pytestmark = pytest.mark.integration


@asynccontextmanager
async def green_room(
    api: httpx.AsyncClient, auth: Callable[..., dict[str, str]], user: str, **config: Any
) -> AsyncIterator[tuple[SyntheticParticipant, str]]:
    """A user in their green room, with the bot's identity once it has joined."""
    # A fresh identity per test: a green room is deleted shortly after its user leaves.
    grant = await post_json(api, "/api/v1/greenroom/token", auth(f"{user}-{uuid.uuid4().hex[:6]}"))
    participant = SyntheticParticipant(
        ParticipantConfig(url=grant["wsUrl"], token=grant["token"], **config)
    )
    async with participant:
        # Active comes after the echo track, whereupon the bot answers RPCs (the protocol).
        yield participant, await bot_in(participant.room, ECHO_AGENT_NAME, timeout_s=45)


async def _report(participant: SyntheticParticipant, bot: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(await participant.rpc(bot, proto.RPC_GET_REPORT, "{}"))
    return result


async def _pushed_report(
    user: SyntheticParticipant, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = 30
) -> dict[str, Any]:
    """The first report the bot pushes (every 2 s) that is ``wanted``."""
    async with asyncio.timeout(timeout_s):
        while True:
            report: dict[str, Any] = json.loads((await user.next_data(proto.TOPIC_REPORT)).payload)
            if wanted(report):
                return report


def _bot_video(user: SyntheticParticipant, bot: str) -> list[rtc.RemoteTrackPublication]:
    participant = user.room.remote_participants.get(bot)
    if participant is None:
        return []
    return [
        p for p in participant.track_publications.values() if p.kind == rtc.TrackKind.KIND_VIDEO
    ]


async def test_live_echo_and_a_preview_only_on_request(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    async with green_room(api, user_auth, "gina", tone=ToneConfig(tag=4)) as (user, bot):
        async with asyncio.timeout(30):
            probe = await user.wait_for_audio_marker(sender=bot, tag=4)
        # The camera is checked, yet nothing comes back until the user asks for it.
        report = await _pushed_report(user, lambda r: r["camera"]["status"] == "ok")
        assert report["preview"] is False and report["camera"]["analysed_fps"] > 0, report
        assert _bot_video(user, bot) == []

        reply = json.loads(await user.rpc(bot, proto.RPC_SET_PREVIEW, '{"enabled": true}'))
        assert (reply["preview"], reply["blur"]) == (True, False)
        [preview] = await until(
            lambda: [p for p in user.video_probes.values() if p.sender == bot and p.decoded > 10],
            timeout_s=30,
        )
        assert probe.latencies_ms(tag=4)
        # Our own barcode, back through the bot: the preview is our camera, unaltered.
        assert (preview.width, preview.height) == (320, 180)
        assert preview.decoded >= preview.frames * 0.8
        assert all(0 <= latency < 2000 for latency in preview.latencies)

        off = json.loads(await user.rpc(bot, proto.RPC_SET_PREVIEW, '{"enabled": false}'))
        assert off["preview"] is False
        await until(lambda: _bot_video(user, bot) == [], timeout_s=20)  # unpublished
        echoed = len(probe.latencies_ms(tag=4))
        await until(lambda: len(probe.latencies_ms(tag=4)) > echoed + 2, timeout_s=20)


async def test_playback_mode_records_then_plays_back(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    config = {"tone": ToneConfig(tag=9), "publish_video": False}
    async with green_room(api, user_auth, "hugo", **config) as (user, bot):
        reply = json.loads(
            await user.rpc(bot, proto.RPC_SET_AUDIO_MODE, '{"mode": "playback", "seconds": 2}')
        )
        assert reply == {
            "mode": "playback",
            "phase": "recording",
            "seconds": 2.0,
            "preview": False,
            "blur": False,
        }
        phases = []
        async with asyncio.timeout(20):
            while "playing" not in phases:
                state = await user.next_data(proto.TOPIC_STATE)
                phases.append(json.loads(state.payload)["phase"])
            probe = await user.wait_for_audio_marker(sender=bot, tag=9)
        assert phases[-2:] == ["recording", "playing"] or phases == ["playing"]

        def played_back() -> list[float]:
            # Markers echoed live before the switch may still be in flight: skip them.
            return [
                m.latency_ms
                for m in probe.markers
                if m.received_at > state.received_at and m.latency_ms is not None
            ]

        latencies = await until(lambda: played_back() if len(played_back()) >= 2 else None, 20)
        # Played back after the 2 s recording: each marker returns about 2 s late.
        assert all(2000 <= rtt < 5000 for rtt in latencies), latencies

        await user.rpc(bot, proto.RPC_SET_AUDIO_MODE, '{"mode": "live"}')
        await until(lambda: probe.latencies_ms(tag=9)[-1] < 1000, timeout_s=20)  # live again


async def test_level_meter_tracks_known_steps(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    config = {"tone": ToneConfig(tag=1, amplitude=0.5), "publish_video": False}
    async with green_room(api, user_auth, "ivan", **config) as (user, _bot):
        readings: dict[float, float] = {}
        previous: tuple[float, float] | None = None  # the last step and the level it read
        for step_db in (0.0, -10.0, -20.0, -6.0):
            user.audio_gain = 10 ** (step_db / 20)
            async with asyncio.timeout(30):
                readings[step_db] = await _settled_level(user, previous, step_db)
            previous = (step_db, readings[step_db])
        base = readings[0.0]
        # The tone (with its markers) is about -9 dBFS RMS at full gain.
        assert -11 < base < -7, readings
        for step_db, level in readings.items():
            assert level - base == pytest.approx(step_db, abs=1.0), readings


async def _settled_level(
    user: SyntheticParticipant, previous: tuple[float, float] | None, step_db: float
) -> float:
    """The meter's level after a gain step: readings still at the previous level (queued,
    or audio in flight) are skipped until one has moved by half the step; then the level
    settles (codec, jitter buffer, a busy machine), so read until 8 readings in a row agree
    within 1 dB, and take their median."""
    levels: list[float] = []
    left = previous is None
    while len(levels) < 8 or max(levels[-8:]) - min(levels[-8:]) > 1.0:
        message = json.loads((await user.next_data(proto.TOPIC_LEVEL)).payload)
        level = message["rms_dbfs"]
        if level is None:
            continue
        if previous is not None and not left:
            before_db, before_level = previous
            left = abs(level - before_level) > abs(step_db - before_db) / 2
        if left:
            levels.append(level)
    return statistics.median(levels[-8:])


async def test_silent_microphone_and_black_camera_are_reported(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    async with green_room(api, user_auth, "jane", black_video=True) as (user, bot):
        user.audio_gain = 0.0
        # Until a full analysis window holds only silence and black frames.
        async with asyncio.timeout(30):
            while True:
                pushed = json.loads((await user.next_data(proto.TOPIC_REPORT)).payload)
                if (pushed["microphone"]["status"], pushed["camera"]["status"]) == (
                    "silent",
                    "black",
                ):
                    break
        report = await _report(user, bot)
        assert report["microphone"]["status"] == "silent", report
        assert report["camera"]["status"] == "black", report
        assert report["verdict"] == "poor"
        assert "microphone: silent" in report["reasons"]
        assert "camera: black" in report["reasons"]


async def test_healthy_devices_and_network_report(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    async with green_room(api, user_auth, "kim") as (user, bot):
        async with asyncio.timeout(20):
            pushed = json.loads((await user.next_data(proto.TOPIC_REPORT)).payload)
            pushed = json.loads((await user.next_data(proto.TOPIC_REPORT)).payload)
        report = await _report(user, bot)
        for body in (pushed, report):
            assert body["microphone"]["status"] == "ok", body
            assert body["camera"]["status"] == "ok", body
            assert (body["camera"]["width"], body["camera"]["height"]) == (320, 180)
            # A rate, not a speed check: on a busy CI machine the first reports have read
            # 3-7 fps of this 15 fps camera (alone: 14-15). The unit tests pin the counting.
            assert 0 < body["camera"]["fps"] <= 20
            # The check reads its own few thumbnails a second, whatever the camera's rate.
            assert 0 < body["camera"]["analysed_fps"] <= 3, body
            assert body["preview"] is False  # nobody asked for it
            network = body["network"]
            assert network["rtt_ms"] is not None and network["rtt_ms"] > 0
            assert network["loss_pct"] is not None and network["loss_pct"] < 5
            assert network["bitrate_kbps"] is not None and network["bitrate_kbps"] > 10
            assert network["jitter_ms"] is not None
            assert body["verdict"] in ("good", "fair"), body
            # min/avg/max since the bot joined: the second report has a full sample
            summary = body["network_summary"]
            for figure in ("rtt_ms", "jitter_ms", "loss_pct", "bitrate_kbps"):
                spread = summary[figure]
                assert spread["samples"] >= 1, summary
                assert spread["min"] <= spread["avg"] <= spread["max"], summary


@pytest.mark.parametrize(
    ("method", "payload", "code"),
    [
        (proto.RPC_SET_AUDIO_MODE, "{not json", proto.INVALID_PAYLOAD),
        (proto.RPC_SET_AUDIO_MODE, '{"mode": "karaoke"}', proto.INVALID_PAYLOAD),
        (proto.RPC_SET_AUDIO_MODE, '{"mode": "playback", "seconds": 600}', proto.INVALID_PAYLOAD),
        (proto.RPC_SET_AUDIO_MODE, '{"mode": "live", "extra": 1}', proto.INVALID_PAYLOAD),
        (proto.RPC_SET_BLUR, '{"enabled": "maybe"}', proto.INVALID_PAYLOAD),
        (proto.RPC_SET_BLUR, "\udcff", None),
        (proto.RPC_GET_REPORT, "[]", proto.INVALID_PAYLOAD),
        ("greenroom.no_such_method", "{}", rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD),
    ],
)
async def test_malformed_rpcs_get_errors_and_the_bot_keeps_running(
    api: httpx.AsyncClient,
    user_auth: Callable[..., dict[str, str]],
    method: str,
    payload: str,
    code: int | None,
) -> None:
    async with green_room(api, user_auth, "leo", publish_video=False) as (user, bot):
        with pytest.raises((rtc.RpcError, UnicodeEncodeError)) as caught:
            await user.rpc(bot, method, payload)
        if code is not None:
            assert isinstance(caught.value, rtc.RpcError)
            assert caught.value.code == code, caught.value.message
        assert (await _report(user, bot))["audio_mode"] == "live"  # still answering


async def test_blur_toggles_over_rpc_and_the_preview_continues(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    async with green_room(api, user_auth, "mia") as (user, bot):
        reply = json.loads(await user.rpc(bot, proto.RPC_SET_BLUR, '{"enabled": true}'))
        assert (reply["blur"], reply["preview"]) == (True, True)  # blur shows the preview
        [preview] = await until(
            lambda: [p for p in user.video_probes.values() if p.sender == bot], timeout_s=20
        )
        before = preview.frames
        await until(lambda: preview.frames >= before + 10, timeout_s=20)
        # Blurring, the bot still answers at once (its image work is off its event loop).
        assert (await _report(user, bot))["blur"] is True
        off = json.loads(await user.rpc(bot, proto.RPC_SET_BLUR, '{"enabled": false}'))
        assert (off["blur"], off["preview"]) == (False, True)
        # Unblurred again: our own frames come back, barcodes and all.
        decoded = preview.decoded
        await until(lambda: preview.decoded >= decoded + 10, timeout_s=20)


async def test_the_check_and_the_preview_take_the_smallest_simulcast_layer(
    api: httpx.AsyncClient, user_auth: Callable[..., dict[str, str]]
) -> None:
    async with green_room(api, user_auth, "nina", publish_video=False) as (user, bot):
        # A 960x540 camera in simulcast: three layers, the smallest 320x180. (The SDK sends
        # a 640x360 camera's two layers both at 640x360: no use here.)
        source = rtc.VideoSource(960, 540)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=True,
            video_encoding=rtc.VideoEncoding(max_bitrate=800_000, max_framerate=15),
        )
        camera = TaskSet("nina-camera")
        try:
            camera.spawn(pump_frames(source, PatternGenerator(960, 540).frame, 15), "camera")
            publication = await user.room.local_participant.publish_track(track, options)
            assert publication.simulcasted
            report = await _pushed_report(
                user, lambda r: (r["camera"]["width"], r["camera"]["height"]) == (320, 180)
            )
            assert report["camera"]["status"] == "ok", report
            await user.rpc(bot, proto.RPC_SET_PREVIEW, '{"enabled": true}')
            [preview] = await until(
                lambda: [p for p in user.video_probes.values() if p.decoded > 5], timeout_s=30
            )
            assert preview.sender == bot
            assert (preview.width, preview.height) == (320, 180)  # our barcode, scaled down
        finally:
            await camera.aclose()
