"""Interval arithmetic on integer media time (ms or samples): half-open ``(start, end)`` pairs.

Lists of intervals given to these helpers are sorted and non-overlapping within one layer (one
role's speech, the holds); different layers may overlap each other freely.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from processors.analytics.errors import InvalidInputError

Interval = tuple[int, int]


@dataclass(frozen=True)
class Piece:
    """A stretch ``[start, end)`` over which every layer is constant; ``flags[i]`` says whether layer i covers it."""

    start: int
    end: int
    flags: tuple[bool, ...]

    @property
    def length(self) -> int:
        return self.end - self.start


def clip(intervals: Iterable[Interval], lo: int, hi: int) -> list[Interval]:
    """The parts of ``intervals`` inside ``[lo, hi)``, empty parts dropped."""
    out = []
    for start, end in intervals:
        s, e = max(start, lo), min(end, hi)
        if s < e:
            out.append((s, e))
    return out


def covers(intervals: Iterable[Interval], t: int) -> bool:
    """Whether instant ``t`` lies inside one of ``intervals`` (start inclusive, end exclusive)."""
    return any(start <= t < end for start, end in intervals)


def total(intervals: Iterable[Interval]) -> int:
    """Summed length of non-overlapping intervals."""
    return sum(end - start for start, end in intervals)


def pieces(lo: int, hi: int, layers: Sequence[Sequence[Interval]]) -> list[Piece]:
    """Cut ``[lo, hi)`` at every boundary of every layer; adjacent pieces with equal flags are merged.

    Returns the pieces in time order, covering ``[lo, hi)`` exactly (empty when ``lo == hi``).
    """
    if hi < lo:
        raise InvalidInputError(f"interval [{lo}, {hi}) ends before it starts")
    clipped = [clip(layer, lo, hi) for layer in layers]
    cuts = sorted({lo, hi, *(t for layer in clipped for interval in layer for t in interval)})
    out: list[Piece] = []
    for start, end in itertools.pairwise(cuts):
        flags = tuple(covers(layer, start) for layer in clipped)
        if out and out[-1].flags == flags:
            out[-1] = Piece(out[-1].start, end, flags)
        else:
            out.append(Piece(start, end, flags))
    return out


def ms_of_sample(sample: int, sample_rate_hz: int) -> int:
    """Media time in whole ms of a sample offset (floor), e.g. sample 12 at 8000 Hz -> 1 ms."""
    if sample_rate_hz <= 0:
        raise InvalidInputError(f"sample rate {sample_rate_hz} Hz is not positive")
    return sample * 1000 // sample_rate_hz
