"""Known speech for the transcriber's tests and benchmark: espeak-ng clips, and word error rate.

``speak`` runs Debian's ``espeak-ng`` (scripts/debian-packages.sh installs it), resamples its
22.05 kHz mono output to the rate and channel count a test publishes, and finds where the
speech lies in the clip, so a test can check a segment's times against it. Clips are cached
in memory for the process: a test suite says the same sentences many times.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from talkplatform_agents.dsp import as_float
from talkplatform_agents.harness.process import HarnessError

__all__ = ["SPEECH_THRESHOLD_DBFS", "Clip", "speak", "word_error_rate"]

SPEECH_THRESHOLD_DBFS = -40.0
_WINDOW_MS = 10


@dataclass(frozen=True)
class Clip:
    """Speech samples, int16 of shape (n, channels) and read-only (clips are shared through
    the cache), and where the speech lies in them (ms from the clip's start)."""

    samples: npt.NDArray[np.int16]
    sample_rate: int
    channels: int
    text: str
    speech_start_ms: int
    speech_end_ms: int

    @property
    def duration_ms(self) -> int:
        return len(self.samples) * 1000 // self.sample_rate

    @property
    def speech_ms(self) -> int:
        return self.speech_end_ms - self.speech_start_ms

    def write_wav(self, path: Path) -> None:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(self.channels)
            out.setsampwidth(2)
            out.setframerate(self.sample_rate)
            out.writeframes(self.samples.astype("<i2").tobytes())


_cache: dict[tuple[str, int, int, str, int], Clip] = {}
_cache_lock = threading.Lock()


def speak(
    text: str, *, sample_rate: int = 16000, channels: int = 1, voice: str = "en-us", wpm: int = 150
) -> Clip:
    """``text`` spoken by espeak-ng with ``voice`` at ``wpm`` words per minute."""
    if not text.strip():
        raise ValueError("speak needs some text")
    if not 8000 <= sample_rate <= 192_000:
        raise ValueError(f"sample_rate must be 8000..192000 Hz, got {sample_rate}")
    if not 1 <= channels <= 8:
        raise ValueError(f"channels must be 1..8, got {channels}")
    if not 80 <= wpm <= 500:
        raise ValueError(f"wpm must be 80..500 (espeak-ng's range), got {wpm}")
    key = (text, sample_rate, channels, voice, wpm)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    mono, rate = _espeak(text, voice, wpm)
    mono = _resample(mono, rate, sample_rate)
    start_ms, end_ms = _speech_interval(mono, sample_rate)
    if end_ms <= start_ms:
        raise HarnessError("espeak-ng", f"no audible speech for {text!r} (voice {voice})")
    pcm = np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)
    samples = np.repeat(pcm[:, None], channels, axis=1)
    samples.flags.writeable = False
    clip = Clip(samples, sample_rate, channels, text, start_ms, end_ms)
    with _cache_lock:
        return _cache.setdefault(key, clip)


def _espeak(text: str, voice: str, wpm: int) -> tuple[npt.NDArray[np.float64], int]:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise HarnessError(
            "espeak-ng",
            "not found: install the Debian package espeak-ng (scripts/debian-packages.sh)",
        )
    with tempfile.TemporaryDirectory(prefix="tp-speech-") as tmp:
        wav_path = Path(tmp) / "speech.wav"
        # "--" so that a text beginning with "-" is spoken, not taken as an option.
        argv = [binary, "-v", voice, "-s", str(wpm), "-w", str(wav_path), "--", text]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 or not wav_path.exists():
            raise HarnessError(
                "espeak-ng",
                f"exit {done.returncode} speaking {text!r} with voice {voice!r}",
                log_tail=(done.stderr or done.stdout).strip(),
            )
        with wave.open(str(wav_path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise HarnessError("espeak-ng", f"{wav.getsampwidth() * 8}-bit WAV, expected 16")
            rate, channels = wav.getframerate(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    return as_float(pcm.astype(np.int16)).mean(axis=1), rate


def _resample(x: npt.NDArray[np.float64], rate: int, target: int) -> npt.NDArray[np.float64]:
    """Band-limited resampling through the spectrum: exact for a clip that starts and ends in
    silence (espeak's do), and no dependency beyond numpy."""
    if rate == target or x.size == 0:
        return x
    n_out = max(1, round(x.size * target / rate))
    spectrum = np.fft.rfft(x)
    bins = n_out // 2 + 1
    if bins <= spectrum.size:
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - spectrum.size, complex)])
    return np.fft.irfft(spectrum, n_out) * (n_out / x.size)


def _speech_interval(x: npt.NDArray[np.float64], rate: int) -> tuple[int, int]:
    """From the start of the first to the end of the last 10 ms window whose RMS level is
    above ``SPEECH_THRESHOLD_DBFS``; (0, 0) if none is."""
    window = max(1, rate * _WINDOW_MS // 1000)
    count = x.size // window
    if count == 0:
        return 0, 0
    frames = x[: count * window].reshape(count, window)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    loud = np.flatnonzero(rms > 10.0 ** (SPEECH_THRESHOLD_DBFS / 20.0))
    if loud.size == 0:
        return 0, 0
    to_ms = 1000.0 / rate
    return round(int(loud[0]) * window * to_ms), round((int(loud[-1]) + 1) * window * to_ms)


_APOSTROPHES = re.compile(r"['\u2019]")
_NOT_WORD = re.compile(r"[^\w]+")


def _words(text: str) -> list[str]:
    # "don't" and "dont" are one word; "well-known" is two, as a recogniser would say it.
    return _NOT_WORD.sub(" ", _APOSTROPHES.sub("", text.casefold())).replace("_", " ").split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level Levenshtein
    distance, ignoring case and punctuation. 0.0 when both are empty; a ValueError for an
    empty reference with a non-empty hypothesis (the rate has no denominator)."""
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        if hyp:
            raise ValueError(f"word error rate of {hypothesis!r} against an empty reference")
        return 0.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # the reference word deleted
                    current[j - 1] + 1,  # a word inserted
                    previous[j - 1] + (ref_word != hyp_word),  # kept or substituted
                )
            )
        previous = current
    return previous[-1] / len(ref)
