"""Pure logic of the load run: options, --fail-if, the report's roll-up and its writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkplatform_agents.cli.load import LoadAccess, load_spec_from_settings
from talkplatform_agents.config import Settings
from talkplatform_agents.synthetic.load import (
    LayerSwitch,
    LoadSpec,
    MediaOptions,
    ParticipantResult,
    evaluate,
    parse_duration,
    parse_fail_if,
    parse_ramp,
    summarize,
)
from talkplatform_agents.synthetic.load.frames import FrameProbe
from talkplatform_agents.synthetic.load.report import by_room, write_report
from talkplatform_agents.synthetic.screen import READABLE_PSNR_DB, ScreenPattern
from talkplatform_agents.synthetic.video import PatternGenerator


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60), ("500ms", 0.5), ("2m", 120), ("1.5", 1.5), ("1h", 3600)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "rate"), [("5/s", 5), ("30/m", 0.5), ("0", 0), ("2", 2)])
def test_ramps(text: str, rate: float) -> None:
    assert parse_ramp(text) == pytest.approx(rate)


@pytest.mark.parametrize("bad", ["", "fast", "5/h", "-1s", "1 day"])
def test_bad_durations_and_ramps_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        parse_duration(bad) if "/" not in bad else parse_ramp(bad)
    with pytest.raises(ValueError, match="bad ramp"):
        parse_ramp(bad + "/x")


def test_fail_if_units_are_normalised() -> None:
    conditions = parse_fail_if(
        "join_p95>2s, loss>2%,first_frame_p50>=800ms,errors>0,bitrate<1.5mbps"
    )
    got = [(c.key, c.op, c.limit) for c in conditions]
    assert got == [
        ("join_p95_ms", ">", 2000),
        ("loss_pct", ">", 2),
        ("first_frame_p50_ms", ">=", 800),
        ("errors", ">", 0),
        ("bitrate_kbps", "<", 1500),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("join_p95>2parsecs", "takes units"),
        ("speed>2", "unknown metric 'speed'"),
        ("join_p95=2s", "bad --fail-if condition"),
        ("loss>2ms", "takes units"),
        (" , ", "empty"),
    ],
)
def test_fail_if_errors_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fail_if(text)


def test_evaluate_fails_held_and_unmeasured_conditions() -> None:
    summary = {"join_p95_ms": 2500.0, "loss_pct": 0.5, "latency_p95_ms": None}
    verdicts = evaluate(parse_fail_if("join_p95>2s,loss>2%,latency_p95>300ms"), summary)
    assert [v.failed for v in verdicts] == [True, False, True]
    assert "not measured" in verdicts[2].reason
    assert verdicts[0].as_dict()["value"] == 2500.0


def _sub(
    room: str, join: float, first: float, lat: list[float], lost: int, **kw: object
) -> ParticipantResult:
    result = ParticipantResult(f"{room}-sub{join}", room, "subscriber", joined=True, join_ms=join)
    result.first_frame_ms, result.latency_ms = first, lat
    result.packets_received, result.packets_lost = 1000 - lost, lost
    for key, value in kw.items():
        setattr(result, key, value)
    return result


def test_summary_pools_participants_per_room_and_in_total() -> None:
    pub = ParticipantResult("a-pub0", "a", "publisher", joined=True, join_ms=100.0)
    failed = ParticipantResult("b-pub0", "b", "publisher", errors=["join failed: refused"])
    switches = [LayerSwitch("low", True, 120.0, 320, 180), LayerSwitch("medium", False, None, 0, 0)]
    subs = [
        _sub("a", 200.0, 400.0, [50.0, 60.0], 10, bitrate_kbps=500.0, jitter_ms=2.0, freezes=1),
        _sub("b", 300.0, 600.0, [70.0], 0, bitrate_kbps=300.0, jitter_ms=4.0, switches=switches),
    ]
    total = summarize([pub, failed, *subs])
    assert total["participants"] == 4 and total["joined"] == 3 and total["subscribers"] == 2
    assert total["join_p50_ms"] == 200.0
    assert total["first_frame_p50_ms"] == 500.0
    assert total["loss_pct"] == pytest.approx(0.5)  # 10 lost of 2000
    assert total["bitrate_kbps"] == 400.0 and total["jitter_ms"] == 3.0
    assert total["latency_p50_ms"] == 60.0
    assert total["freezes"] == 1 and total["errors"] == 1
    assert (total["layer_switches"], total["layer_switch_failures"]) == (1, 1)
    rooms = by_room([pub, failed, *subs])
    assert list(rooms) == ["a", "b"] and rooms["b"]["errors"] == 1 and rooms["a"]["errors"] == 0


def test_empty_run_summarises_to_nothing_measured() -> None:
    total = summarize([])
    assert total["participants"] == 0 and total["join_p95_ms"] is None and total["loss_pct"] is None


def test_result_round_trips_through_a_dict() -> None:
    result = _sub("a", 1.0, 2.0, [3.0], 0, switches=[LayerSwitch("high", True, 5.0, 960, 540)])
    assert ParticipantResult.from_dict(json.loads(json.dumps(result.as_dict()))) == result


def test_report_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.json"
    write_report(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_report(path, {"a": {(1, 2): "a tuple key"}})  # fails half-way through
    assert json.loads(path.read_text()) == {"a": 1}  # the old report survives
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_spec_refuses_contradictions() -> None:
    MediaOptions(pre_encoded=True, simulcast=True)  # three pre-encoded layers, light path
    with pytest.raises(ValueError, match="video or audio"):
        MediaOptions(video=False, audio=False)
    with pytest.raises(ValueError, match=r"0 \(off\) or >= 0.5"):
        MediaOptions(speaker_turn_s=0.2)
    with pytest.raises(ValueError, match="need audio"):
        MediaOptions(speaker_turn_s=3, audio=False)
    with pytest.raises(ValueError, match="at least 128x72"):
        MediaOptions(width=64, height=36)
    with pytest.raises(ValueError, match="ws://"):
        LoadSpec(url="10.0.0.1:7880")
    with pytest.raises(ValueError, match="at least one"):
        LoadSpec(url="ws://x", publishers=0, subscribers=0)


def test_options_come_from_the_flags_else_the_settings() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, LIVEKIT_URL="ws://10.9.0.1:7880", LOG_LEVEL="DEBUG"
    )
    spec = load_spec_from_settings(settings, rooms=2, media=MediaOptions(fps=15))
    assert (spec.url, spec.rooms, spec.media.fps) == ("ws://10.9.0.1:7880", 2, 15)
    assert load_spec_from_settings(settings, url="wss://elsewhere").url == "wss://elsewhere"
    access = LoadAccess.from_settings(settings, api_key="k")
    assert access.credentials.api_key == "k"
    assert access.credentials.api_secret == settings.livekit_api_secret.get_secret_value()
    assert access.worker_log_level == "DEBUG"
    quiet = Settings(_env_file=None)  # type: ignore[call-arg]
    assert LoadAccess.from_settings(quiet).worker_log_level == "WARNING"
    with pytest.raises(ValueError, match="rooms"):
        load_spec_from_settings(settings, rooms=0)


def test_frame_probe_reads_markers_from_luma_and_counts_freezes() -> None:
    pattern = PatternGenerator(320, 180)
    probe = FrameProbe("pub", "TR_x")
    at = 1_000.0
    for i in range(20):
        at += 0.5 if i == 10 else 0.066  # one long stall
        rgba = pattern.frame(i, int((at - 0.040) * 1000))
        luma = (
            16 + (65.481 * rgba[..., 0] + 128.553 * rgba[..., 1] + 24.966 * rgba[..., 2]) / 255
        ).astype(np.uint8)
        probe.feed(luma, at)
    assert probe.decoded == 20 and (probe.width, probe.height) == (320, 180)
    assert probe.freezes == 1
    assert all(39 <= v <= 41 for v in probe.latencies)


def test_screen_page_is_readable_only_at_full_size() -> None:
    page = ScreenPattern(640, 360)
    rgba = page.frame(1, 0)
    luma = (
        16 + (65.481 * rgba[..., 0] + 128.553 * rgba[..., 1] + 24.966 * rgba[..., 2]) / 255
    ).astype(np.uint8)
    assert (page.readability_db(luma) or 0) > 40
    blurred = np.repeat(np.repeat(luma[::2, ::2], 2, 0), 2, 1)  # a half-size layer, upscaled
    assert (page.readability_db(blurred) or 0) < READABLE_PSNR_DB
    assert page.readability_db(luma[::2, ::2]) is None
