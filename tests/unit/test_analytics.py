from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from talkplatform_agents.errors import Invalid
from talkplatform_agents.service.analytics import TURN_GAP_MS, meeting_analytics, timeline_png

T0 = 1_700_000_000_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Seg:
    speaker_identity: str
    start_ms: int
    end_ms: int
    speaker_name: str = ""


def seg(who: str, start_s: float, end_s: float, name: str | None = None) -> Seg:
    return Seg(who, T0 + round(start_s * 1000), T0 + round(end_s * 1000), name or who.title())


def analyse(segments: list[Seg], span_s: float = 60.0) -> dict[str, Any]:
    return meeting_analytics(segments, T0, T0 + round(span_s * 1000))


def people(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["identity"]: p for p in result["participants"]}


def test_a_conversation_with_one_interruption() -> None:
    # Alice talks 0-10 s (with a short pause), Bob cuts in at 8 s, then Alice answers.
    result = analyse(
        [
            seg("alice", 0, 4),
            seg("alice", 4.5, 10),
            seg("bob", 8, 15),
            seg("alice", 20, 25),
        ],
        span_s=30,
    )
    alice, bob = people(result)["alice"], people(result)["bob"]
    assert alice == {
        "identity": "alice",
        "name": "Alice",
        "talkTimeMs": 14_500,
        "turns": 2,
        "longestMonologueMs": 10_000,
        "interruptions": 0,
        "interrupted": 1,
        "silenceMs": 15_500,
    }
    assert bob == {
        "identity": "bob",
        "name": "Bob",
        "talkTimeMs": 7_000,
        "turns": 1,
        "longestMonologueMs": 7_000,
        "interruptions": 1,
        "interrupted": 0,
        "silenceMs": 23_000,
    }
    meeting = result["meeting"]
    assert meeting["durationMs"] == 30_000
    assert meeting["speechMs"] == 19_500  # 0-4, 4.5-15, 20-25
    assert meeting["silenceMs"] == 10_500
    assert meeting["silenceShare"] == pytest.approx(0.35)
    assert meeting["overlapMs"] == 2_000
    assert meeting["turns"] == 3
    assert meeting["interruptions"] == 1
    assert meeting["start"] == "2023-11-14T22:13:20.000Z"
    assert meeting["end"] == "2023-11-14T22:13:50.000Z"
    # Participants come in the order they first spoke.
    assert [p["identity"] for p in result["participants"]] == ["alice", "bob"]


def test_talk_time_is_the_union_of_a_speakers_own_segments() -> None:
    result = analyse([seg("a", 0, 5), seg("a", 3, 6), seg("a", 6, 7)])
    assert people(result)["a"]["talkTimeMs"] == 7_000
    assert result["meeting"]["overlapMs"] == 0  # one speaker never overlaps themself
    assert people(result)["a"]["turns"] == 1


def test_a_pause_shorter_than_the_gap_continues_the_turn() -> None:
    gap_s = TURN_GAP_MS / 1000
    result = analyse(
        [
            seg("a", 0, 2),
            seg("a", 2 + gap_s - 0.001, 4),  # just under the gap: same turn
            seg("a", 4 + gap_s, 6),  # exactly the gap: a new turn
        ]
    )
    a = people(result)["a"]
    assert a["turns"] == 2
    assert a["longestMonologueMs"] == 4_000


def test_someone_speaking_in_the_pause_ends_the_turn() -> None:
    result = analyse([seg("a", 0, 2), seg("b", 2.2, 2.5), seg("a", 2.6, 4)])
    a, b = people(result)["a"], people(result)["b"]
    assert a["turns"] == 2
    assert a["longestMonologueMs"] == 2_000
    assert b["turns"] == 1
    # b started in a's pause, while nobody spoke: no interruption.
    assert a["interrupted"] == b["interruptions"] == 0


def test_a_remark_during_a_turn_interrupts_but_does_not_end_it() -> None:
    result = analyse([seg("a", 0, 5), seg("b", 2, 3), seg("a", 5.5, 8)])
    a, b = people(result)["a"], people(result)["b"]
    assert a["turns"] == 1
    assert a["longestMonologueMs"] == 8_000
    assert b["interruptions"] == 1
    assert a["interrupted"] == 1
    assert result["meeting"]["overlapMs"] == 1_000


def test_starting_together_or_right_after_is_no_interruption() -> None:
    result = analyse([seg("a", 0, 3), seg("b", 0, 2), seg("c", 3, 5)])
    assert all(p["interruptions"] == 0 for p in result["participants"])
    assert all(p["interrupted"] == 0 for p in result["participants"])
    assert result["meeting"]["overlapMs"] == 2_000


def test_cutting_into_two_speakers_is_one_interruption_for_the_interrupter() -> None:
    result = analyse([seg("a", 0, 10), seg("b", 1, 10), seg("c", 5, 6)])
    p = people(result)
    assert p["c"]["interruptions"] == 1
    assert p["b"]["interrupted"] == 1
    assert p["b"]["interruptions"] == 1  # b cut into a first
    assert p["a"]["interrupted"] == 2
    assert result["meeting"]["interruptions"] == 2


def test_segments_are_clipped_to_the_span() -> None:
    segments = [seg("a", -5, 2), seg("b", 8, 15), seg("c", -10, -5), seg("d", 12, 20)]
    result = analyse(segments, span_s=10)
    p = people(result)
    assert p["a"]["talkTimeMs"] == 2_000
    assert p["b"]["talkTimeMs"] == 2_000
    # Wholly outside the span: still listed, with nothing to count, after the others.
    for outside in ("c", "d"):
        assert p[outside]["talkTimeMs"] == 0
        assert p[outside]["turns"] == 0
        assert p[outside]["longestMonologueMs"] == 0
        assert p[outside]["silenceMs"] == 10_000
    assert [x["identity"] for x in result["participants"]] == ["a", "b", "c", "d"]
    assert result["meeting"]["speechMs"] == 4_000
    assert result["meeting"]["silenceShare"] == pytest.approx(0.6)


def test_the_latest_non_empty_name_is_the_participants_name() -> None:
    result = analyse([seg("a", 0, 1, "Old"), seg("a", 5, 6, "New"), Seg("a", T0 + 9000, T0 + 9500)])
    assert people(result)["a"]["name"] == "New"


def test_no_segments_is_all_silence() -> None:
    result = analyse([], span_s=10)
    assert result["participants"] == []
    assert result["meeting"] | {"start": None, "end": None} == {
        "start": None,
        "end": None,
        "durationMs": 10_000,
        "speechMs": 0,
        "silenceMs": 10_000,
        "silenceShare": 1.0,
        "overlapMs": 0,
        "turns": 0,
        "interruptions": 0,
    }


def test_a_zero_span_has_no_silence_share() -> None:
    result = meeting_analytics([seg("a", 0, 1)], T0, T0)
    assert result["meeting"]["durationMs"] == 0
    assert result["meeting"]["silenceShare"] == 0.0
    assert people(result)["a"]["talkTimeMs"] == 0


def test_a_segment_ending_before_it_starts_counts_as_an_instant() -> None:
    result = analyse([Seg("a", T0 + 5000, T0 + 4000)])
    a = people(result)["a"]
    assert a["talkTimeMs"] == 0
    assert a["turns"] == 1


def test_a_span_ending_before_it_starts_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ends before it starts") as caught:
        meeting_analytics([], T0 + 1, T0)
    assert isinstance(caught.value, Invalid)
    with pytest.raises(ValueError, match="ends before it starts"):
        timeline_png([], T0 + 1, T0)


def _image(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@pytest.mark.parametrize("lanes", [1, 3])
def test_timeline_has_one_lane_per_speaker(lanes: int) -> None:
    segments = [seg(f"p{i}", i * 3, i * 3 + 5) for i in range(lanes)]
    image = _image(timeline_png(segments, T0, T0 + 20_000))
    assert image.format == "PNG"
    assert image.size == (1000, 120 + 40 * lanes)
    # Bars are drawn: a good share of the plot is neither white nor black.
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None
    coloured = sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
    assert coloured > 1000 * lanes


def test_timeline_of_nothing_is_a_valid_png() -> None:
    image = _image(timeline_png([], T0, T0 + 300_000))
    assert image.size == (1000, 160)


# DejaVu Sans has no CJK glyphs: matplotlib warns and draws boxes, which is all we ask.
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_timeline_survives_awkward_names_and_a_zero_span() -> None:
    segments = [
        seg("a", 0, 1, "Cost $x^$ of {braces} \\frac"),
        seg("b", 0.5, 2, "Same"),
        seg("c", 1, 3, "Same"),
        seg("d", 2, 4, "名前 " + "x" * 60),
    ]
    assert _image(timeline_png(segments, T0, T0 + 10 * 60_000)).size == (1000, 280)
    assert _image(timeline_png(segments, T0, T0)).size[0] == 1000
