"""Clipping: samples in runs at (or near) full scale, counted per fixed interval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from processors.audio.errors import AudioStateError
from processors.audio.pcm import Samples
from processors.audio.tones.windows import read_int, read_mapping, samples_for


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
        detector.position, detector._run_sign = read_int(state, "position"), read_int(state, "run_sign")
        detector._run_start, detector._counted = read_int(state, "run_start"), read_int(state, "counted")
        detector._emitted = read_int(state, "emitted")
        clipped = read_mapping(state.get("clipped"))
        detector._clipped = {int(k): read_int(clipped, k) for k in clipped}
        return detector
