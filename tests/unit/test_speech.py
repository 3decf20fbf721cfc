from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from talkplatform_agents.harness.process import HarnessError
from talkplatform_agents.harness.speech import speak, word_error_rate

SENTENCE = "Please share the quarterly budget before Friday."


def test_16k_mono_clip_has_its_speech_inside() -> None:
    clip = speak(SENTENCE)
    assert clip.samples.dtype == np.int16
    assert clip.samples.shape == (clip.samples.shape[0], 1)
    assert (clip.sample_rate, clip.channels, clip.text) == (16000, 1, SENTENCE)
    assert 0 <= clip.speech_start_ms < clip.speech_end_ms <= clip.duration_ms
    # Eight words at 150 wpm: a couple of seconds of speech, not a blip nor a minute.
    assert 1500 < clip.speech_ms < 6000
    # Silence around the speech, loud speech inside it.
    level = np.abs(clip.samples[:, 0].astype(np.int32))
    inside = level[clip.speech_start_ms * 16 : clip.speech_end_ms * 16]
    assert inside.max() > 3000
    after = level[(clip.speech_end_ms + 20) * 16 :]
    assert after.size == 0 or after.max() < 500


def test_48k_stereo_clip_is_the_same_speech() -> None:
    mono = speak(SENTENCE)
    stereo = speak(SENTENCE, sample_rate=48000, channels=2)
    assert stereo.samples.shape == (stereo.samples.shape[0], 2)
    assert (stereo.sample_rate, stereo.channels) == (48000, 2)
    assert np.array_equal(stereo.samples[:, 0], stereo.samples[:, 1])
    assert abs(stereo.samples.shape[0] / 3 - mono.samples.shape[0]) <= 1
    assert abs(stereo.speech_start_ms - mono.speech_start_ms) <= 10
    assert abs(stereo.speech_end_ms - mono.speech_end_ms) <= 10


def test_clips_are_cached_and_read_only() -> None:
    first = speak(SENTENCE, wpm=160)
    assert speak(SENTENCE, wpm=160) is first
    assert speak(SENTENCE, wpm=170) is not first
    # A faster rate says the same words in less time.
    assert speak(SENTENCE, wpm=300).speech_ms < first.speech_ms
    with pytest.raises(ValueError, match="read-only"):
        first.samples[0, 0] = 1


def test_a_clip_writes_a_wav(tmp_path: Path) -> None:
    clip = speak(SENTENCE, sample_rate=48000, channels=2)
    path = tmp_path / "speech.wav"
    clip.write_wav(path)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (48000, 2, 2)
        assert wav.getnframes() == clip.samples.shape[0]
        frames = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert np.array_equal(frames, clip.samples)


def test_text_starting_with_a_dash_is_spoken() -> None:
    clip = speak("-minus one")
    assert clip.speech_ms > 300


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="text"):
        speak("  ")
    with pytest.raises(ValueError, match="sample_rate"):
        speak(SENTENCE, sample_rate=100)
    with pytest.raises(ValueError, match="channels"):
        speak(SENTENCE, channels=0)
    with pytest.raises(ValueError, match="wpm"):
        speak(SENTENCE, wpm=5)
    with pytest.raises(HarnessError, match="zz-nope"):
        speak(SENTENCE, voice="zz-nope")


def test_missing_espeak_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessError, match="Debian package espeak-ng"):
        speak("a sentence no other test says")


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("the cat sat", "the cat sat", 0.0),
        ("The cat, sat!", "the CAT sat", 0.0),  # case and punctuation do not count
        ("don't stop", "dont stop", 0.0),
        ("the cat sat", "the dog sat", 1 / 3),  # a substitution
        ("the cat sat", "the sat", 1 / 3),  # a deletion
        ("the cat sat", "the cat sat down", 1 / 3),  # an insertion
        ("a b c d", "a x c", 2 / 4),
        ("one two", "", 1.0),
        ("one", "three four five", 3.0),  # insertions can take it past 1
        ("", "", 0.0),
        ("well-known fact", "well known fact", 0.0),
    ],
)
def test_word_error_rate(reference: str, hypothesis: str, expected: float) -> None:
    assert word_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_word_error_rate_needs_reference_words() -> None:
    with pytest.raises(ValueError, match="empty reference"):
        word_error_rate("...", "hello")
