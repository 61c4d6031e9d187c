"""Signal measures of one analysis window of one participant's audio (int16 mono, 8000 or 16000 Hz).

Frames are 30 ms long every 10 ms (``pitch.FRAME_MS``, ``HOP_MS``), starting at the window start; a
frame is read only if the window holds its whole YIN span (``Framing.span`` samples), so the window
alone decides the result.
- Active frame: frame RMS >= ``ACTIVE_FLOOR_DBFS`` and within ``ACTIVE_RANGE_DB`` of the window's
  loudest frame (an energy gate, not a trained detector).
- ``active_dbfs``: RMS over the active frames (mean of their mean squares), dB re full-scale square wave,
  as ``processors.audio.levels``. None when active time < ``MIN_SPEECH_MS``.
- ``pitch_std_semitones``: standard deviation of 12*log2(f0) over the active frames with an f0 (YIN
  lag under ``pitch.YIN_THRESHOLD``). None when fewer than ``MIN_VOICED_FRAMES``.
- ``syllable_rate``: syllable nuclei per second of phonation (de Jong & Wempe 2009): peaks of the
  frame intensity contour (dB) at least ``PEAK_RANGE_DB`` within the loudest frame, with a prominence
  (dip to the higher of the surrounding minima) of at least ``MIN_DIP_DB``, on active voiced frames
  (aperiodicity under ``VOICING_THRESHOLD``, more lenient than the f0 pick: fast speech blurs periods).
  Phonation = active frames plus pauses shorter than ``MIN_PAUSE_MS``. None when phonation < ``MIN_PHONATION_MS``.

Two ways in, with bit-identical results: ``measure_window`` takes the whole window at once (the
reference); ``frame_features`` + ``measure_frames`` let a stream compute each frame's features as
soon as its span is complete and measure the window from them at its end. A frame's YIN result depends
only on its own samples, and the "within ``ACTIVE_RANGE_DB`` of the loudest frame" part of the gate is
only known at the window end, so ``frame_features`` runs YIN on every frame at or above the floor (a
superset of the active frames) and ``measure_frames`` applies the whole gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import find_peaks

from processors.analytics.errors import InvalidInputError
from processors.analytics.pitch import Floats, Framing, Ints, f0_track

SAMPLE_RATES_HZ = (8000, 16000)
HOP_MS = 10
FULL_SCALE = 32768.0
ACTIVE_FLOOR_DBFS = -55.0
ACTIVE_RANGE_DB = 30.0
MIN_SPEECH_MS = 500
MIN_VOICED_FRAMES = 50
PEAK_RANGE_DB = 25.0
MIN_DIP_DB = 2.0
MIN_PAUSE_MS = 300
MIN_PHONATION_MS = 1000
VOICING_THRESHOLD = 0.35
# YIN runs on frames down to this far below the floor, so a last-ulp difference between two evaluations
# of a frame's level (dB) can never leave an active frame without its f0.
YIN_MARGIN_DB = 1e-6
# One record per frame, 17 bytes packed: mean square power (int16 units^2), f0 in Hz (NaN: no pitch,
# or below the floor so never computed), voiced (aperiodicity < VOICING_THRESHOLD; 0 when not computed).
FRAME_FEATURES = np.dtype([("power", "<f8"), ("f0", "<f8"), ("voiced", "u1")])

Bools = npt.NDArray[np.bool_]
Features = npt.NDArray[np.void]


@dataclass(frozen=True)
class Measures:
    """What one window's signal tells; None where it cannot be estimated."""

    speech_ms: int
    active_dbfs: float | None
    pitch_std_semitones: float | None
    syllable_rate: float | None


def framing_at(sample_rate_hz: int) -> Framing:
    """Frame geometry (samples) at a supported sample rate."""
    if sample_rate_hz not in SAMPLE_RATES_HZ:
        raise InvalidInputError(f"prosody supports {SAMPLE_RATES_HZ} Hz, not {sample_rate_hz} Hz")
    return Framing.at(sample_rate_hz)


def hop_samples(sample_rate_hz: int) -> int:
    """Samples between consecutive frame starts."""
    return sample_rate_hz * HOP_MS // 1000


def frame_starts(n_samples: int, framing: Framing) -> Ints:
    """Start (sample) of every frame whose whole span lies in ``n_samples`` samples, every hop from 0."""
    hop = hop_samples(framing.sample_rate_hz)
    return np.arange(0, max(0, n_samples - framing.span + 1), hop, dtype=np.int64)


def measure_window(samples: npt.NDArray[np.int16], sample_rate_hz: int) -> Measures:
    """Measure one window of int16 samples, all at once."""
    framing = framing_at(sample_rate_hz)
    x = samples.astype(np.float64)
    starts = frame_starts(x.size, framing)
    if starts.size == 0:
        return Measures(0, None, None, None)
    power = _power(x, starts, framing)
    level = _level(power)
    active = _active(level)
    f0, aperiodicity = np.full(starts.size, np.nan), np.ones(starts.size)
    if active.any():
        f0[active], aperiodicity[active] = f0_track(x, starts[active], framing)
    return _measures(power, level, active, f0, aperiodicity < VOICING_THRESHOLD)


def frame_features(samples: npt.NDArray[np.int16], sample_rate_hz: int) -> Features:
    """``FRAME_FEATURES`` of the frames at 0, hop, 2 hop, ... whose whole span lies in ``samples``."""
    framing = framing_at(sample_rate_hz)
    x = samples.astype(np.float64)
    starts = frame_starts(x.size, framing)
    out = np.zeros(starts.size, FRAME_FEATURES)
    if starts.size == 0:
        return out
    out["power"] = _power(x, starts, framing)
    out["f0"] = np.nan
    candidate = _level(out["power"]) >= ACTIVE_FLOOR_DBFS - YIN_MARGIN_DB
    if candidate.any():
        f0, aperiodicity = f0_track(x, starts[candidate], framing)
        out["f0"][candidate] = f0
        out["voiced"][candidate] = aperiodicity < VOICING_THRESHOLD
    return out


def measure_frames(features: Features) -> Measures:
    """Measure one window from the ``FRAME_FEATURES`` of all its frames, in order."""
    if features.size == 0:
        return Measures(0, None, None, None)
    power = np.array(features["power"], dtype=np.float64)  # contiguous, as in measure_window
    level = _level(power)
    active = _active(level)
    f0 = np.where(active, features["f0"], np.nan)
    voiced = active & (features["voiced"] != 0)
    return _measures(power, level, active, f0, voiced)


def _power(x: Floats, starts: Ints, framing: Framing) -> Floats:
    """Mean square of each frame (int16 units^2); exact, as the sums of squares of int16 stay below 2^53."""
    frames = x[starts[:, None] + np.arange(framing.frame)[None, :]]
    power: Floats = np.mean(frames * frames, axis=1)
    return power


def _level(power: Floats) -> Floats:
    """Frame level, dB re full-scale square wave."""
    level: Floats = 10.0 * np.log10(np.maximum(power, 1e-10) / FULL_SCALE**2)
    return level


def _active(level: Floats) -> Bools:
    active: Bools = (level >= ACTIVE_FLOOR_DBFS) & (level >= level.max() - ACTIVE_RANGE_DB)
    return active


def _measures(power: Floats, level: Floats, active: Bools, f0: Floats, voiced: Bools) -> Measures:
    """Measures from per-frame arrays; ``f0`` is NaN and ``voiced`` False on every inactive frame."""
    speech_ms = int(active.sum()) * HOP_MS
    pitch = _pitch_std(f0[~np.isnan(f0)])
    return Measures(speech_ms, _active_dbfs(power, active), pitch, _syllable_rate(level, active, voiced))


def _active_dbfs(power: Floats, active: Bools) -> float | None:
    if int(active.sum()) * HOP_MS < MIN_SPEECH_MS:
        return None
    return 10.0 * math.log10(float(np.mean(power[active])) / FULL_SCALE**2)


def _pitch_std(f0: Floats) -> float | None:
    if f0.size < MIN_VOICED_FRAMES:
        return None
    return float(np.std(12.0 * np.log2(f0)))


def _syllable_rate(level: Floats, active: Bools, voiced: Bools) -> float | None:
    phonation_ms = int(_fill_pauses(active).sum()) * HOP_MS
    if phonation_ms < MIN_PHONATION_MS:
        return None
    peaks, _ = find_peaks(level, height=level.max() - PEAK_RANGE_DB, prominence=MIN_DIP_DB)
    nuclei = int(np.count_nonzero(voiced[peaks] & active[peaks]))
    return nuclei * 1000 / phonation_ms


def _fill_pauses(active: Bools) -> Bools:
    """Active frames with inner inactive runs shorter than ``MIN_PAUSE_MS`` filled in."""
    filled = active.copy()
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return filled
    gaps = np.flatnonzero(np.diff(idx) > 1)
    for g in gaps:
        left, right = int(idx[g]), int(idx[g + 1])
        if (right - left - 1) * HOP_MS < MIN_PAUSE_MS:
            filled[left + 1 : right] = True
    return filled
