from __future__ import annotations

import math

import numpy as np
import pytest

from talkplatform_agents.bots.greenroom.analysis import (
    CameraCheck,
    MicCheck,
    NetworkSample,
    build_report,
)
from talkplatform_agents.bots.greenroom.audio import FrameLevel, LevelMeter
from talkplatform_agents.dsp import level_dbfs
from talkplatform_agents.lk import greenroom as proto

QUIET = NetworkSample(rtt_ms=20, jitter_ms=3, loss_pct=0, bitrate_kbps=500)


def _mic(levels: list[tuple[float, float]]) -> dict[str, object]:
    mic = MicCheck()
    for i, (rms, peak) in enumerate(levels):
        mic.add(i * 0.01, rms, peak)
    return mic.summary(len(levels) * 0.01)


def test_mic_silent_clipping_ok_and_absent() -> None:
    assert _mic([(-90.0, 0.0)] * 100)["status"] == "silent"
    assert _mic([(-float("inf"), 0.0)] * 100)["status"] == "silent"
    assert _mic([(-20.0, 0.3)] * 100)["status"] == "ok"
    assert _mic([(-3.0, 1.0)] * 10 + [(-20.0, 0.3)] * 90)["status"] == "clipping"
    assert MicCheck().summary(10.0)["status"] == "no_audio"


def test_mic_level_is_average_power() -> None:
    summary = _mic([(-20.0, 0.1)] * 50 + [(-80.0, 0.0)] * 50)
    assert summary["rms_dbfs"] == pytest.approx(-20 - 10 * math.log10(2), abs=0.1)


def _camera(frames: list[np.ndarray], fps: float = 15, every: int = 1) -> dict[str, object]:
    """Every frame arrives; every ``every``-th is sampled, as the bot's worker does."""
    camera = CameraCheck()
    for i, frame in enumerate(frames):
        camera.frame(i / fps, 320, 180)
        if i % every == 0:
            camera.sample(i / fps, frame.astype(np.float32))
    return camera.summary((len(frames) - 1) / fps)


def test_camera_black_frozen_ok_and_stalled() -> None:
    rng = np.random.default_rng(0)
    moving = [rng.uniform(0, 255, (18, 32)) for _ in range(30)]
    still = [moving[0]] * 30
    black = [np.full((18, 32), 5.0)] * 30
    assert _camera(moving) == {
        "status": "ok",
        "width": 320,
        "height": 180,
        "fps": 15.0,
        "analysed_fps": 15.0,
    }
    assert _camera(still)["status"] == "frozen"
    assert _camera(black)["status"] == "black"
    camera = CameraCheck()
    camera.frame(0.0, 320, 180)
    camera.sample(0.0, moving[0].astype(np.float32))
    assert camera.summary(10.0)["status"] == "frozen"  # frames stopped coming
    assert CameraCheck().summary(10.0)["status"] == "no_video"


def test_camera_rate_counts_every_frame_while_a_few_are_sampled() -> None:
    rng = np.random.default_rng(1)
    moving = [rng.uniform(0, 255, (18, 32)) for _ in range(30)]
    still = [moving[0]] * 30
    black = [np.full((18, 32), 5.0)] * 30
    # 15 fps sampled one frame in 8: the check's analysis rate is its own, 15/8 a second.
    assert _camera(moving, every=8) == {
        "status": "ok",
        "width": 320,
        "height": 180,
        "fps": 15.0,
        "analysed_fps": 1.9,
    }
    assert _camera(still, every=8)["status"] == "frozen"
    assert _camera(black, every=8)["status"] == "black"
    # Past its first window: the thumbnails in the last 2 s, 4 at the bot's 2 a second.
    longer = [rng.uniform(0, 255, (18, 32)) for _ in range(60)]
    assert _camera(longer, fps=16, every=8)["analysed_fps"] == 2.0
    # Frames arrive but none has been sampled yet: nothing says the camera is broken.
    camera = CameraCheck()
    for i in range(10):
        camera.frame(i / 15, 320, 180)
    assert camera.summary(9 / 15)["status"] == "ok"


@pytest.mark.parametrize(
    ("network", "verdict"),
    [
        (QUIET, "good"),
        (NetworkSample(250, 3, 0, 500), "fair"),
        (NetworkSample(20, 45, 0, 500), "fair"),
        (NetworkSample(20, 3, 3.0, 500), "fair"),
        (NetworkSample(20, 3, 8.0, 500), "poor"),
        (NetworkSample(500, 3, 0, 500), "poor"),
        (NetworkSample(None, None, None, None), "good"),
    ],
)
def test_network_verdicts(network: NetworkSample, verdict: str) -> None:
    ok_mic = {"status": "ok"}
    ok_camera = {"status": "ok"}
    report = build_report(ok_mic, ok_camera, network)
    assert report["verdict"] == verdict, report
    assert (report["reasons"] == []) == (verdict == "good")


def test_device_problems_make_the_verdict_poor_with_reasons() -> None:
    report = build_report({"status": "silent"}, {"status": "black"}, QUIET)
    assert report["verdict"] == "poor"
    assert report["reasons"] == ["microphone: silent", "camera: black"]
    assert build_report({"status": "ok"}, {"status": "no_video"}, QUIET)["verdict"] == "fair"


def test_level_meter_window() -> None:
    meter = LevelMeter(window_s=0.1)
    assert meter.reading() == (float("-inf"), float("-inf"))
    loud = FrameLevel.of(np.full(960, 16384, dtype=np.int16))
    quiet = FrameLevel.of(np.full(960, 1638, dtype=np.int16))
    for _ in range(5):
        meter.add(loud)
    for _ in range(5):
        meter.add(quiet)  # 20 ms frames: the loud ones have left the 100 ms window
    rms, peak = meter.reading()
    assert rms == pytest.approx(-26.0, abs=0.1) and peak == pytest.approx(-26.0, abs=0.1)
    meter.add(FrameLevel.of(np.zeros(0, dtype=np.int16)))  # an empty frame changes nothing
    assert meter.reading() == pytest.approx((rms, peak))


def test_frame_level_matches_the_shared_level_measure() -> None:
    rng = np.random.default_rng(3)
    pcm = (rng.normal(0, 0.2, 960) * 32767).clip(-32768, 32767).astype(np.int16)
    pcm[100] = -32768  # the peak is the largest magnitude, negative too
    level = FrameLevel.of(pcm)
    rms, peak = level_dbfs(pcm)
    assert level.rms_dbfs == pytest.approx(rms, abs=0.01)
    assert 20 * math.log10(level.peak) == pytest.approx(peak, abs=0.01)
    silent = FrameLevel.of(np.zeros(960, dtype=np.int16))
    assert silent.rms_dbfs == float("-inf") and silent.peak == 0.0
    # A window of a silent and a loud frame reads their average power, as one long frame.
    meter = LevelMeter(window_s=0.04)
    meter.add(silent)
    meter.add(level)
    assert meter.reading()[0] == pytest.approx(level_dbfs(np.concatenate([pcm * 0, pcm]))[0])


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("{bad", "Invalid JSON"),
        ('{"mode": "karaoke"}', "mode"),
        ('{"mode": "playback", "seconds": 0}', "seconds"),
        ('{"mode": "live", "x": 1}', "x"),
        ("[]", "payload"),
    ],
)
def test_rpc_payloads_are_validated(payload: str, problem: str) -> None:
    with pytest.raises(proto.BadPayload, match=problem):
        proto.parse(proto.AudioModeRequest, payload)


def test_rpc_payload_defaults_and_json_without_infinities() -> None:
    assert proto.parse(proto.AudioModeRequest, '{"mode": "playback"}').seconds == 6.0
    assert proto.parse(proto.EmptyRequest, "") == proto.EmptyRequest()
    assert proto.parse(proto.PreviewRequest, '{"enabled": true}').enabled is True
    with pytest.raises(proto.BadPayload, match="enabled"):
        proto.parse(proto.PreviewRequest, "{}")  # no default: the user says which
    assert (
        proto.dumps({"a": float("-inf"), "b": [float("nan"), 1.5]}) == '{"a":null,"b":[null,1.5]}'
    )


def test_camera_rate_is_not_understated_while_it_starts() -> None:
    """The first report after a camera starts covers less than a window of frames."""
    rng = np.random.default_rng(1)
    frames = [rng.uniform(0, 255, (18, 32)) for _ in range(12)]  # 0.73 s at 15 fps
    assert _camera(frames)["fps"] == pytest.approx(15.0, abs=0.1)
