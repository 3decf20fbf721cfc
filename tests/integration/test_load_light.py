"""The light load clients against the real server in the namespace: pre-encoded simulcast
that a decoding subscriber and a light one can both switch, loss that the light subscriber
reports when packets are really dropped, simulated speakers that the SFU follows, and a CLI
run that reuses its cached clips.

Sizes are small (2 shared cores): three layers of a 960x540 source at 15 fps (the
smallest ladder with three layers), half-second clips.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import api as lkapi

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.synthetic.load.light import LightMedia, LightPublisher, LightSubscriber
from talkplatform_agents.synthetic.load.members import LoadSubscriber, MemberPlan
from talkplatform_agents.synthetic.load.report import LayerSwitch
from talkplatform_agents.synthetic.load.runner import light_media
from talkplatform_agents.synthetic.load.spec import Codec, LoadSpec, MediaOptions
from talkplatform_agents.synthetic.probes import MarkerLog
from tests.integration.conftest import load_argv, run_load_cli, until

pytestmark = pytest.mark.integration


def _plan(settings: Settings, room: str, identity: str, role: str, **kw: Any) -> MemberPlan:
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    token = mint_token(
        creds,
        identity=identity,
        name=identity,
        room=room,
        role=Role.PARTICIPANT,
        ttl=dt.timedelta(minutes=10),
    )
    return MemberPlan(identity, room, role, token.jwt, 0.0, **kw)


def _media(tmp: Path, **kw: Any) -> MediaOptions:
    base: dict[str, Any] = {
        "pre_encoded": True,
        "width": 960,
        "height": 540,
        "fps": 15,
        "switch_timeout_s": 20,
        "clip_cache": tmp / "clips",
    }
    return MediaOptions(**{**base, **kw})


def _prepared(media: MediaOptions, publishers: int = 1) -> LightMedia:
    prepared = light_media(LoadSpec(url="ws://unused", publishers=publishers, media=media))
    assert prepared is not None
    return prepared


async def _switches(result_switches: list[LayerSwitch], errors: list[str]) -> list[LayerSwitch]:
    def done() -> list[LayerSwitch] | None:
        return result_switches if len(result_switches) == 3 or errors else None

    try:
        return await until(done, 100)
    except TimeoutError:
        pytest.fail(f"switches {result_switches}, errors {errors}")


@contextlib.asynccontextmanager
async def _publishing(
    settings: Settings, room: str, media: MediaOptions, count: int = 1
) -> AsyncIterator[list[LightPublisher]]:
    prepared = _prepared(media, count)
    pubs = [
        LightPublisher(
            settings.livekit_url,
            _plan(settings, room, f"{room}-pub{k}", "publisher", tag=k + 1, slot=k, tiles=count),
            media,
            10,
            MarkerLog(),
            prepared,
            count,
        )
        for k in range(count)
    ]
    try:
        for pub in pubs:
            await pub.start()
        yield pubs
    finally:
        for pub in pubs:
            await pub.stop()


@pytest.mark.parametrize("codec", [Codec.VP8, Codec.H264])
async def test_pre_encoded_simulcast_switches_layers_at_both_kinds_of_subscriber(
    live_settings: Settings, tmp_path: Path, codec: Codec
) -> None:
    """Three pre-encoded layers sent by RID: a decoding subscriber (its sizes from decoded
    frames: the clip is valid video) and a light one (sizes from key frame headers) each
    ask LOW, MEDIUM, HIGH and see the picture change size."""
    media = _media(tmp_path, codec=codec, audio=False)
    room = f"light-{uuid.uuid4().hex[:8]}"
    speaker = f"{room}-pub0"
    url = live_settings.livekit_url
    async with _publishing(live_settings, room, media) as (pub,):
        decoding = LoadSubscriber(
            url,
            _plan(live_settings, room, f"{room}-sub0", "subscriber", speaker=speaker),
            media,
            10,
            MarkerLog(),
        )
        light = LightSubscriber(
            url,
            _plan(live_settings, room, f"{room}-sub1", "subscriber", speaker=speaker),
            media,
            10,
        )
        try:
            await decoding.start()
            await light.start()
            for sub in (decoding, light):
                switches = await _switches(sub.result.switches, sub.result.errors)
                assert [s.quality for s in switches] == ["low", "medium", "high"]
                assert all(s.ok for s in switches), sub.result.errors
                low, medium, high = (s.width for s in switches)
                assert low < medium < high == 960, (sub.result.client, low, medium, high)
        finally:
            await light.stop()
            await decoding.stop()
    assert pub.result.errors == [] and pub.result.frames_sent > 0
    assert pub.result.client == "light" and pub.result.tracks_published == 1
    for sub in (decoding, light):
        assert sub.result.errors == [], sub.result.errors
        (camera,) = sub.result.tracks
        assert camera.track_sid == pub.result.tracks[0].track_sid
        assert camera.packets_received > 0 and camera.frames > 0
    # A decoding subscriber reads the frames' barcodes: the clip decodes as the pattern.
    assert decoding.result.markers > 0


@contextlib.contextmanager
def _bottleneck(kbit_s: int) -> Iterator[Callable[[], int]]:
    """A token bucket of ``kbit_s`` on this namespace's loopback, whose queue overflows:
    packets really dropped by the kernel, counted by it (the function yielded reads the
    count). Client and server share the namespace's one address, so their media crosses the
    loopback (a local address never goes out through the veth): that is where it is
    squeezed. This kernel has no netem, prio or gact (``tc`` says "Specified qdisc kind is
    unknown"): tbf is the dropper it has."""

    def tc(*args: str) -> str:
        return subprocess.run(["tc", *args], check=True, capture_output=True, text=True).stdout

    def dropped() -> int:
        match = re.search(r"dropped (\d+)", tc("-s", "qdisc", "show", "dev", "lo"))
        return int(match.group(1)) if match else 0

    # Only ever this test's own namespace, never the machine's loopback.
    here = subprocess.run(
        ["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert here, "not inside one of the project's network namespaces"
    tc("qdisc", "add", "dev", "lo", "root", "tbf", "rate", f"{kbit_s}kbit", "burst", "4kb",
       "latency", "30ms")  # fmt: skip
    try:
        yield dropped
    finally:
        tc("qdisc", "del", "dev", "lo", "root")


async def test_light_subscriber_reports_loss_when_packets_are_dropped(
    live_settings: Settings, tmp_path: Path
) -> None:
    media = _media(tmp_path, width=320, height=180, simulcast=False, max_bitrate=600_000)
    room = f"light-{uuid.uuid4().hex[:8]}"
    async with _publishing(live_settings, room, media):
        sub = LightSubscriber(
            live_settings.livekit_url,
            _plan(live_settings, room, f"{room}-sub0", "subscriber", speaker=f"{room}-pub0"),
            media,
            10,
        )
        await sub.start()
        try:

            def counts() -> tuple[int, int, int]:
                stats = [t.stats for t in sub.client.tracks.values()]
                octets = sum(s.octets for s in stats)
                return sum(s.packets for s in stats), sum(s.lost for s in stats), octets

            await until(lambda: counts()[0] >= 200 or None, 30)
            first = min(s.first_at or 0 for s in (t.stats for t in sub.client.tracks.values()))
            clean = counts()
            kbit_s = clean[2] * 8 / 1000 / max(time.time() - first, 1)
            # The media crosses the loopback twice (publisher to SFU, SFU to us): a bucket
            # of its own rate keeps about half of it.
            with _bottleneck(max(int(kbit_s), 64)) as dropped:
                await until(lambda: counts()[0] >= clean[0] + 300 or None, 60)
                lossy = counts()
                kernel_drops = dropped()
        finally:
            await sub.stop()
    received = lossy[0] - clean[0]
    lost = lossy[1] - clean[1]
    assert clean[1] <= 2, clean
    assert kernel_drops > 0
    # Never retransmitted: the light subscriber sends no NACKs and the light publisher
    # keeps no history. What the kernel dropped on either leg shows as loss here.
    assert lost > 0 and 0.03 < lost / (received + lost) < 0.97, (received, lost, kernel_drops)
    assert sub.result.packets_lost >= lost
    assert sub.result.tracks and sum(t.packets_lost for t in sub.result.tracks) >= lost


async def test_light_speakers_take_turns_and_the_sfu_follows(
    live_settings: Settings, tmp_path: Path
) -> None:
    """Pre-encoded Opus carries its audio level: two light publishers take 1.5 s turns
    being loud, and the SFU's speaker list, as a light subscriber reads it from signalling,
    follows them."""
    media = _media(tmp_path, video=False, speaker_turn_s=1.5)
    room = f"light-{uuid.uuid4().hex[:8]}"
    async with _publishing(live_settings, room, media, count=2):
        sub = LightSubscriber(
            live_settings.livekit_url,
            _plan(
                live_settings, room, f"{room}-sub0", "subscriber", speaker=f"{room}-pub0", tiles=2
            ),
            media,
            10,
        )
        await sub.start()
        try:
            follow = sub.follow
            assert follow is not None
            try:
                await until(lambda: len(follow.follow_ms) >= 2 or None, 60)
            except TimeoutError:
                pytest.fail(f"turns followed {follow.follow_ms}, missed {follow.missed}")
        finally:
            await sub.stop()
    result = sub.result
    assert result.errors == [] and result.first_frame_ms is not None
    assert (result.video_tracks, result.audio_tracks, result.tracks_expected) == (0, 2, 2)
    assert result.speaker_turns >= 2 and len(result.speaker_follow_ms) >= 2


def _load(settings: Settings, report: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    argv = load_argv(
        settings,
        report,
        *("--publishers", "2", "--subscribers", "3", "--duration", "4s", "--ramp", "0"),
        *("--pre-encoded", "--size", "960x540", "--fps", "15", "--decode", "sample"),
        *("--no-switch-layers", "--clip-cache", str(cache)),
        *("--fail-if", "errors>0,missing_tracks>0"),
    )
    return run_load_cli(argv, report.parent, 180)


def test_cli_run_with_light_clients_reuses_its_cached_clips(
    live_settings: Settings, tmp_path: Path
) -> None:
    """A run whose clips an earlier run left in the cache reads them back (and writes
    nothing); its light members and one decoding subscriber report every track."""
    cache = tmp_path / "clips"
    media = MediaOptions(pre_encoded=True, width=960, height=540, fps=15, clip_cache=cache)
    earlier = light_media(LoadSpec(url="ws://unused", publishers=2, media=media))
    assert earlier is not None and not earlier.from_cache
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert len(files) == 3, files  # the video and a tone per publisher
    done = _load(live_settings, tmp_path / "run.json", cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == files
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["clips"]["from_cache"] is True
    subs = [p for p in report["participants"] if p["role"] == "subscriber"]
    assert sorted(p["client"] for p in subs) == ["light", "light", "sdk"]
    assert all(p["tracks_expected"] == 4 and len(p["tracks"]) == 4 for p in subs)
    assert {p["client"] for p in report["participants"] if p["role"] == "publisher"} == {"light"}
    assert report["total"]["errors"] == 0 and report["total"]["missing_tracks"] == 0
    assert report["total"]["first_frame_p95_ms"] is not None
    # Light subscribers time every frame from capture to arrival without decoding it: the
    # light publishers' RTCP clock is the capture clock, on the same machine.
    for sub in (p for p in subs if p["client"] == "light"):
        assert sub["rtp_latency_ms"], sub
    assert 0 <= report["total"]["rtp_latency_p50_ms"] < 1000


async def test_a_light_subscriber_sent_away_by_the_server_says_so(
    live_settings: Settings, tmp_path: Path
) -> None:
    media = _media(tmp_path, video=False)
    room = f"light-{uuid.uuid4().hex[:8]}"
    async with _publishing(live_settings, room, media):
        sub = LightSubscriber(
            live_settings.livekit_url,
            _plan(live_settings, room, f"{room}-sub0", "subscriber", speaker=f"{room}-pub0"),
            media,
            10,
        )
        await sub.start()
        room_api = lkapi.LiveKitAPI(
            live_settings.livekit_http_url,
            live_settings.livekit_api_key,
            live_settings.livekit_api_secret.get_secret_value(),
        )
        try:
            await until(lambda: sub.client.tracks or None, 30)
            await room_api.room.remove_participant(
                lkapi.RoomParticipantIdentity(room=room, identity=sub.plan.identity)
            )
            await until(sub.client.lost_connection, 30)
        finally:
            await room_api.aclose()
            await sub.stop()
    assert any(
        "left the room before the end" in e and "PARTICIPANT_REMOVED" in e
        for e in sub.result.errors
    ), sub.result.errors
    assert sub.result.audio_tracks == 1  # what it had received still counts
