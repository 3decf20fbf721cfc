"""Signal measures shared by bots and synthetic participants. Pure numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["as_float", "level_dbfs", "to_db"]


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
