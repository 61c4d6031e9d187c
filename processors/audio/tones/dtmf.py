"""DTMF (touch-tone) key presses: Goertzel powers at the 8 keypad tones, twist and peak checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.audio.errors import AudioStateError
from processors.audio.pcm import Samples
from processors.audio.tones.bank import ToneBank, as_floats, energy
from processors.audio.tones.windows import FULL_SCALE, Windows, read_int, read_mapping, samples_for

KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYS = np.array([list(row) for row in KEYPAD])  # (row tone, column tone) -> key


@dataclass(frozen=True)
class DtmfParams:
    """DTMF detection settings. Windows of 25.6 ms (205 samples at 8 kHz), 10 ms apart.

    A digit needs ``min_windows`` consecutive windows in agreement (tones of >= 40 ms pass, < 23 ms
    do not, as ITU-T Q.24 asks) and ends after ``end_windows`` windows without it (so a 10 ms
    drop-out does not split a digit, a 40 ms pause does).
    """

    window_ms: float = 25.6
    hop_ms: float = 10.0
    min_windows: int = 2
    end_windows: int = 4
    min_level_dbfs: float = -40.0  # window RMS
    tone_fraction: float = 0.7  # share of the window's energy in the two tones
    peak_ratio_db: float = 6.0  # each tone above the other frequencies of its group
    max_normal_twist_db: float = 8.0  # high (column) tone above the low (row) tone
    max_reverse_twist_db: float = 4.0  # low tone above the high tone


@dataclass(frozen=True)
class DtmfDigit:
    """A detected key press: samples [start_sample, end_sample) of the windows that heard it."""

    digit: str
    start_sample: int
    end_sample: int


class DtmfDetector:
    """Goertzel DTMF detector with twist and relative-peak checks, minimum duration and gap."""

    def __init__(self, sample_rate: int, params: DtmfParams | None = None) -> None:
        self.rate, self.params = sample_rate, params or DtmfParams()
        p = self.params
        self._windows = Windows(samples_for(p.window_ms, sample_rate), samples_for(p.hop_ms, sample_rate))
        self._bank = ToneBank(self._windows.size, DTMF_ROWS_HZ + DTMF_COLS_HZ, sample_rate)
        self._min_energy = self._windows.size * (FULL_SCALE * 10 ** (p.min_level_dbfs / 20)) ** 2
        self._cand: str | None = None  # digit heard in the latest windows
        self._cand_start, self._cand_len = 0, 0
        self._active: str | None = None  # accepted digit, not yet ended
        self._active_start, self._last_hit, self._misses = 0, 0, 0

    def classify(self, windows: npt.NDArray[np.int16]) -> list[str | None]:
        """The digit each window (row of ``size`` samples) holds, or None."""
        p, n = self.params, self._windows.size
        x = as_floats(windows)
        power, total = self._bank.powers(x), energy(x)
        rows, cols = np.sort(power[:, :4], axis=1), np.sort(power[:, 4:], axis=1)
        row, col = rows[:, -1], cols[:, -1]
        ratio = 10 ** (p.peak_ratio_db / 10)
        ok = (
            (total >= self._min_energy)
            & (2.0 * (row + col) >= p.tone_fraction * n * total)
            & (row >= ratio * rows[:, -2])
            & (col >= ratio * cols[:, -2])
            & (col <= row * 10 ** (p.max_normal_twist_db / 10))
            & (row <= col * 10 ** (p.max_reverse_twist_db / 10))
        )
        keys = _KEYS[np.argmax(power[:, :4], axis=1), np.argmax(power[:, 4:], axis=1)]
        return [str(key) if good else None for good, key in zip(ok.tolist(), keys.tolist(), strict=True)]

    def push(self, samples: Samples) -> list[DtmfDigit]:
        """Feed samples; returns the digits that ended within them."""
        first, windows = self._windows.push(samples)
        heard = self.classify(windows)
        if self._active is None and heard and not any(heard):  # quiet: only the candidate resets
            self._cand, self._cand_start, self._cand_len = None, first + len(heard) - 1, 0
            return []
        return [d for k, c in enumerate(heard, first) if (d := self._step(k, c))]

    def _step(self, k: int, heard: str | None) -> DtmfDigit | None:
        if heard is not None and heard == self._cand:
            self._cand_len += 1
        else:
            self._cand, self._cand_start, self._cand_len = heard, k, int(heard is not None)
        ended = None
        if self._active is not None:
            if heard == self._active:
                self._last_hit, self._misses = k, 0
            else:
                self._misses += 1
                if self._misses >= self.params.end_windows:
                    ended = self._emit()
        if self._active is None and self._cand is not None and self._cand_len >= self.params.min_windows:
            self._active, self._active_start, self._last_hit, self._misses = self._cand, self._cand_start, k, 0
        return ended

    def _emit(self) -> DtmfDigit:
        assert self._active is not None
        w = self._windows
        digit = DtmfDigit(self._active, self._active_start * w.hop, self._last_hit * w.hop + w.size)
        self._active = None
        return digit

    def flush(self) -> list[DtmfDigit]:
        """End of stream: the digit still sounding, if any."""
        return [self._emit()] if self._active is not None else []

    def to_state(self) -> dict[str, object]:
        return {
            "windows": self._windows.to_state(),
            "cand": self._cand,
            "cand_start": self._cand_start,
            "cand_len": self._cand_len,
            "active": self._active,
            "active_start": self._active_start,
            "last_hit": self._last_hit,
            "misses": self._misses,
        }

    @classmethod
    def from_state(
        cls, sample_rate: int, state: Mapping[str, object], params: DtmfParams | None = None
    ) -> DtmfDetector:
        detector = cls(sample_rate, params)
        detector._windows.restore(read_mapping(state.get("windows")))
        detector._cand, detector._active = _digit(state, "cand"), _digit(state, "active")
        detector._cand_start, detector._cand_len = read_int(state, "cand_start"), read_int(state, "cand_len")
        detector._active_start, detector._last_hit = read_int(state, "active_start"), read_int(state, "last_hit")
        detector._misses = read_int(state, "misses")
        return detector


def _digit(state: Mapping[str, object], key: str) -> str | None:
    value = state.get(key)
    if value is None or (isinstance(value, str) and len(value) == 1 and value in "".join(KEYPAD)):
        return value
    raise AudioStateError(f"DTMF state {key!r} must be a keypad character or null, got {value!r}")
