from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from talkplatform_agents.bots.recorder.audio_file import OpusFileWriter
from talkplatform_agents.bots.recorder.mixer import AudioMixer, MixerConfig
from talkplatform_agents.bots.recorder.timeline import SourceClock

RATE = 48_000
BLOCK = RATE // 50
FRAME = RATE // 100  # what an AudioStream delivers: 10 ms


def _tone(n: int, hz: float, amplitude: int = 8000) -> np.ndarray:
    return (np.sin(2 * np.pi * hz * np.arange(n) / RATE) * amplitude).astype(np.int16)


def _band_energy(signal: np.ndarray, hz: float, window: int = BLOCK) -> np.ndarray:
    """Per ``window``: the share of energy at ``hz`` (one FFT bin, 50 Hz wide)."""
    n = len(signal) // window
    spectrum = np.abs(np.fft.rfft(signal[: n * window].reshape(n, window), axis=1)) ** 2
    return spectrum[:, round(hz * window / RATE)] / np.maximum(spectrum.sum(axis=1), 1e-9)


def test_two_sources_land_where_they_were_placed() -> None:
    """A speaks 0.5 s .. 1.5 s, B 1.0 s .. 2.0 s; frames arrive as they are spoken and the
    clock pulls after each 10 ms; a source that is not speaking sends nothing."""
    mixer = AudioMixer()
    a, b = _tone(RATE, 500.0), _tone(RATE, 1500.0)
    blocks = []
    for t in range(0, 2 * RATE, FRAME):
        if RATE // 2 <= t < 3 * RATE // 2:
            mixer.push("a", a[t - RATE // 2 :][:FRAME], t)
        if t >= RATE:
            mixer.push("b", b[t - RATE :][:FRAME], t)
        blocks += mixer.pull(t + FRAME)
    blocks += mixer.drain()
    assert [p for p, _ in blocks] == list(range(0, 2 * RATE, BLOCK))
    mixed = np.concatenate([b for _, b in blocks])[:, 0]
    has_a, has_b = _band_energy(mixed, 500.0) > 0.2, _band_energy(mixed, 1500.0) > 0.2
    per_s = RATE // BLOCK
    # Whole 20 ms blocks: A in 0.5..1.5 s, B in 1.0..2.0 s, silence before 0.5 s.
    assert list(np.flatnonzero(has_a)) == list(range(per_s // 2, 3 * per_s // 2))
    assert list(np.flatnonzero(has_b)) == list(range(per_s, 2 * per_s))
    assert not mixed[: RATE // 2].any()
    assert mixer.stats.late_samples == mixer.stats.overlap_samples == 0


def test_sums_clip_instead_of_wrapping() -> None:
    mixer = AudioMixer()
    loud = np.full(BLOCK, 30_000, np.int16)
    mixer.push("a", loud, 0)
    mixer.push("b", loud, 0)
    mixer.push("c", -loud, BLOCK)
    mixer.push("d", -loud, BLOCK)
    (_, first), (_, second) = mixer.drain()
    assert (first == 32767).all() and (second == -32768).all()
    assert mixer.stats.clipped_samples == 2 * BLOCK


def test_waits_for_every_source_up_to_the_latency_bound() -> None:
    mixer = AudioMixer(MixerConfig(max_latency_ms=200))
    mixer.add_source("slow")
    mixer.push("fast", _tone(RATE, 500.0), 0)
    assert mixer.pull(0) == []  # "slow" has not delivered block 0 yet
    latency = RATE // 5
    assert mixer.pull(BLOCK + latency - 1) == []
    sent = mixer.pull(BLOCK + latency)
    assert [p for p, _ in sent] == [0]  # block 0 goes out, silence from "slow"
    mixer.push("slow", _tone(2 * BLOCK, 900.0), 0)  # too late for block 0
    assert mixer.stats.late_samples == BLOCK
    more = mixer.pull(BLOCK + latency)
    assert [p for p, _ in more] == [BLOCK]  # both have now passed block 1
    assert _band_energy(more[0][1][:, 0], 900.0)[0] > 0.2


def test_nobody_speaking_is_silence_on_the_clock() -> None:
    mixer = AudioMixer()
    blocks = mixer.pull(RATE + RATE // 5)  # one second (plus the latency) of nothing
    assert [p for p, _ in blocks] == list(range(0, RATE, BLOCK))
    assert not any(b.any() for _, b in blocks)


def test_an_overlap_from_one_source_is_not_added_twice() -> None:
    mixer = AudioMixer()
    tone = _tone(2 * BLOCK, 500.0)
    mixer.push("a", tone, 0)
    mixer.push("a", tone, BLOCK)  # the first half repeats what it sent
    assert mixer.stats.overlap_samples == BLOCK
    mixed = np.concatenate([b for _, b in mixer.drain()])[:, 0]
    assert np.array_equal(mixed, np.concatenate([tone, tone[BLOCK:]]))


def test_positions_beyond_the_horizon_are_dropped() -> None:
    mixer = AudioMixer(MixerConfig(horizon_ms=1000))
    mixer.push("a", np.ones(BLOCK, np.int16), 10 * RATE)
    assert mixer.stats.early_samples == BLOCK
    with pytest.raises(ValueError, match="int16"):
        mixer.push("a", np.ones(BLOCK, np.float32), 0)


def test_an_hour_does_not_drift() -> None:
    """Two sources for an hour, in 0.5 s pushes, on a clock that pulls at odd moments: the
    mix is exactly an hour long and a click placed at 59:59.5 comes out at that sample."""
    mixer = AudioMixer()
    chunk = RATE // 2
    quiet = np.zeros(chunk, np.int16)
    click_at = 3599 * RATE + RATE // 2
    total, click_found = 0, -1
    for pts in range(0, 3600 * RATE, chunk):
        mixer.push("a", quiet, pts)
        samples = quiet.copy()
        if pts <= click_at < pts + chunk:
            samples[click_at - pts] = 10_000
        mixer.push("b", samples, pts)
        for position, block in mixer.pull(pts + 7919):  # any clock behind the sources
            assert position == total
            if block.any():
                click_found = position + int(np.flatnonzero(block[:, 0])[0])
            total += len(block)
    for position, block in mixer.drain():
        assert position == total
        if block.any():
            click_found = position + int(np.flatnonzero(block[:, 0])[0])
        total += len(block)
    assert total == 3600 * RATE
    assert click_found == click_at


def test_source_clock_counts_samples_through_jitter_and_jumps_gaps() -> None:
    origin = 1_000_000_000
    clock = SourceClock(RATE, origin, gap_ms=500)
    rng = np.random.default_rng(1)
    placed = []
    for i in range(1, 301):  # 3 s of 10 ms frames arriving up to 150 ms late, in bursts
        arrival = origin + i * 10_000_000 + int(rng.integers(0, 150)) * 1_000_000
        placed.append(clock.place(arrival, FRAME))
    assert placed == [placed[0] + k * FRAME for k in range(300)]  # jitter never moves them
    assert clock.resyncs == 0
    resumed = clock.place(origin + 10 * 1_000_000_000, FRAME)  # silent 3 s .. 10 s
    assert resumed == 10 * RATE - FRAME and clock.resyncs == 1


def test_mixed_audio_round_trips_through_an_opus_file(tmp_path: Path) -> None:
    mixer = AudioMixer()
    path = tmp_path / "mixed.ogg"
    writer = OpusFileWriter(path)
    mixer.push("a", _tone(RATE // 2, 500.0), 0)
    mixer.push("b", _tone(RATE // 2, 1500.0), RATE)
    for position, block in [*mixer.pull(RATE), *mixer.drain()]:
        writer.write(block, position)
    writer.close()
    with av.open(str(path)) as container:
        decoded = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert len(decoded) == int(1.5 * RATE)
    blocks_per_s = RATE // BLOCK
    a = np.flatnonzero(_band_energy(decoded, 500.0) > 0.2)
    b = np.flatnonzero(_band_energy(decoded, 1500.0) > 0.2)
    assert abs(int(a[0])) <= 1 and abs(int(a[-1]) - (blocks_per_s // 2 - 1)) <= 1
    assert abs(int(b[0]) - blocks_per_s) <= 1 and abs(int(b[-1]) - (3 * blocks_per_s // 2 - 1)) <= 1
