from __future__ import annotations

import numpy as np
import pytest

from talkplatform_agents.synthetic.audio import (
    SAMPLE_RATE,
    MarkerDecoder,
    ToneConfig,
    ToneGenerator,
    level_dbfs,
)


def _generate(config: ToneConfig, seconds: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    generator = ToneGenerator(config)
    chunks, starts = [], []
    for _ in range(int(seconds * 100)):
        chunk, found = generator.next_chunk(SAMPLE_RATE // 100)
        chunks.append(chunk)
        starts += found
    return np.concatenate(chunks), starts


@pytest.mark.parametrize("offset", [0, 1, 240, 479, 1234])
def test_markers_decode_at_any_alignment(offset: int) -> None:
    signal, starts = _generate(ToneConfig(tag=11), 3.0)
    noisy = np.concatenate([np.zeros(offset), signal])
    noisy += np.random.default_rng(offset).normal(0, 0.01, noisy.size)
    decoder = MarkerDecoder()
    found = []
    for i in range(0, noisy.size, 441):  # a frame size unrelated to the hop
        found += decoder.feed(noisy[i : i + 441])
    assert [(d.tag, d.seq) for d in found] == [(11, seq) for seq, _ in starts[: len(found)]]
    assert len(found) >= len(starts) - 1  # the last marker may need the next one to close
    for detection, (_seq, start) in zip(found, starts, strict=False):
        assert abs(detection.sample - (start + offset)) <= SAMPLE_RATE // 100


def test_every_tag_and_sequence_round_trips() -> None:
    decoder = MarkerDecoder()
    for tag in range(16):
        signal, _ = _generate(ToneConfig(tag=tag, interval_s=0.2), 0.2 * 20)
        found = decoder.feed((signal * 32767).astype(np.int16))
        assert {d.tag for d in found} == {tag}
        assert [d.seq for d in found] == list(range(len(found)))


def test_sequence_numbers_cover_both_nibbles() -> None:
    config = ToneConfig(tag=3, interval_s=0.2)
    generator = ToneGenerator(config)
    generator.next_chunk(int(0.2 * SAMPLE_RATE) * 250)  # skip to sequence 250
    signal, starts = generator.next_chunk(int(0.2 * SAMPLE_RATE) * 10)
    found = MarkerDecoder().feed(signal)
    assert [d.seq for d in found] == [s for s, _ in starts][: len(found)]
    assert {250, 255, 0, 1} <= {d.seq for d in found}  # wraps at 256


def test_silence_and_plain_tone_carry_no_markers() -> None:
    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    assert MarkerDecoder().feed(np.zeros(SAMPLE_RATE * 2)) == []
    assert MarkerDecoder().feed(0.3 * np.sin(2 * np.pi * 440 * t)) == []


@pytest.mark.parametrize("amplitude_db", [-40.0, -20.0, -6.0, 0.0])
def test_level_of_a_sine(amplitude_db: float) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    peak = 10 ** (amplitude_db / 20)
    rms, measured_peak = level_dbfs(peak * np.sin(2 * np.pi * 1000 * t))
    assert rms == pytest.approx(amplitude_db - 3.01, abs=0.05)
    assert measured_peak == pytest.approx(amplitude_db, abs=0.05)


def test_level_of_silence_and_int16() -> None:
    assert level_dbfs(np.zeros(480)) == (float("-inf"), float("-inf"))
    assert level_dbfs(np.array([], dtype=np.int16))[0] == float("-inf")
    rms, _ = level_dbfs(np.full(480, 16384, dtype=np.int16))
    assert rms == pytest.approx(-6.02, abs=0.01)


@pytest.mark.parametrize(
    "kwargs", [{"tag": 16}, {"tag": -1}, {"interval_s": 0.1}, {"amplitude": 0.0}]
)
def test_bad_tone_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ToneConfig(**kwargs)  # type: ignore[arg-type]
