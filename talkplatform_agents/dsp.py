"""Signal measures shared by bots and synthetic participants. Pure numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["as_float", "dominant_hz", "level_dbfs", "to_db", "ulaw_decode"]


Samples = npt.NDArray[np.floating] | npt.NDArray[np.integer]


def as_float(samples: Samples) -> npt.NDArray[np.float64]:
    """Samples in [-1, 1]: int16 is scaled, floats are taken as they are."""
    if samples.dtype == np.int16:
        return samples.astype(np.float64) / 32768.0
    return samples.astype(np.float64, copy=False)


def to_db(value: float) -> float:
    return 20.0 * float(np.log10(value)) if value > 0 else float("-inf")


def level_dbfs(samples: Samples) -> tuple[float, float]:
    """RMS and peak level in dBFS of float samples in [-1, 1] or int16 samples."""
    x = as_float(samples)
    if x.size == 0:
        return float("-inf"), float("-inf")
    rms = float(np.sqrt(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    return to_db(rms), to_db(peak)


def dominant_hz(samples: Samples, rate: int) -> float | None:
    """The strongest frequency in ``samples`` (a Hann-windowed FFT's peak bin), or None for
    silence: what tone a phone or a room is hearing."""
    x = as_float(samples)
    if x.size < 64 or float(np.max(np.abs(x), initial=0.0)) < 1e-3:
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    spectrum[0] = 0.0  # a DC offset is no tone
    return float(np.argmax(spectrum)) * rate / x.size


def ulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    """G.711 mu-law bytes (a PCMU payload) as 16-bit linear samples."""
    u = ~np.frombuffer(data, dtype=np.uint8)
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F).astype(np.int32) << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)
