"""The load report's per-track table, its new totals (tracks, simulated speakers), their
thresholds, the report's schema (it only gains fields), and the CLI's new options."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from talkplatform_agents.cli.load import (
    DEFAULT_CLIP_CACHE,
    clip_cache_path,
    register,
    render_summary,
)
from talkplatform_agents.config import Settings
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.synthetic.load import (
    LayerSwitch,
    LoadSpec,
    MediaOptions,
    ParticipantResult,
    evaluate,
    parse_fail_if,
    run_load,
    summarize,
)
from talkplatform_agents.synthetic.load.members import expected_tracks
from talkplatform_agents.synthetic.load.report import TrackResult, by_room, by_track


def _track(sender: str, sid: str, kind: str = "video", **kw: object) -> TrackResult:
    source = {"video": "camera", "audio": "microphone"}[kind]
    return TrackResult(sender, sid, kind, str(kw.pop("source", source)), **kw)  # type: ignore[arg-type]


def _subscriber(room: str, n: int, expected: int, tracks: list[TrackResult]) -> ParticipantResult:
    result = ParticipantResult(f"{room}-sub{n}", room, "subscriber", joined=True, join_ms=10.0)
    result.tracks, result.tracks_expected = tracks, expected
    return result


def _room_a() -> list[ParticipantResult]:
    """Room a: pub0 publishes a camera and a mic, pub1 a camera nobody received; two
    subscribers, one of which never got pub0's mic."""
    pub0 = ParticipantResult("a-pub0", "a", "publisher", joined=True)
    pub0.tracks = [_track("a-pub0", "TR_cam0"), _track("a-pub0", "TR_mic0", "audio")]
    pub1 = ParticipantResult("a-pub1", "a", "publisher", joined=True)
    pub1.tracks = [_track("a-pub1", "TR_cam1")]
    sub0 = _subscriber(
        "a",
        0,
        3,
        [
            _track(
                "a-pub0",
                "TR_cam0",
                packets_received=900,
                packets_lost=100,
                bytes_received=10**6,
                bitrate_kbps=800.0,
                jitter_ms=2.0,
                frames=300,
                freezes=1,
                width=1280,
                height=720,
            ),
            _track("a-pub0", "TR_mic0", "audio", packets_received=500, bitrate_kbps=32.0),
        ],
    )
    sub1 = _subscriber(
        "a",
        1,
        3,
        [
            _track(
                "a-pub0",
                "TR_cam0",
                packets_received=1000,
                bitrate_kbps=200.0,
                jitter_ms=4.0,
                frames=290,
                width=320,
                height=180,
            ),
            _track("a-pub0", "TR_mic0", "audio"),  # subscribed, never a packet
        ],
    )
    return [pub0, pub1, sub0, sub1]


def test_by_track_has_a_row_per_published_track() -> None:
    rows = by_track(_room_a())
    assert [(r["sender"], r["track_sid"], r["kind"]) for r in rows] == [
        ("a-pub0", "TR_cam0", "video"),
        ("a-pub0", "TR_mic0", "audio"),
        ("a-pub1", "TR_cam1", "video"),
    ]
    cam, mic, unseen = rows
    assert (cam["received"], cam["expected"]) == (2, 2)
    assert cam["packets_received"] == 1900 and cam["packets_lost"] == 100
    assert cam["loss_pct"] == 5.0  # 100 of 2000
    assert cam["bitrate_kbps"] == 500.0 and cam["jitter_ms"] == 3.0  # means per subscriber
    assert (cam["frames"], cam["freezes"]) == (590, 1)
    assert cam["sizes"] == ["320x180", "1280x720"]
    assert (mic["received"], mic["expected"], mic["bitrate_kbps"]) == (1, 2, 32.0)
    assert mic["source"] == "microphone" and mic["sizes"] == []
    # Published, received by nobody: still a row, and it says so.
    assert (unseen["received"], unseen["expected"], unseen["loss_pct"]) == (0, 2, None)
    assert json.loads(json.dumps(rows)) == rows


def test_by_track_keeps_rooms_apart_and_needs_no_publisher_rows() -> None:
    # Light publishers may not list their tracks: the subscribers' rows are enough.
    b = _subscriber("b", 0, 1, [_track("b-pub0", "TR_x", packets_received=5)])
    rows = by_track([*_room_a(), b])
    assert [(r["room"], r["track_sid"]) for r in rows][-1] == ("b", "TR_x")
    assert rows[-1]["expected"] == 1 and rows[-1]["received"] == 1
    assert by_track([]) == []


def test_summary_counts_tracks_received_against_expected() -> None:
    results = _room_a()
    results.append(_subscriber("a", 2, 3, []))  # joined, received nothing
    total = summarize(results)
    # sub0 got 2 of 3, sub1 1 of 3 (a subscribed track without packets does not count).
    assert (total["tracks_received"], total["tracks_expected"]) == (3, 9)
    assert total["missing_tracks"] == 6
    # A subscriber receiving more than expected (someone else published) hides no miss.
    extra = _subscriber("c", 0, 1, [_track("c-x", "TR_1", packets_received=1)] * 2)
    assert summarize([extra])["missing_tracks"] == 0
    assert summarize([extra])["tracks_received"] == 1
    rooms = by_room(results)
    assert rooms["a"]["missing_tracks"] == 6


def test_summary_of_speaker_turns_is_unmeasured_without_turns() -> None:
    quiet = summarize(_room_a())
    assert quiet["speaker_turns"] is None and quiet["speaker_turns_missed"] is None
    assert quiet["speaker_follow_p95_ms"] is None
    subs = [_subscriber("a", n, 0, []) for n in range(2)]
    subs[0].speaker_follow_ms, subs[0].speaker_turns = [100.0, 300.0], 3
    subs[0].speaker_turns_missed = 1
    subs[1].speaker_follow_ms, subs[1].speaker_turns = [200.0], 1
    total = summarize(subs)
    assert total["speaker_turns"] == 4 and total["speaker_turns_missed"] == 1
    assert total["speaker_follow_p50_ms"] == 200.0


def test_thresholds_on_missing_tracks_and_speaker_turns() -> None:
    conditions = parse_fail_if(
        "missing_tracks>0,speaker_turns_missed>=2,speaker_follow_p95>1s,speaker_follow_p50>300ms"
    )
    assert [c.key for c in conditions] == [
        "missing_tracks",
        "speaker_turns_missed",
        "speaker_follow_p95_ms",
        "speaker_follow_p50_ms",
    ]
    assert conditions[2].limit == 1000
    total = summarize(_room_a())
    verdicts = evaluate(conditions, total)
    # pub1's camera at both subscribers, pub0's mic at sub1
    assert verdicts[0].failed and verdicts[0].value == 3
    # No simulated speakers: nothing was measured, so nothing passes.
    assert all(v.failed and "not measured" in v.reason for v in verdicts[1:])
    with pytest.raises(ValueError, match="takes units"):
        parse_fail_if("missing_tracks>2ms")


def test_result_with_tracks_and_speakers_round_trips() -> None:
    result = _room_a()[2]
    result.client, result.speaker_follow_ms = "light", [120.5]
    result.speaker_turns, result.speaker_turns_missed = 2, 1
    result.switches = [LayerSwitch("low", True, 80.0, 320, 180)]
    again = ParticipantResult.from_dict(json.loads(json.dumps(result.as_dict())))
    assert again == result and isinstance(again.tracks[0], TrackResult)
    # A record from before these fields still loads, with their defaults.
    old = {k: v for k, v in result.as_dict().items() if k not in _NEW_PARTICIPANT_KEYS}
    loaded = ParticipantResult.from_dict(old)
    assert loaded.tracks == [] and loaded.client == "sdk" and loaded.tracks_expected == 0


# The report as it was before per-track results: every key keeps its name (and its meaning).
_TOP_KEYS = {
    "version", "run_id", "started_at", "spec", "errors", "ended_at", "interrupted", "complete",
    "total", "rooms", "thresholds", "passed", "participants", "exit_code",
}  # fmt: skip
_TOTAL_KEYS = {
    "participants", "publishers", "subscribers", "joined", "join_p50_ms", "join_p95_ms",
    "first_frame_p50_ms", "first_frame_p95_ms", "bitrate_kbps", "loss_pct", "jitter_ms",
    "latency_p50_ms", "latency_p95_ms", "fps", "freezes", "layer_switches",
    "layer_switch_failures", "layer_switch_p95_ms", "errors",
}  # fmt: skip
_PARTICIPANT_KEYS = {
    "identity", "room", "role", "worker", "joined", "join_ms", "left_at", "errors",
    "tracks_published", "frames_sent", "video_tracks", "audio_tracks", "first_frame_ms",
    "frames", "markers", "audio_markers", "fps", "freezes", "freeze_ms", "latency_ms",
    "bitrate_kbps", "packets_received", "packets_lost", "jitter_ms", "switches", "screen",
}  # fmt: skip
_NEW_PARTICIPANT_KEYS = {
    "client", "tracks", "tracks_expected", "speaker_follow_ms", "speaker_turns",
    "speaker_turns_missed", "rtp_latency_ms",
}  # fmt: skip


def test_report_schema_only_gains_fields(tmp_path: Path) -> None:
    # Nothing listens on port 9: the run stops at its preflight, and still writes it all.
    path = tmp_path / "r.json"
    outcome = run_load(LoadSpec(url="ws://127.0.0.1:9"), Credentials("k", "s" * 32), path)
    assert outcome.exit_code == 2
    report = json.loads(path.read_text())
    assert _TOP_KEYS | {"tracks"} <= set(report), _TOP_KEYS - set(report)
    assert report["tracks"] == [] and report["version"] == 1
    new_total = {"tracks_received", "tracks_expected", "missing_tracks", "speaker_turns"}
    assert _TOTAL_KEYS | new_total <= set(report["total"])
    keys = set(_room_a()[2].as_dict())
    assert keys == _PARTICIPANT_KEYS | _NEW_PARTICIPANT_KEYS
    assert isinstance(report["total"]["errors"], int) and report["total"]["join_p95_ms"] is None


def test_expected_tracks_follow_the_media() -> None:
    assert expected_tracks(MediaOptions(), 3) == 6
    assert expected_tracks(MediaOptions(screen_share=True), 3) == 7
    assert expected_tracks(MediaOptions(video=False, screen_share=True), 3) == 3  # no share
    assert expected_tracks(MediaOptions(audio=False), 2) == 2
    assert expected_tracks(MediaOptions(screen_share=True), 0) == 0


def test_summary_shows_the_track_table_and_speakers() -> None:
    results = _room_a()
    results[2].speaker_follow_ms, results[2].speaker_turns = [250.0], 2
    results[2].speaker_turns_missed = 1
    report = {
        "run_id": "abc",
        "total": summarize(results),
        "rooms": by_room(results),
        "tracks": by_track(results),
        "participants": [r.as_dict() for r in results],
    }
    console = Console(record=True, width=250)
    render_summary(report, console)
    text = console.export_text()
    assert "tracks got/exp" in text and "3/6" in text  # the room table's column
    cam = next(line for line in text.splitlines() if "TR_cam0" in line)
    assert "2/2" in cam and "5.00%" in cam and "320x180 1280x720" in cam
    assert re.search(r"TR_cam1 .*0/2", text)
    assert "missed 1 of 2 turns" in text and "p50 250 ms" in text


@pytest.fixture
def cli() -> tuple[CliRunner, typer.Typer]:
    app = typer.Typer()
    register(app, lambda: Settings(_env_file=None), Console(stderr=True, width=200))

    @app.command()
    def other() -> None:  # two commands keep ``load`` a subcommand
        """Unused."""

    return CliRunner(), app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--decode", "some"], "--decode must be none or sample or all, not 'some'"),
        (["--speaker-turns", "often"], "bad duration 'often'"),
        (["--speaker-turns", "200ms"], "speaker turns must be 0 \\(off\\) or >= 0.5 s"),
        (["--speaker-turns", "3s", "--no-audio"], "simulated speakers need audio"),
        (["--no-video", "--no-audio"], "publishers need video or audio"),
        (["--clip-cache", "{file}"], "is not a directory"),
    ],
)
def test_bad_new_options_exit_2_before_anything_runs(
    cli: tuple[CliRunner, typer.Typer], tmp_path: Path, args: list[str], message: str
) -> None:
    runner, app = cli
    a_file = tmp_path / "f"
    a_file.write_text("x")
    args = [a.replace("{file}", str(a_file)) for a in args]
    report = tmp_path / "r.json"
    done = runner.invoke(app, ["load", "--url", "ws://127.0.0.1:9", "--report", str(report), *args])
    assert done.exit_code == 2, done.output
    assert re.search(message, " ".join(done.output.split())), done.output
    assert not report.exists()


def test_clip_cache_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/qa")
    assert clip_cache_path(DEFAULT_CLIP_CACHE) == Path("/home/qa/.cache/talkplatform-agents/clips")
    assert clip_cache_path("none") is None and clip_cache_path("") is None
    assert clip_cache_path("rel/clips") == Path.cwd() / "rel" / "clips"
