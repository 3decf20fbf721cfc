from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import webvtt

from talkplatform_agents.errors import Invalid
from talkplatform_agents.service.transcripts import FORMATS, iso_utc, render_transcript

ORIGIN = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z


@dataclass(frozen=True)
class Word:
    word: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Segment:
    id: str
    speaker_identity: str
    speaker_name: str
    start_ms: int
    end_ms: int
    text: str
    words: tuple[Word, ...] = ()
    track_sid: str = "TR_a"
    confidence: float = 0.9
    meeting_id: str = "m1"
    transcription_id: str = "tr_1"


def _segments() -> list[Segment]:
    return [
        Segment(
            "SG_1", "alice", "Alice Ames", ORIGIN + 1_500, ORIGIN + 4_250, "Hello everyone.",
            (Word("Hello", ORIGIN + 1_500, ORIGIN + 2_000),
             Word("everyone", ORIGIN + 2_100, ORIGIN + 4_250)),
            confidence=0.75,
        ),
        Segment("SG_2", "bob", "Bob <B&B>", ORIGIN + 3_725_004, ORIGIN + 3_726_000, "a < b & c"),
        Segment("SG_3", "carol", "", ORIGIN + 5_000, ORIGIN + 6_000, "first line\nsecond\n\nline"),
    ]  # fmt: skip


def test_iso_utc_is_exact_to_the_millisecond() -> None:
    assert iso_utc(ORIGIN) == "2023-11-14T22:13:20.000Z"
    assert iso_utc(ORIGIN + 1) == "2023-11-14T22:13:20.001Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_json_has_relative_and_absolute_times_in_start_order() -> None:
    body, media = render_transcript(_segments(), "json", ORIGIN)
    assert media == "application/json"
    doc = json.loads(body)
    assert doc["origin"] == "2023-11-14T22:13:20.000Z"
    assert [s["id"] for s in doc["segments"]] == ["SG_1", "SG_3", "SG_2"]
    first = doc["segments"][0]
    assert first == {
        "id": "SG_1",
        "speakerIdentity": "alice",
        "speakerName": "Alice Ames",
        "trackSid": "TR_a",
        "startMs": 1_500,
        "endMs": 4_250,
        "start": "2023-11-14T22:13:21.500Z",
        "end": "2023-11-14T22:13:24.250Z",
        "text": "Hello everyone.",
        "words": [
            {"word": "Hello", "startMs": 1_500, "endMs": 2_000},
            {"word": "everyone", "startMs": 2_100, "endMs": 4_250},
        ],
        "confidence": 0.75,
    }
    # JSON keeps the text as it was stored: its newlines are data, not cue breaks.
    assert doc["segments"][1]["text"] == "first line\nsecond\n\nline"


def test_vtt_parses_with_cues_times_and_voices() -> None:
    body, media = render_transcript(_segments(), "vtt", ORIGIN)
    assert media == "text/vtt; charset=utf-8"
    assert body.startswith("WEBVTT\n\n")
    cues = list(webvtt.from_string(body))
    assert [c.identifier for c in cues] == ["SG_1", "SG_3", "SG_2"]
    assert [(c.start, c.end) for c in cues] == [
        ("00:00:01.500", "00:00:04.250"),
        ("00:00:05.000", "00:00:06.000"),
        ("01:02:05.004", "01:02:06.000"),
    ]
    # An empty display name falls back to the identity; markup characters are escaped.
    assert [c.voice for c in cues] == ["Alice Ames", "carol", "Bob &lt;B&amp;B&gt;"]
    assert cues[2].raw_text == "<v Bob &lt;B&amp;B&gt;>a &lt; b &amp; c</v>"
    # A newline (or a blank line) in a caption stays inside its cue.
    assert cues[1].raw_text == "<v carol>first line second line</v>"


def test_vtt_clamps_times_before_the_origin_and_gives_empty_cues_a_length() -> None:
    segments = [
        Segment("early", "a", "A", ORIGIN - 2_000, ORIGIN + 500, "before the start"),
        Segment("instant", "a", "A", ORIGIN + 700, ORIGIN + 700, "blip"),
        Segment("gone", "a", "A", ORIGIN - 3_000, ORIGIN - 2_500, "wholly before"),
    ]
    body, _ = render_transcript(segments, "vtt", ORIGIN)
    cues = {c.identifier: (c.start, c.end) for c in webvtt.from_string(body)}
    assert cues == {
        "gone": ("00:00:00.000", "00:00:00.001"),
        "early": ("00:00:00.000", "00:00:00.500"),
        "instant": ("00:00:00.700", "00:00:00.701"),
    }


def test_vtt_cue_ids_cannot_break_the_timing_line() -> None:
    segments = [Segment("a --> b\nc", "a", "A", ORIGIN, ORIGIN + 10, "x")]
    body, _ = render_transcript(segments, "vtt", ORIGIN)
    (cue,) = webvtt.from_string(body)
    assert cue.identifier == "a -> b c"
    assert (cue.start, cue.end) == ("00:00:00.000", "00:00:00.010")


def test_srt_numbers_cues_and_names_speakers() -> None:
    body, media = render_transcript(_segments(), "srt", ORIGIN)
    assert media == "application/x-subrip; charset=utf-8"
    blocks = body.rstrip("\n").split("\n\n")
    assert blocks == [
        "1\n00:00:01,500 --> 00:00:04,250\nAlice Ames: Hello everyone.",
        "2\n00:00:05,000 --> 00:00:06,000\ncarol: first line second line",
        "3\n01:02:05,004 --> 01:02:06,000\nBob <B&B>: a < b & c",
    ]
    assert body.endswith("\n\n")


def test_text_is_one_line_per_segment() -> None:
    body, media = render_transcript(_segments(), "text", ORIGIN)
    assert media == "text/plain; charset=utf-8"
    assert body.splitlines() == [
        "[00:00:01] Alice Ames: Hello everyone.",
        "[00:00:05] carol: first line second line",
        "[01:02:05] Bob <B&B>: a < b & c",
    ]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_segments_give_valid_empty_documents(fmt: str) -> None:
    body, media = render_transcript([], fmt, ORIGIN)
    assert media == FORMATS[fmt].media_type
    if fmt == "json":
        assert json.loads(body) == {"origin": "2023-11-14T22:13:20.000Z", "segments": []}
    elif fmt == "vtt":
        assert body == "WEBVTT\n"
        assert list(webvtt.from_string(body)) == []
    else:
        assert body == ""


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'xml'.*json, vtt, srt, text") as caught:
        render_transcript(_segments(), "xml", ORIGIN)
    assert isinstance(caught.value, Invalid)
    assert caught.value.body()["error"]["known"] == ["json", "vtt", "srt", "text"]


def test_srt_timings_are_well_formed_for_every_cue() -> None:
    segments = [
        Segment(f"s{i}", "a", "A", ORIGIN + i * 61_001, ORIGIN + i * 61_001, f"w{i}")
        for i in range(5)
    ]
    body, _ = render_transcript(segments, "srt", ORIGIN)
    timing = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})$")
    lines = [line for line in body.splitlines() if "-->" in line]
    assert len(lines) == 5
    for line in lines:
        m = timing.match(line)
        assert m is not None, line
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, m.groups())
        start = ((h1 * 60 + m1) * 60 + s1) * 1000 + ms1
        end = ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2
        assert end == start + 1
