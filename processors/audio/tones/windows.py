"""Analysis windows at fixed absolute sample positions, and the readers of saved detector state."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from processors.audio.errors import AudioStateError
from processors.audio.pcm import Samples, samples_from_text, samples_to_text

FULL_SCALE = 32768.0


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
        """Feed samples; returns (index of the first completed window, completed windows (M, size)).

        The windows are a read-only view into a private copy of the samples (rows overlap when
        hop < size); they stay valid after later pushes.
        """
        x = np.asarray(samples)
        if x.ndim != 1 or x.dtype != np.int16:
            raise AudioStateError(f"tone detectors take 1-D int16 samples, got {x.dtype} {x.shape}")
        buf = np.concatenate([self._buf, x])
        first = self.next
        if buf.size < self.size:
            self._buf = buf
            return first, np.zeros((0, self.size), np.int16)
        count = (buf.size - self.size) // self.hop + 1
        step = buf.itemsize
        windows: npt.NDArray[np.int16] = np.ndarray(
            (count, self.size), np.int16, buffer=buf, strides=(self.hop * step, step)
        )
        windows.flags.writeable = False
        self.next += count
        self._buf = buf[count * self.hop :]
        return first, windows

    def to_state(self) -> dict[str, object]:
        return {"next": self.next, "buf": samples_to_text(self._buf)}

    def restore(self, state: Mapping[str, object]) -> None:
        self.next = read_int(state, "next")
        self._buf = samples_from_text(state.get("buf"), "window state 'buf'")


def read_int(state: Mapping[str, object], key: str) -> int:
    """``state[key]`` as an int (not a bool)."""
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AudioStateError(f"detector state {key!r} must be an int, got {value!r}")
    return value


def read_float(state: Mapping[str, object], key: str) -> float:
    """``state[key]`` as a float (ints accepted, bools not)."""
    value = state.get(key)
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise AudioStateError(f"detector state {key!r} must be a number, got {value!r}")
    return float(value)


def read_optional_int(state: Mapping[str, object], key: str) -> int | None:
    """``state[key]`` as an int, or None when missing or null."""
    return None if state.get(key) is None else read_int(state, key)


def read_mapping(value: object) -> Mapping[str, object]:
    """A nested part of a saved state, which must be an object."""
    if not isinstance(value, Mapping):
        raise AudioStateError(f"detector state part must be an object, got {type(value).__name__}")
    return value
