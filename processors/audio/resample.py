"""Chunk-invariant polyphase resampling of int16 audio (filter designed once with scipy.signal).

The rate ratio is reduced to ``up/down`` (by the gcd). Output sample ``m`` is the same sum as
``scipy.signal.resample_poly(x, up, down, window=taps)``: the input upsampled by ``up`` (zeros in
between), filtered by a linear-phase Kaiser low-pass centred on its middle tap, taken at ``m * down``.

Chunk invariance is exact, not approximate: the taps are rounded to multiples of ``2**-q`` small
enough that every product and every partial sum of int16 input is an exactly representable
float64. The result is then independent of summation order, so feeding a signal in any split
(or resuming from ``to_state``) yields bit-identical output to feeding it whole. Rounding the taps
costs nothing audible (they keep > 35 significant bits).

Filter: pass band up to ``PASS_FRACTION`` of the lower of the two Nyquist frequencies, stop band
from that Nyquist frequency on, ``STOP_DB`` attenuation (so no aliasing when going down, no images
when going up). Units: rates in Hz, positions in samples.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from processors.audio.errors import AudioStateError
from processors.audio.pcm import Samples, samples_from_text, samples_to_text

PASS_FRACTION = 0.85
STOP_DB = 70.0
_EXACT = 2.0**53
_BLOCK_OUTPUTS = 1 << 15  # outputs computed per matrix product (bounds memory on whole files)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Polyphase:
    """A designed filter: ``taps`` (odd count, gain ``up``, rounded to multiples of 2**-q), centred
    on tap ``half_len``, and its phases. Output ``m`` sits at ``t = m * down + half_len`` in the
    upsampled signal and is ``reversed[t % up] @ x[t // up - width + 1 : t // up + 1]``."""

    up: int
    down: int
    taps: Floats
    half_len: int
    reversed: Floats  # (up, width): phase p's taps, oldest input first

    @property
    def width(self) -> int:
        """Input samples each output depends on (taps per phase)."""
        return int(self.reversed.shape[1])


@functools.cache
def design(up: int, down: int) -> Polyphase:
    """Design the low-pass filter for an ``up/down`` rate change (coprime; not both 1)."""
    band = 1.0 / max(up, down)  # the lower Nyquist frequency, relative to the upsampled Nyquist
    numtaps, beta = signal.kaiserord(STOP_DB, band * (1.0 - PASS_FRACTION))
    numtaps += 1 - numtaps % 2  # odd: symmetric around a middle tap
    ideal = signal.firwin(numtaps, band * (1.0 + PASS_FRACTION) / 2.0, window=("kaiser", beta)) * up
    width = -(-numtaps // up)
    padded = np.zeros(width * up)
    padded[:numtaps] = ideal
    worst = float(np.abs(padded.reshape(width, up)).sum(axis=0).max())
    q = math.floor(math.log2(_EXACT / (32768.0 * worst))) - 1  # one bit of margin for the rounding
    scale = 2.0**q
    taps = np.rint(ideal * scale) / scale
    padded[:numtaps] = taps
    phases = padded.reshape(width, up).T  # phases[p, j] = taps[p + j * up] multiplies input t // up - j
    return Polyphase(up, down, taps, (numtaps - 1) // 2, np.ascontiguousarray(phases[:, ::-1]))


def ratio(from_hz: int, to_hz: int) -> tuple[int, int]:
    """(up, down) for a rate change, reduced by the gcd."""
    if from_hz <= 0 or to_hz <= 0:
        raise AudioStateError(f"sample rates must be positive, got {from_hz} Hz -> {to_hz} Hz")
    g = math.gcd(from_hz, to_hz)
    return to_hz // g, from_hz // g


class StreamResampler:
    """Resample one mono int16 stream chunk after chunk; outputs float64 on the int16 scale.

    Output ``m`` is at time ``m / to_hz`` s, aligned with input ``0`` at time 0; after ``flush``
    exactly ``ceil(inputs * to_hz / from_hz)`` outputs have been produced.
    """

    def __init__(self, from_hz: int, to_hz: int) -> None:
        self.from_hz, self.to_hz = from_hz, to_hz
        self.up, self.down = ratio(from_hz, to_hz)
        self.inputs = 0  # samples pushed
        self.outputs = 0  # samples produced
        self.finished = False
        self._filter = design(self.up, self.down) if (self.up, self.down) != (1, 1) else None
        self._base = min(0, self._first_input(0))  # input index of history[0]; inputs before 0 are zeros
        self._history: Floats = np.zeros(-self._base)

    def push(self, samples: Samples) -> Floats:
        """Feed the next int16 samples (1-D); returns every output they complete."""
        self._check_open()
        x = np.asarray(samples)
        if x.ndim != 1 or x.dtype != np.int16:
            raise AudioStateError(f"StreamResampler takes 1-D int16 samples, got {x.dtype} {x.shape}")
        self.inputs += x.size
        if self._filter is None:
            self.outputs += x.size
            return x.astype(np.float64)
        self._history = np.concatenate([self._history, x.astype(np.float64)])
        ready = (self.inputs * self.up - 1 - self._filter.half_len) // self.down + 1
        return self._produce(max(ready, self.outputs))

    def flush(self) -> Floats:
        """End of stream: the tail outputs (inputs after the end count as zeros)."""
        self._check_open()
        self.finished = True
        if self._filter is None:
            return np.zeros(0)
        total = -(-self.inputs * self.up // self.down)
        if total > self.outputs:
            last_input = ((total - 1) * self.down + self._filter.half_len) // self.up
            self._history = np.concatenate([self._history, np.zeros(max(0, last_input + 1 - self.inputs))])
        tail = self._produce(max(total, self.outputs))
        self._history, self._base = np.zeros(0), self.inputs
        return tail

    def _first_input(self, output: int) -> int:
        """Earliest input sample that output ``output`` depends on."""
        if self._filter is None:
            return output
        return (output * self.down + self._filter.half_len) // self.up - self._filter.width + 1

    def _produce(self, end: int) -> Floats:
        out = [self._block(m, min(end, m + _BLOCK_OUTPUTS)) for m in range(self.outputs, end, _BLOCK_OUTPUTS)]
        self.outputs = end
        keep = max(0, self._first_input(end) - self._base)
        self._history, self._base = self._history[keep:], self._base + keep
        return np.concatenate(out) if out else np.zeros(0)

    def _block(self, start: int, end: int) -> Floats:
        """Outputs [start, end): per filter phase, the input windows (a strided view) times its taps.

        Outputs ``m, m + up, m + 2 up, ...`` share a phase and their windows start ``down`` inputs
        apart, so each phase is one matrix-vector product (BLAS; exact, see the module docstring).
        """
        assert self._filter is not None
        f = self._filter
        windows = sliding_window_view(self._history, f.width)
        y = np.empty(end - start)
        for r in range(min(f.up, end - start)):
            t = (start + r) * f.down + f.half_len  # position of output start + r in the upsampled signal
            first = t // f.up - f.width + 1 - self._base
            count = len(range(start + r, end, f.up))
            y[r :: f.up] = windows[first : first + (count - 1) * f.down + 1 : f.down] @ f.reversed[t % f.up]
        return y

    def _check_open(self) -> None:
        if self.finished:
            raise AudioStateError(f"resampler {self.from_hz} Hz -> {self.to_hz} Hz was flushed; create a new one")

    def to_state(self) -> dict[str, object]:
        """JSON-able state: rates, counters and the input history the next outputs need."""
        return {
            "from_hz": self.from_hz,
            "to_hz": self.to_hz,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "finished": self.finished,
            "history": samples_to_text(self._history.astype(np.int16)),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> StreamResampler:
        """Rebuild a resampler from ``to_state`` output; it continues exactly where that one stopped."""
        from_hz, to_hz, inputs, outputs = (_int(state, key) for key in ("from_hz", "to_hz", "inputs", "outputs"))
        finished = state.get("finished")
        if not isinstance(finished, bool):
            raise AudioStateError(f"resampler state 'finished' must be a bool, got {finished!r}")
        resampler = cls(from_hz, to_hz)
        history = samples_from_text(state.get("history"), "resampler state 'history'").astype(np.float64)
        base = inputs - history.size
        if resampler._filter is not None and not finished and base > resampler._first_input(outputs):
            raise AudioStateError(f"resampler history of {history.size} samples is too short for output {outputs}")
        resampler.inputs, resampler.outputs, resampler.finished = inputs, outputs, finished
        resampler._history, resampler._base = history, base
        return resampler


def _int(state: Mapping[str, object], key: str) -> int:
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AudioStateError(f"resampler state {key!r} must be an int, got {value!r}")
    return value


def to_int16(values: Floats) -> Samples:
    """Resampler output -> int16 (rounded half to even, clipped to the int16 range)."""
    return np.clip(np.rint(values), -32768, 32767).astype(np.int16)


def resample(samples: Samples, from_hz: int, to_hz: int) -> Samples:
    """A whole mono int16 signal at ``from_hz`` -> int16 at ``to_hz`` (same as streaming it)."""
    resampler = StreamResampler(from_hz, to_hz)
    return to_int16(np.concatenate([resampler.push(samples), resampler.flush()]))
