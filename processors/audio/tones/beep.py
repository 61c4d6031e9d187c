"""Answering-machine / recording beeps: one steady tone, found in Hann-windowed spectra."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.audio.pcm import Samples
from processors.audio.tones.bank import as_floats
from processors.audio.tones.windows import (
    FULL_SCALE,
    Windows,
    read_float,
    read_int,
    read_mapping,
    read_optional_int,
    samples_for,
)

_LOBE = np.arange(-2, 3)  # the peak bin and 2 either side: the main lobe of a Hann window
_VERTEX = np.arange(-1, 2)  # the peak bin and its neighbours: the parabola through their log powers


@dataclass(frozen=True)
class BeepParams:
    """Beep detection settings: one steady tone in [min_hz, max_hz] for at least ``min_ms``.

    Windows of ``window_ms`` (Hann), ``hop_ms`` apart; a window is tonal when the peak's main lobe
    (peak bin +-2) holds ``tonality`` of its energy and its level is at least ``min_level_dbfs``.
    """

    window_ms: float = 32.0
    hop_ms: float = 10.0
    min_hz: float = 400.0
    max_hz: float = 2000.0
    min_ms: float = 150.0
    tonality: float = 0.9
    max_drift_hz: float = 20.0
    min_level_dbfs: float = -40.0


@dataclass(frozen=True)
class Beep:
    """A steady tone: samples [start_sample, end_sample), mean frequency in Hz."""

    start_sample: int
    end_sample: int
    frequency_hz: float


class BeepDetector:
    """Answering-machine / recording beep detector (steady single tone)."""

    def __init__(self, sample_rate: int, params: BeepParams | None = None) -> None:
        self.rate, self.params = sample_rate, params or BeepParams()
        p = self.params
        self._windows = Windows(samples_for(p.window_ms, sample_rate), samples_for(p.hop_ms, sample_rate))
        size = self._windows.size
        self._taper = np.hanning(size)
        self._bins = np.fft.rfftfreq(size, 1.0 / sample_rate)
        inside = (self._bins >= max(p.min_hz, self._bins[2])) & (self._bins <= min(p.max_hz, self._bins[-3]))
        self._band = np.nonzero(inside)[0]  # peaks need 2 bins either side
        # the rfft bins of a tapered window hold size/2 times its energy (Parseval, one-sided)
        self._min_power = size / 2.0 * float(np.sum(self._taper**2)) * (FULL_SCALE * 10 ** (p.min_level_dbfs / 20)) ** 2
        self._run_start: int | None = None  # first window of the current tonal run
        self._run_count = 0  # its windows
        self._run_first = 0.0  # its first window's frequency (Hz): the reference for drift
        self._run_sum = 0.0  # sum of its windows' frequencies (Hz)

    def frequencies(self, windows: npt.NDArray[np.int16]) -> list[float | None]:
        """Each window's steady-tone frequency (Hz, parabolic peak interpolation), or None if not tonal.

        One FFT call for all windows; numpy transforms each row on its own, so a window's numbers do
        not depend on the other rows of the batch.
        """
        spectrum = np.abs(np.fft.rfft(as_floats(windows) * self._taper, axis=1)) ** 2
        total = spectrum.sum(axis=1)
        rows = np.arange(spectrum.shape[0])[:, None]
        peak = self._band[np.argmax(spectrum[:, self._band], axis=1)][:, None]  # (windows, 1) bin index
        lobe = spectrum[rows, peak + _LOBE].sum(axis=1)
        tonal = (total >= self._min_power) & (lobe >= self.params.tonality * total)
        if not tonal.any():
            return [None] * spectrum.shape[0]
        a, b, c = np.log(spectrum[rows, peak + _VERTEX] + 1e-300).T
        curve = a - 2 * b + c
        shift = np.zeros_like(curve)
        np.divide(0.5 * (a - c), curve, out=shift, where=tonal & (curve != 0))
        found = self._bins[peak[:, 0]] + shift * (self._bins[1] - self._bins[0])
        return [f if t else None for f, t in zip(found.tolist(), tonal.tolist(), strict=True)]

    def push(self, samples: Samples) -> list[Beep]:
        """Feed samples; returns the beeps that ended within them."""
        first, windows = self._windows.push(samples)
        found = self.frequencies(windows)
        if self._run_start is None and not any(f is not None for f in found):  # no run, no tone
            self._run_count, self._run_sum = 0, 0.0
            return []
        return [b for k, f in enumerate(found, first) if (b := self._step(k, f))]

    def _step(self, k: int, freq: float | None) -> Beep | None:
        if freq is not None and (self._run_start is None or abs(freq - self._run_first) <= self.params.max_drift_hz):
            if self._run_start is None:
                self._run_start, self._run_first = k, freq
            self._run_count, self._run_sum = self._run_count + 1, self._run_sum + freq
            return None
        beep = self._end()
        if freq is not None:  # a different tone starts a new run
            self._run_start, self._run_first, self._run_count, self._run_sum = k, freq, 1, freq
        return beep

    def _end(self) -> Beep | None:
        """Close the current run: a Beep if it lasted long enough. Duration = windows x hop."""
        start, count, total = self._run_start, self._run_count, self._run_sum
        self._run_start, self._run_count, self._run_sum = None, 0, 0.0
        w = self._windows
        if start is None or count * w.hop < samples_for(self.params.min_ms, self.rate):
            return None
        begin = start * w.hop + (w.size - w.hop) // 2  # centre of the first window, minus half a hop
        return Beep(begin, begin + count * w.hop, round(total / count, 1))

    def flush(self) -> list[Beep]:
        """End of stream: the beep still sounding, if long enough."""
        return [b for b in [self._end()] if b]

    def to_state(self) -> dict[str, object]:
        return {
            "windows": self._windows.to_state(),
            "run_start": self._run_start,
            "run_count": self._run_count,
            "run_first": self._run_first,
            "run_sum": self._run_sum,
        }

    @classmethod
    def from_state(
        cls, sample_rate: int, state: Mapping[str, object], params: BeepParams | None = None
    ) -> BeepDetector:
        detector = cls(sample_rate, params)
        detector._windows.restore(read_mapping(state.get("windows")))
        detector._run_start, detector._run_count = read_optional_int(state, "run_start"), read_int(state, "run_count")
        detector._run_first, detector._run_sum = read_float(state, "run_first"), read_float(state, "run_sum")
        return detector
