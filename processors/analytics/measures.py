"""Signal measures of one analysis window of one participant's audio (int16 mono, 8000 or 16000 Hz).

Frames are 30 ms long every 10 ms (``pitch.FRAME_MS``, ``HOP_MS``), starting at the window start; a
frame is read only if the window holds its whole YIN span, so the window alone decides the result.
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import find_peaks

from processors.analytics.errors import InvalidInputError
from processors.analytics.pitch import Floats, Framing, f0_track

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


@dataclass(frozen=True)
class Measures:
    """What one window's signal tells; None where it cannot be estimated."""

    speech_ms: int
    active_dbfs: float | None
    pitch_std_semitones: float | None
    syllable_rate: float | None


def measure_window(samples: npt.NDArray[np.int16], sample_rate_hz: int) -> Measures:
    """Measure one window of int16 samples."""
    if sample_rate_hz not in SAMPLE_RATES_HZ:
        raise InvalidInputError(f"prosody supports {SAMPLE_RATES_HZ} Hz, not {sample_rate_hz} Hz")
    framing = Framing.at(sample_rate_hz)
    x = samples.astype(np.float64)
    hop = sample_rate_hz * HOP_MS // 1000
    starts = np.arange(0, max(0, x.size - framing.span + 1), hop, dtype=np.int64)
    if starts.size == 0:
        return Measures(0, None, None, None)
    frames = x[starts[:, None] + np.arange(framing.frame)[None, :]]
    power = np.mean(frames * frames, axis=1)
    level = 10.0 * np.log10(np.maximum(power, 1e-10) / FULL_SCALE**2)
    active = (level >= ACTIVE_FLOOR_DBFS) & (level >= level.max() - ACTIVE_RANGE_DB)
    speech_ms = int(active.sum()) * HOP_MS
    f0, aperiodicity = np.full(starts.size, np.nan), np.ones(starts.size)
    if active.any():
        f0[active], aperiodicity[active] = f0_track(x, starts[active], framing)
    voiced = aperiodicity < VOICING_THRESHOLD
    pitch = _pitch_std(f0[~np.isnan(f0)])
    return Measures(speech_ms, _active_dbfs(power, active), pitch, _syllable_rate(level, active, voiced))


def _active_dbfs(power: Floats, active: npt.NDArray[np.bool_]) -> float | None:
    if int(active.sum()) * HOP_MS < MIN_SPEECH_MS:
        return None
    return 10.0 * math.log10(float(np.mean(power[active])) / FULL_SCALE**2)


def _pitch_std(f0: Floats) -> float | None:
    if f0.size < MIN_VOICED_FRAMES:
        return None
    return float(np.std(12.0 * np.log2(f0)))


def _syllable_rate(level: Floats, active: npt.NDArray[np.bool_], voiced: npt.NDArray[np.bool_]) -> float | None:
    phonation_ms = int(_fill_pauses(active).sum()) * HOP_MS
    if phonation_ms < MIN_PHONATION_MS:
        return None
    peaks, _ = find_peaks(level, height=level.max() - PEAK_RANGE_DB, prominence=MIN_DIP_DB)
    nuclei = int(np.count_nonzero(voiced[peaks] & active[peaks]))
    return nuclei * 1000 / phonation_ms


def _fill_pauses(active: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
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
