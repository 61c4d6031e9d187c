"""Signal power of int16 windows at a few frequencies, exact and independent of batch size.

``ToneBank`` gives, for every window of ``size`` samples, |X(f)|^2 = |sum_n x[n] e^(-2 pi i f n / rate)|^2
at each target frequency (the value the Goertzel recurrence computes), for all windows of a chunk
in one matrix product against a precomputed cos/sin basis.

The basis values are rounded to multiples of 2^-q, with q chosen from the window size so that
every product of an int16 sample and a basis value, and every partial sum of such products, is an
integer multiple of 2^-q below 2^53 · 2^-q: float64 holds them exactly. The products are therefore
exact whatever order BLAS adds them in (kernel, CPU, threads, number of windows in the batch), so a
window gets bit-identical powers in any chunking, and the stream results stay chunk-invariant. The
rounding moves each basis value by at most 2^-(q+1) (q = 30 for 205 samples, 28 for 800, 25 for
4,800), a relative change of the powers of order 1e-9 for tonal windows.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
INT16_BITS = 15  # |sample| <= 2^15
FLOAT_BITS = 53  # float64 significand


def exact_scale_bits(size: int) -> int:
    """q such that sums of ``size`` products (int16 sample) x (multiple of 2^-q in [-1, 1]) stay exact."""
    return FLOAT_BITS - INT16_BITS - max(size - 1, 1).bit_length()


@functools.lru_cache(maxsize=64)
def tone_basis(size: int, freqs_hz: tuple[float, ...], rate_hz: int) -> Floats:
    """The rounded basis (size, 2 * freqs): cos(2 pi f n / rate) columns, then sin columns; read-only.

    A constant of (size, frequencies, rate), so detectors share it instead of rebuilding it (~50 us).
    """
    cycles = np.mod(np.outer(np.asarray(freqs_hz, np.float64), np.arange(size)), rate_hz) / rate_hz
    unit = 2.0 ** exact_scale_bits(size)
    phases = 2.0 * np.pi * cycles  # (freqs, size), radians in [0, 2 pi)
    rounded = np.round(np.concatenate([np.cos(phases), np.sin(phases)]) * unit) / unit
    basis: Floats = np.ascontiguousarray(rounded.T)
    basis.flags.writeable = False
    return basis


class ToneBank:
    """Powers |X(f)|^2 of ``size``-sample windows at ``freqs_hz`` (Hz) for a sample rate ``rate_hz``."""

    def __init__(self, size: int, freqs_hz: tuple[float, ...], rate_hz: int) -> None:
        self.size, self.freqs_hz, self.rate = size, freqs_hz, rate_hz
        self.basis = tone_basis(size, freqs_hz, rate_hz)

    def powers(self, windows: Floats) -> Floats:
        """|X(f)|^2 of each window (rows of integer-valued floats): shape (windows, freqs)."""
        parts: Floats = windows @ self.basis
        count = len(self.freqs_hz)
        real, imag = parts[:, :count], parts[:, count:]
        result: Floats = real * real + imag * imag
        return result


def as_floats(windows: npt.NDArray[np.int16]) -> Floats:
    """int16 windows as a contiguous float64 array (exact)."""
    return np.ascontiguousarray(windows, dtype=np.float64)


def energy(windows: npt.NDArray[np.int16] | Floats) -> Floats:
    """Sum of squares of each window (exact: integer partial sums below 2^53 for windows up to 2^23 samples)."""
    x = np.asarray(windows, dtype=np.float64)
    sums: Floats = np.einsum("ij,ij->i", x, x)
    return sums


def goertzel(windows: npt.NDArray[np.int16], freqs_hz: tuple[float, ...], rate_hz: int) -> Floats:
    """Goertzel power |X(f)|^2 of each window (rows) at each frequency (Hz): shape (windows, freqs)."""
    return ToneBank(windows.shape[1], freqs_hz, rate_hz).powers(as_floats(windows))
