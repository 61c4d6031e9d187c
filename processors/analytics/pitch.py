"""Fundamental frequency of short frames with the YIN method (de Cheveigné & Kawahara 2002).

For each frame start n, the difference function d(tau) = sum_j (x[n+j] - x[n+j+tau])^2 over a
30 ms integration window is normalised by its cumulative mean (d'); the first lag under
``YIN_THRESHOLD`` (then down to its local minimum), refined by a parabola, is the period. Lags
cover 60-400 Hz. A frame with no lag under the threshold has no f0 (NaN). The frame's
aperiodicity is the smallest d' over the lag range (0 = perfectly periodic, about 1 = noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.analytics.errors import InvalidInputError

MIN_F0_HZ = 60.0
MAX_F0_HZ = 400.0
FRAME_MS = 30
YIN_THRESHOLD = 0.2

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Framing:
    """Frame geometry at one sample rate, in samples."""

    sample_rate_hz: int
    frame: int  # integration window
    min_lag: int
    max_lag: int

    @classmethod
    def at(cls, sample_rate_hz: int) -> Framing:
        if sample_rate_hz <= 0:
            raise InvalidInputError(f"sample rate {sample_rate_hz} Hz is not positive")
        frame = sample_rate_hz * FRAME_MS // 1000
        return cls(sample_rate_hz, frame, math.floor(sample_rate_hz / MAX_F0_HZ), math.ceil(sample_rate_hz / MIN_F0_HZ))

    @property
    def span(self) -> int:
        """Samples a frame reads from its start: the window plus the longest lag (and one for interpolation)."""
        return self.frame + self.max_lag + 1


def f0_track(x: Floats, starts: Ints, framing: Framing) -> tuple[Floats, Floats]:
    """f0 in Hz (NaN where none) and aperiodicity of the frame at each start; ``start + span`` must fit in ``x``."""
    if starts.size == 0:
        return np.zeros(0), np.zeros(0)
    if int(starts.max()) + framing.span > x.size:
        raise InvalidInputError(f"frame at sample {int(starts.max())} needs {framing.span} samples, x has {x.size}")
    cmnd = _cmnd(x, starts, framing)
    f0 = np.full(starts.size, np.nan)
    for i, row in enumerate(cmnd):
        lag = _period(row, framing)
        if lag is not None:
            f0[i] = framing.sample_rate_hz / lag
    aperiodicity: Floats = cmnd[:, framing.min_lag : framing.max_lag + 1].min(axis=1)
    return f0, aperiodicity


def _cmnd(x: Floats, starts: Ints, framing: Framing) -> Floats:
    """Cumulative-mean-normalised difference d'(tau) for tau = 0 .. max_lag + 1, one row per frame."""
    w, lags = framing.frame, framing.max_lag + 2
    span = w + lags - 1
    segs = x[starts[:, None] + np.arange(span)[None, :]]
    n_fft = 1 << (span - 1).bit_length()
    head = np.fft.rfft(segs[:, :w], n_fft)
    full = np.fft.rfft(segs, n_fft)
    corr = np.fft.irfft(np.conj(head) * full, n_fft)[:, :lags]
    sq = np.concatenate([np.zeros((segs.shape[0], 1)), np.cumsum(segs * segs, axis=1)], axis=1)
    energy = sq[:, w : w + lags] - sq[:, :lags]  # sum of x[tau : tau + w]^2
    diff = np.maximum(energy[:, :1] + energy - 2.0 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd: Floats = np.ones(diff.shape)
    taus = np.arange(1, lags)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        cmnd[:, 1:] = np.where(running > 0, diff[:, 1:] * taus / running, 1.0)
    return cmnd


def _period(row: Floats, framing: Framing) -> float | None:
    """Refined period (samples) from one d' row, or None when no lag in range is under the threshold."""
    below = np.flatnonzero(row[framing.min_lag : framing.max_lag + 1] < YIN_THRESHOLD)
    if below.size == 0:
        return None
    lag = framing.min_lag + int(below[0])
    while lag < framing.max_lag and row[lag + 1] < row[lag]:
        lag += 1
    a, b, c = float(row[lag - 1]), float(row[lag]), float(row[lag + 1])
    curve = a - 2.0 * b + c
    shift = 0.5 * (a - c) / curve if curve > 0 else 0.0
    return lag + max(-0.5, min(0.5, shift))
