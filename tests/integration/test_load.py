"""QA load injection against the real server in the namespace: simulcast layer switches seen
at the receiver, latency markers, a readable screen share, and ``talkplatform-agents load``
end to end (complete report, --fail-if exit codes, unreachable server, Ctrl-C).

Sizes are small (2 shared cores). The layer-switch test publishes 960x540 at 10 fps, the
smallest source for which the SDK's ladder still makes three layers (320, 640, 960 wide),
instead of the CLI's 720p default.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.synthetic.load.frames import FrameProbe
from talkplatform_agents.synthetic.load.members import LoadPublisher, LoadSubscriber, MemberPlan
from talkplatform_agents.synthetic.load.report import LayerSwitch
from talkplatform_agents.synthetic.load.spec import Codec, MediaOptions
from talkplatform_agents.synthetic.probes import MarkerLog, percentile
from talkplatform_agents.synthetic.screen import READABLE_PSNR_DB
from tests.integration.conftest import APP_SECRET, load_argv, load_env, run_load_cli, until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _creds(settings: Settings) -> Credentials:
    return Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())


def _plan(settings: Settings, room: str, identity: str, role: str, **kw: Any) -> MemberPlan:
    token = mint_token(
        _creds(settings),
        identity=identity,
        name=identity,
        room=room,
        role=Role.PARTICIPANT,
        ttl=dt.timedelta(minutes=10),
    )
    return MemberPlan(identity, room, role, token.jwt, 0.0, **kw)


@pytest.fixture
async def pair(
    live_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[LoadPublisher, LoadSubscriber]]:
    media: MediaOptions = request.param
    room = f"load-{uuid.uuid4().hex[:8]}"
    pub_id, sub_id = f"{room}-pub0", f"{room}-sub0"
    log = MarkerLog()
    url = live_settings.livekit_url
    pub = LoadPublisher(
        url,
        _plan(live_settings, room, pub_id, "publisher", tag=1, screen=media.screen_share),
        media,
        10,
        log,
    )
    sub = LoadSubscriber(
        url, _plan(live_settings, room, sub_id, "subscriber", speaker=pub_id), media, 10, log
    )
    await pub.start()
    try:
        await sub.start()
        try:
            yield pub, sub
        finally:
            await sub.stop()
    finally:
        await pub.stop()


# 15 fps, not 10. livekit-server (v1.13.5, pkg/sfu/streamtracker/
# streamtracker_packet.go) counts a simulcast layer above the lowest as stopped after any
# 500 ms that brings it fewer than 5 packets, and live again only after 20 such periods in a
# row. OpenH264 packs a frame of the scrolling pattern into about one packet (VP8: two), so
# at 10 fps one late frame on a busy machine took MEDIUM and HIGH away for 10 s: up-switches
# arrived and fell back, or never came. At 15 fps the layers carry 7+ packets per 500 ms.
# VP8 at 10 fps sat at the threshold (5 at the worst), so it gets the same margin.
_SWITCH = MediaOptions(
    width=960, height=540, fps=15, max_bitrate=1_000_000, audio=False, switch_timeout_s=20
)
_SWITCH_H264 = replace(_SWITCH, codec=Codec.H264)


async def _switches(sub: LoadSubscriber) -> list[LayerSwitch]:
    """The subscriber's layer switches, once all three are done or one has failed."""

    def done() -> list[LayerSwitch] | None:
        result = sub.result
        return result.switches if len(result.switches) == 3 or result.errors else None

    try:
        return await until(done, 100)
    except TimeoutError:
        seen = [(p.sender, p.width, p.height, p.frames) for p in sub.video.values()]
        pytest.fail(f"switches {sub.result.switches}, errors {sub.result.errors}, video {seen}")


# A busy machine can hold the top layer back for a while (bandwidth estimation, encoder
# CPU): each switch gets 20 s.
@pytest.mark.parametrize("pair", [_SWITCH], indirect=True, ids=["vp8"])
async def test_simulcast_layer_switch_seen_at_receiver(
    pair: tuple[LoadPublisher, LoadSubscriber],
) -> None:
    _, sub = pair
    switches = await _switches(sub)
    assert [s.quality for s in switches] == ["low", "medium", "high"], sub.result.errors
    assert all(s.ok for s in switches), sub.result.errors
    low, medium, high = (s.width for s in switches)
    assert low < medium < high == 960, (low, medium, high)
    assert all(s.ms is not None and s.ms > 0 for s in switches)


@pytest.mark.parametrize("pair", [_SWITCH_H264], indirect=True, ids=["h264"])
async def test_h264_simulcast_layer_switches_seen_at_receiver(
    pair: tuple[LoadPublisher, LoadSubscriber],
) -> None:
    _, sub = pair
    switches = await _switches(sub)
    # Down first: it needs nothing of the upper layers, so it must always hold.
    down = switches[0]
    assert (down.quality, down.ok) == ("low", True), sub.result.errors
    assert down.width < 960 and down.ms is not None and down.ms > 0, down
    # Then up, which needs the upper layers live at the SFU (see _SWITCH_H264).
    assert [s.quality for s in switches] == ["low", "medium", "high"], sub.result.errors
    assert all(s.ok for s in switches), sub.result.errors
    low, medium, high = (s.width for s in switches)
    assert low < medium < high == 960, (low, medium, high)
    assert all(s.ms is not None and s.ms > 0 for s in switches)


@pytest.mark.parametrize(
    "pair",
    [
        MediaOptions(
            simulcast=False,
            width=320,
            height=180,
            fps=15,
            max_bitrate=300_000,
            screen_share=True,
            screen_width=1280,
            screen_height=720,
            screen_fps=5,
            switch_layers=False,
            audio_markers=True,
        )
    ],
    indirect=True,
)
async def test_latency_markers_decode_and_screen_share_is_readable(
    pair: tuple[LoadPublisher, LoadSubscriber],
) -> None:
    pub, sub = pair
    camera = await until(
        lambda: next((p for p in sub.video.values() if not p.screen and p.decoded >= 30), None), 30
    )

    # Readable once the encoder has ramped up to the share's bitrate.
    def readable() -> FrameProbe | None:
        shares = (p for p in sub.video.values() if p.screen)
        return next((p for p in shares if (p.best_psnr_db or 0) >= READABLE_PSNR_DB), None)

    try:
        screen = await until(readable, 40)
    except TimeoutError:
        shares = [(p.width, p.height, p.best_psnr_db) for p in sub.video.values() if p.screen]
        pytest.fail(f"screen share never readable: {shares}")
    # Every decoded frame passed the barcode's check word; its capture time gives latency.
    assert camera.sender == pub.plan.identity
    assert camera.width == 320 and camera.height == 180
    latencies = sorted(camera.latencies)
    median = percentile(latencies, 50)
    assert median is not None and 0 <= median < 1000, latencies[:10]
    assert camera.decoded >= 0.8 * camera.frames
    # The screen share arrives at full size with its small text intact.
    assert (screen.width, screen.height) == (1280, 720)
    assert screen.best_psnr_db is not None and screen.best_psnr_db >= READABLE_PSNR_DB
    # The tone's markers decode too.
    await until(lambda: sum(len(a.markers) for a in sub.audio.values()) >= 2, 20)
    # Each received track has its own figures, under the publisher's track sids.
    await sub.stop()
    await pub.stop()
    tracks = {t.source: t for t in sub.result.tracks}
    assert sorted(tracks) == ["camera", "microphone", "screen_share"], sub.result.tracks
    published = {t.track_sid: t.source for t in pub.result.tracks}
    assert {t.track_sid: t.source for t in tracks.values()} == published
    assert sub.result.tracks_expected == 3
    assert all(t.sender == pub.plan.identity and t.packets_received > 0 for t in tracks.values())
    cam = tracks["camera"]
    assert (cam.kind, cam.width, cam.height) == ("video", 320, 180) and cam.frames > 0
    assert cam.bitrate_kbps is not None and cam.bitrate_kbps > 0 and cam.jitter_ms is not None
    assert (tracks["screen_share"].width, tracks["microphone"].kind) == (1280, "audio")


async def test_audio_only_speakers_take_turns_and_the_sfu_follows(
    live_settings: Settings,
) -> None:
    """Two audio-only publishers take 1.5 s turns being loud; the subscriber's first frame is
    an audio one, and the SFU's active-speaker list follows the turns."""
    media = MediaOptions(video=False, speaker_turn_s=1.5)
    room = f"load-{uuid.uuid4().hex[:8]}"
    url, log = live_settings.livekit_url, MarkerLog()
    ids = [f"{room}-pub{k}" for k in range(2)]
    pubs = [
        LoadPublisher(
            url,
            _plan(live_settings, room, identity, "publisher", tag=k + 1, slot=k, tiles=2),
            media,
            10,
            log,
        )
        for k, identity in enumerate(ids)
    ]
    sub = LoadSubscriber(
        url,
        _plan(live_settings, room, f"{room}-sub0", "subscriber", speaker=ids[0], tiles=2),
        media,
        10,
        log,
    )
    try:
        for pub in pubs:
            await pub.start()
        await sub.start()
        follow = sub.follow
        assert follow is not None
        try:
            await until(lambda: len(follow.follow_ms) >= 2 or None, 60)
        except TimeoutError:
            pytest.fail(f"turns followed {follow.follow_ms}, missed {follow.missed}")
    finally:
        await sub.stop()
        for pub in pubs:
            await pub.stop()
    result = sub.result
    assert result.errors == [] and result.first_frame_ms is not None
    assert (result.video_tracks, result.audio_tracks, result.tracks_expected) == (0, 2, 2)
    assert sorted(t.sender for t in result.tracks) == ids
    assert all(t.kind == "audio" and t.source == "microphone" for t in result.tracks)
    assert all(t.packets_received > 0 for t in result.tracks), result.tracks
    assert result.speaker_turns >= 2 and len(result.speaker_follow_ms) >= 2
    assert all(p.result.tracks_published == 1 and p.result.frames_sent == 0 for p in pubs)


# -- the CLI ------------------------------------------------------------------------------


_SMALL = ["--size", "320x180", "--fps", "10", "--max-bitrate", "200000", "--no-simulcast"]


def test_small_load_run_writes_complete_report(live_settings: Settings, tmp_path: Path) -> None:
    report = tmp_path / "out.json"
    argv = load_argv(
        live_settings, report, "--rooms", "2", "--publishers", "2", "--subscribers", "2"
    )
    argv += [*_SMALL, "--duration", "6s", "--ramp", "0", "--processes", "2"]
    argv += ["--decode", "sample", "--fail-if", "errors>0,loss>5%"]
    done = run_load_cli(argv, tmp_path, 240)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(report.read_text())
    assert body["complete"] is True and body["passed"] is True and body["errors"] == []
    assert len(body["participants"]) == 8 and len(body["rooms"]) == 2
    total = body["total"]
    assert total["joined"] == 8 and total["errors"] == 0
    for key in (
        "join_p50_ms",
        "join_p95_ms",
        "first_frame_p50_ms",
        "first_frame_p95_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "rtp_latency_p50_ms",
        "rtp_latency_p95_ms",
        "loss_pct",
        "jitter_ms",
        "bitrate_kbps",
        "fps",
    ):
        assert total[key] is not None, key
    subs = [p for p in body["participants"] if p["role"] == "subscriber"]
    for sub in subs:
        assert sub["video_tracks"] == 2 and sub["audio_tracks"] == 2, sub
        assert sub["first_frame_ms"] is not None, sub
    # --decode sample: the first subscriber of each room decodes; the others are light.
    decoding = [s for s in subs if s["client"] == "sdk"]
    assert sorted(s["identity"].rsplit("-", 1)[1] for s in decoding) == ["sub0", "sub0"]
    for sub in decoding:
        assert sub["markers"] > 0 and sub["tracks_expected"] == 4, sub
        got = {(t["sender"], t["source"]) for t in sub["tracks"] if t["packets_received"] > 0}
        room = sub["room"]
        assert got == {(f"{room}-pub{n}", s) for n in (0, 1) for s in ("camera", "microphone")}
    # One row per published track: two rooms of two publishers, a camera and a mic each.
    rows = body["tracks"]
    assert len(rows) == 8 and all(r["expected"] == 2 and r["received"] >= 1 for r in rows), rows
    assert {r["kind"] for r in rows} == {"audio", "video"}
    assert "total" in done.stdout and "join p95" in done.stdout and "tracks" in done.stdout


def test_fail_if_sets_exit_code(live_settings: Settings, tmp_path: Path) -> None:
    report = tmp_path / "out.json"
    argv = load_argv(
        live_settings, report, "--rooms", "1", "--publishers", "1", "--subscribers", "1"
    )
    argv += [*_SMALL, "--no-audio", "--duration", "3s", "--ramp", "0", "--processes", "1"]
    done = run_load_cli([*argv, "--fail-if", "join_p95>0ms"], tmp_path, 180)
    assert done.returncode == 1, done.stdout + done.stderr
    body = json.loads(report.read_text())
    assert body["passed"] is False and body["thresholds"][0]["failed"] is True
    assert "FAIL" in done.stdout
    # A malformed condition is refused before anything joins.
    bad = run_load_cli([*argv, "--fail-if", "join_p95>2parsecs"], tmp_path, 60)
    assert bad.returncode == 2 and "join_p95" in bad.stderr


def test_unreachable_server_and_wrong_keys_fail_fast_with_a_report(
    live_settings: Settings, tmp_path: Path
) -> None:
    report = tmp_path / "out.json"
    unreachable = live_settings.model_copy(update={"livekit_url": "ws://10.77.0.1:9"})
    done = run_load_cli(load_argv(unreachable, report, *_SMALL, "--duration", "3s"), tmp_path, 60)
    assert done.returncode == 2, done.stdout + done.stderr
    body = json.loads(report.read_text())
    assert body["complete"] is False and "cannot reach" in body["errors"][0]
    wrong = load_argv(live_settings, report, *_SMALL, "--duration", "3s")
    wrong[wrong.index("--api-secret") + 1] = "x" * 40
    done = run_load_cli(wrong, tmp_path, 60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "rejected the API key" in json.loads(report.read_text())["errors"][0]


async def test_sigint_still_writes_the_report(live_settings: Settings, tmp_path: Path) -> None:
    report = tmp_path / "out.json"
    prefix = f"sigint{uuid.uuid4().hex[:4]}"
    argv = load_argv(
        live_settings, report, "--rooms", "1", "--publishers", "1", "--subscribers", "1"
    )
    argv += [*_SMALL, "--no-audio", "--duration", "120s", "--ramp", "0", "--processes", "1"]
    argv += ["--room-prefix", prefix]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=tmp_path, env=load_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    progress: list[str] = []
    try:
        # Without the live view the CLI prints a progress line whenever a count changes:
        # stop once both have joined and the subscriber has had its first frame.
        async with asyncio.timeout(90):
            assert proc.stderr is not None
            while not re.search(r"joined 2/2, .*first frames [1-9]", "".join(progress[-1:])):
                line = await proc.stderr.readline()
                assert line, f"the run ended before its first frame: {progress}"
                progress.append(line.decode())
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, "".join(progress) + (out + err).decode()
    body = json.loads(report.read_text())
    assert body["interrupted"] is True and body["complete"] is False
    assert len(body["participants"]) == 2
    assert all(p["joined"] for p in body["participants"]), body["participants"]
    sub = next(p for p in body["participants"] if p["role"] == "subscriber")
    assert sub["frames"] > 0 and sub["bitrate_kbps"] is not None


def test_tokens_from_the_token_service(live_settings: Settings, tmp_path: Path) -> None:
    """Each load room becomes a meeting of the platform; every participant gets its token as
    a frontend would (the run then also loads the service and the meeting bots)."""
    report = tmp_path / "out.json"
    argv = [
        sys.executable, "-m", "talkplatform_agents", "load", "--url", live_settings.livekit_url,
        "--token-service", live_settings.api_url, "--report", str(report), "--no-progress",
        "--rooms", "1", "--publishers", "1", "--subscribers", "1", *_SMALL, "--no-audio",
        "--duration", "3s", "--ramp", "0", "--processes", "1", "--fail-if", "errors>0",
    ]  # fmt: skip
    env = {**load_env(), "APP_JWT_SECRET": APP_SECRET}
    done = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(report.read_text())
    assert body["complete"] is True and body["total"]["joined"] == 2
    assert all(p["room"].startswith("meeting-") for p in body["participants"])

    unreachable = [*argv[:7], "http://10.77.0.1:1", *argv[8:]]
    down = subprocess.run(
        unreachable, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert down.returncode == 2, down.stdout + down.stderr
    assert "token service" in json.loads(report.read_text())["errors"][0]
