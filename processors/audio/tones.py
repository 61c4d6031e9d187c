"""In-band tone detectors on int16 mono audio: DTMF, beeps, ring-back, clipping.

Each detector is streaming and chunk-invariant: it cuts the stream into analysis windows at fixed
absolute sample positions (window ``k`` starts at ``k * hop``), carries the unfinished window and
its decision state across chunks (``to_state`` / ``from_state``, JSON-able), and reports events in
sample offsets from the track start. Feeding a signal in any split gives the same events. Time
parameters are given in ms and converted to samples once, at the detector's sample rate (Hz).
Every per-window number is computed row by row (Goertzel recurrences, per-window FFTs, exact
integer energies), so no result depends on how many windows a chunk completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from processors.audio.errors import AudioStateError
from processors.audio.pcm import Samples, samples_from_text, samples_to_text

Floats = npt.NDArray[np.float64]
FULL_SCALE = 32768.0
KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)


def samples_for(ms: float, rate_hz: int) -> int:
    """``ms`` milliseconds as a whole number of samples at ``rate_hz`` (at least 1)."""
    return max(1, round(ms * rate_hz / 1000.0))


class Windows:
    """Cuts a stream into ``size``-sample windows starting every ``hop`` samples, at absolute positions."""

    def __init__(self, size: int, hop: int) -> None:
        if not 0 < hop <= size:
            raise AudioStateError(f"window hop must be in 1..{size} samples, got {hop}")
        self.size, self.hop = size, hop
        self.next = 0  # index of the next window to emit
        self._buf = np.zeros(0, np.int16)  # samples from position next * hop on

    def push(self, samples: Samples) -> tuple[int, npt.NDArray[np.int16]]:
        """Feed samples; returns (index of the first completed window, completed windows (M, size))."""
        x = np.asarray(samples)
        if x.ndim != 1 or x.dtype != np.int16:
            raise AudioStateError(f"tone detectors take 1-D int16 samples, got {x.dtype} {x.shape}")
        buf = np.concatenate([self._buf, x])
        first = self.next
        if buf.size < self.size:
            self._buf = buf
            return first, np.zeros((0, self.size), np.int16)
        count = (buf.size - self.size) // self.hop + 1
        windows = sliding_window_view(buf, self.size)[:: self.hop][:count]
        self.next += count
        self._buf = buf[count * self.hop :]
        return first, windows

    def to_state(self) -> dict[str, object]:
        return {"next": self.next, "buf": samples_to_text(self._buf)}

    def restore(self, state: Mapping[str, object]) -> None:
        self.next = _int(state, "next")
        self._buf = samples_from_text(state.get("buf"), "window state 'buf'")


def goertzel(windows: npt.NDArray[np.int16], freqs_hz: tuple[float, ...], rate_hz: int) -> Floats:
    """Goertzel power |X(f)|^2 of each window (rows) at each frequency: shape (windows, freqs)."""
    x = windows.astype(np.float64)
    powers = np.empty((x.shape[0], len(freqs_hz)))
    if x.shape[0] == 0:
        return powers
    for i, freq in enumerate(freqs_hz):
        coef = 2.0 * np.cos(2.0 * np.pi * freq / rate_hz)
        s = signal.lfilter([1.0], [1.0, -coef, 1.0], x, axis=1)  # s[n] = x[n] + coef s[n-1] - s[n-2]
        s1, s2 = s[:, -1], s[:, -2]
        powers[:, i] = s1 * s1 + s2 * s2 - coef * s1 * s2
    return powers


def energy(windows: npt.NDArray[np.int16]) -> Floats:
    """Sum of squares of each window (exact integer arithmetic)."""
    wide = windows.astype(np.int64)
    sums: Floats = (wide * wide).sum(axis=1).astype(np.float64)
    return sums


def _int(state: Mapping[str, object], key: str) -> int:
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AudioStateError(f"detector state {key!r} must be an int, got {value!r}")
    return value


def _float(state: Mapping[str, object], key: str) -> float:
    value = state.get(key)
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise AudioStateError(f"detector state {key!r} must be a number, got {value!r}")
    return float(value)


def _opt(state: Mapping[str, object], key: str) -> int | None:
    return None if state.get(key) is None else _int(state, key)


# ---------------------------------------------------------------- DTMF


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
        self._min_energy = self._windows.size * (FULL_SCALE * 10 ** (p.min_level_dbfs / 20)) ** 2
        self._cand: str | None = None  # digit heard in the latest windows
        self._cand_start, self._cand_len = 0, 0
        self._active: str | None = None  # accepted digit, not yet ended
        self._active_start, self._last_hit, self._misses = 0, 0, 0

    def classify(self, windows: npt.NDArray[np.int16]) -> list[str | None]:
        """The digit each window holds, or None."""
        p, n = self.params, self._windows.size
        power = goertzel(windows, DTMF_ROWS_HZ + DTMF_COLS_HZ, self.rate)
        total = energy(windows)
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
        keys = np.argmax(power[:, :4], axis=1), np.argmax(power[:, 4:], axis=1)
        return [KEYPAD[r][c] if good else None for good, r, c in zip(ok, *keys, strict=True)]

    def push(self, samples: Samples) -> list[DtmfDigit]:
        """Feed samples; returns the digits that ended within them."""
        first, windows = self._windows.push(samples)
        return [d for k, c in enumerate(self.classify(windows), first) if (d := self._step(k, c))]

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
        detector._windows.restore(_mapping(state.get("windows")))
        detector._cand, detector._active = _digit(state, "cand"), _digit(state, "active")
        detector._cand_start, detector._cand_len = _int(state, "cand_start"), _int(state, "cand_len")
        detector._active_start, detector._last_hit = _int(state, "active_start"), _int(state, "last_hit")
        detector._misses = _int(state, "misses")
        return detector


def _digit(state: Mapping[str, object], key: str) -> str | None:
    value = state.get(key)
    if value is None or (isinstance(value, str) and len(value) == 1 and value in "".join(KEYPAD)):
        return value
    raise AudioStateError(f"DTMF state {key!r} must be a keypad character or null, got {value!r}")


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise AudioStateError(f"detector state part must be an object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------- beeps


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

    def frequency(self, window: npt.NDArray[np.int16]) -> float | None:
        """The window's steady-tone frequency (Hz, parabolic peak interpolation), or None if not tonal."""
        spectrum = np.abs(np.fft.rfft(window.astype(np.float64) * self._taper)) ** 2
        total = float(spectrum.sum())
        if total < self._min_power:
            return None
        k = int(self._band[np.argmax(spectrum[self._band])])
        if float(spectrum[k - 2 : k + 3].sum()) < self.params.tonality * total:
            return None
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-300)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
        return float(self._bins[k] + shift * (self._bins[1] - self._bins[0]))

    def push(self, samples: Samples) -> list[Beep]:
        """Feed samples; returns the beeps that ended within them."""
        first, windows = self._windows.push(samples)
        return [b for k, w in enumerate(windows, first) if (b := self._step(k, self.frequency(w)))]

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
        detector._windows.restore(_mapping(state.get("windows")))
        detector._run_start, detector._run_count = _opt(state, "run_start"), _int(state, "run_count")
        detector._run_first, detector._run_sum = _float(state, "run_first"), _float(state, "run_sum")
        return detector


# ---------------------------------------------------------------- ring-back


@dataclass(frozen=True)
class Cadence:
    """A ring-back tone: its frequencies (Hz) and nominal on/off times (ms)."""

    name: str
    freqs_hz: tuple[float, ...]
    on_ms: float
    off_ms: float


NORTH_AMERICA = Cadence("NA", (440.0, 480.0), 2000.0, 4000.0)
EUROPE = Cadence("EU", (425.0,), 1000.0, 4000.0)


@dataclass(frozen=True)
class RingParams:
    """Ring-back settings: 100 ms blocks; a burst counts as a ring when its length is within
    ``tolerance`` of the cadence's on time. Blocks are tonal when the cadence's tones hold
    ``tone_fraction`` of the energy (each at least ``min_share`` of it) and the other cadences'
    tones do not."""

    block_ms: float = 100.0
    tone_fraction: float = 0.7
    min_share: float = 0.2
    tolerance: float = 0.25
    min_level_dbfs: float = -45.0
    cadences: tuple[Cadence, ...] = (NORTH_AMERICA, EUROPE)


@dataclass(frozen=True)
class Ring:
    """One ring: its cadence name, number in the call (1, 2, ...), samples [start, end), and the
    silence since the previous ring of that cadence (samples; None for the first)."""

    cadence: str
    number: int
    start_sample: int
    end_sample: int
    off_samples: int | None


@dataclass
class _Burst:
    cadence: str | None = None
    start: int = 0  # first block
    blocks: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    last_end: dict[str, int] = field(default_factory=dict)  # end sample of the previous ring per cadence


class RingbackDetector:
    """Counts ring-back rings (North-American 440+480 Hz 2 s on / 4 s off, European 425 Hz 1 s / 4 s)."""

    def __init__(self, sample_rate: int, params: RingParams | None = None) -> None:
        self.rate, self.params = sample_rate, params or RingParams()
        size = samples_for(self.params.block_ms, sample_rate)
        self._windows = Windows(size, size)
        self._freqs = tuple(sorted({f for c in self.params.cadences for f in c.freqs_hz}))
        self._min_energy = size * (FULL_SCALE * 10 ** (self.params.min_level_dbfs / 20)) ** 2
        self._state = _Burst()

    def classify(self, blocks: npt.NDArray[np.int16]) -> list[str | None]:
        """The cadence whose tones each block holds, or None."""
        n = self._windows.size
        shares = 2.0 * goertzel(blocks, self._freqs, self.rate) / (n * np.maximum(energy(blocks), 1.0))[:, None]
        loud = energy(blocks) >= self._min_energy
        found: list[str | None] = []
        for row, ok in zip(shares, loud, strict=True):
            share = dict(zip(self._freqs, row, strict=True))
            match = [c for c in self.params.cadences if ok and self._holds(c, share)]
            found.append(match[0].name if len(match) == 1 else None)
        return found

    def _holds(self, cadence: Cadence, share: dict[float, float]) -> bool:
        own = [share[f] for f in cadence.freqs_hz]
        others = [share[f] for f in self._freqs if f not in cadence.freqs_hz]
        p = self.params
        return sum(own) >= p.tone_fraction and min(own) >= p.min_share and all(s < p.min_share for s in others)

    def push(self, samples: Samples) -> list[Ring]:
        """Feed samples; returns the rings that ended within them."""
        first, blocks = self._windows.push(samples)
        return [r for k, c in enumerate(self.classify(blocks), first) if (r := self._step(k, c))]

    def _step(self, k: int, cadence: str | None) -> Ring | None:
        burst = self._state
        if cadence is not None and cadence == burst.cadence:
            burst.blocks += 1
            return None
        ring = self._end()
        burst.cadence, burst.start, burst.blocks = cadence, k, int(cadence is not None)
        return ring

    def _end(self) -> Ring | None:
        burst, size = self._state, self._windows.size
        cadence = next((c for c in self.params.cadences if c.name == burst.cadence), None)
        burst.cadence = None
        if cadence is None:
            return None
        on = samples_for(cadence.on_ms, self.rate)
        if abs(burst.blocks * size - on) > self.params.tolerance * on:
            return None
        start, end = burst.start * size, (burst.start + burst.blocks) * size
        number = burst.counts.get(cadence.name, 0) + 1
        previous = burst.last_end.get(cadence.name)
        burst.counts[cadence.name], burst.last_end[cadence.name] = number, end
        return Ring(cadence.name, number, start, end, None if previous is None else start - previous)

    def flush(self) -> list[Ring]:
        """End of stream: the ring still sounding, if its length already fits."""
        return [r for r in [self._end()] if r]

    @property
    def rings(self) -> dict[str, int]:
        """Rings counted so far, per cadence name."""
        return dict(self._state.counts)

    def to_state(self) -> dict[str, object]:
        return {"windows": self._windows.to_state(), "burst": asdict(self._state)}

    @classmethod
    def from_state(
        cls, sample_rate: int, state: Mapping[str, object], params: RingParams | None = None
    ) -> RingbackDetector:
        detector = cls(sample_rate, params)
        detector._windows.restore(_mapping(state.get("windows")))
        burst = _mapping(state.get("burst"))
        counts, last_end = _mapping(burst.get("counts")), _mapping(burst.get("last_end"))
        cadence = burst.get("cadence")
        if cadence is not None and cadence not in {c.name for c in detector.params.cadences}:
            raise AudioStateError(f"ring-back state names unknown cadence {cadence!r}")
        detector._state = _Burst(
            None if cadence is None else str(cadence),
            _int(burst, "start"),
            _int(burst, "blocks"),
            {str(k): _int(counts, str(k)) for k in counts},
            {str(k): _int(last_end, str(k)) for k in last_end},
        )
        return detector


# ---------------------------------------------------------------- clipping


@dataclass(frozen=True)
class ClipParams:
    """Clipping settings: a sample is clipped when it is part of a run of at least ``min_run``
    consecutive samples of one sign with magnitude >= ``level`` (default 0.98 of full scale, which
    includes G.711's largest codes); ratios are reported per ``interval_ms``."""

    level: int = 32112
    min_run: int = 3
    interval_ms: float = 1000.0


@dataclass(frozen=True)
class ClipInterval:
    """Clipped samples within samples [start_sample, end_sample)."""

    start_sample: int
    end_sample: int
    clipped: int

    @property
    def ratio(self) -> float:
        """Clipped share of the interval's samples."""
        return self.clipped / (self.end_sample - self.start_sample)


class ClippingDetector:
    """Per-interval clipped-sample counts; intervals at fixed positions k * interval."""

    def __init__(self, sample_rate: int, params: ClipParams | None = None) -> None:
        self.rate, self.params = sample_rate, params or ClipParams()
        self.interval = samples_for(self.params.interval_ms, sample_rate)
        self.position = 0  # samples seen
        self._run_sign, self._run_start = 0, 0  # the open run of near-full-scale samples (sign 0: none)
        self._counted = 0  # samples of the open run already counted
        self._emitted = 0  # intervals emitted
        self._clipped: dict[int, int] = {}  # interval index -> clipped samples so far

    def push(self, samples: Samples) -> list[ClipInterval]:
        """Feed samples; returns the intervals completed (and settled) within them."""
        x = np.asarray(samples)
        if x.ndim != 1 or x.dtype != np.int16:
            raise AudioStateError(f"ClippingDetector takes 1-D int16 samples, got {x.dtype} {x.shape}")
        level = self.params.level
        sign = np.where(x >= level, 1, np.where(x <= -level, -1, 0)).astype(np.int8)
        if sign.size:
            edges = np.flatnonzero(np.diff(sign)) + 1  # run boundaries inside the chunk
            starts = np.concatenate([[0], edges])
            ends = np.concatenate([edges, [sign.size]])
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                self._extend(int(sign[s]), self.position + s, self.position + e)
        self.position += x.size
        return self._settled(self._run_start if self._run_sign and self._counted == 0 else self.position)

    def _extend(self, sign: int, start: int, end: int) -> None:
        """Samples [start, end) all have ``sign``; continue or replace the open run."""
        if sign != self._run_sign:
            self._run_sign, self._run_start, self._counted = sign, start, 0
        if sign == 0:
            return
        length = end - self._run_start
        if length >= self.params.min_run:
            self._count(self._run_start + self._counted, end)
            self._counted = length

    def _count(self, start: int, end: int) -> None:
        """Add clipped samples [start, end) to their intervals."""
        while start < end:
            index = start // self.interval
            stop = min(end, (index + 1) * self.interval)
            self._clipped[index] = self._clipped.get(index, 0) + stop - start
            start = stop

    def _settled(self, limit: int) -> list[ClipInterval]:
        """Emit every interval that ends at or before ``limit`` (nothing before it can change)."""
        out = []
        while (self._emitted + 1) * self.interval <= limit:
            index = self._emitted
            out.append(ClipInterval(index * self.interval, (index + 1) * self.interval, self._clipped.pop(index, 0)))
            self._emitted += 1
        return out

    def flush(self) -> list[ClipInterval]:
        """End of stream: the remaining intervals (the last one may be shorter)."""
        self._run_sign = 0
        out = self._settled(self.position)
        if self.position > self._emitted * self.interval:
            start = self._emitted * self.interval
            out.append(ClipInterval(start, self.position, self._clipped.pop(self._emitted, 0)))
            self._emitted += 1
        return out

    def to_state(self) -> dict[str, object]:
        return {
            "position": self.position,
            "run_sign": self._run_sign,
            "run_start": self._run_start,
            "counted": self._counted,
            "emitted": self._emitted,
            "clipped": {str(k): v for k, v in self._clipped.items()},
        }

    @classmethod
    def from_state(
        cls, sample_rate: int, state: Mapping[str, object], params: ClipParams | None = None
    ) -> ClippingDetector:
        detector = cls(sample_rate, params)
        detector.position, detector._run_sign = _int(state, "position"), _int(state, "run_sign")
        detector._run_start, detector._counted = _int(state, "run_start"), _int(state, "counted")
        detector._emitted = _int(state, "emitted")
        clipped = _mapping(state.get("clipped"))
        detector._clipped = {int(k): _int(clipped, k) for k in clipped}
        return detector
