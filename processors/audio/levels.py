"""Signal level of a block of int16 samples, in dB relative to a full-scale square wave (dBFS).

A full-scale square wave has RMS 0 dBFS; a full-scale sine -3.01 dBFS. Digital silence has no
finite level and is reported as None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Level:
    """RMS and peak level of a block; None where the block is digital silence (or empty)."""

    rms_dbfs: float | None
    peak_dbfs: float | None


def measure(samples: npt.NDArray[np.int16]) -> Level:
    """Level over all samples of the block (every channel together)."""
    if samples.size == 0:
        return Level(None, None)
    x = samples.astype(np.float64).ravel()
    rms = math.sqrt(float(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    return Level(_dbfs(rms), _dbfs(peak))


def _dbfs(value: float) -> float | None:
    return 20.0 * math.log10(value / FULL_SCALE) if value > 0 else None
