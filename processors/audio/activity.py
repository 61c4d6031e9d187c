"""Periodic level / voice-activity summaries of one track, streaming and resumable.

The track is cut into intervals of ``interval_ms`` (default 1000 ms) starting at the track's first
sample. For each interval the meter reports RMS and peak level (dBFS, as processors/audio/levels.py
defines them) and the fraction of its samples that lie in frames the detector voiced. A summary is
emitted once its interval is complete; ``flush`` emits the last, partial interval. Sums are exact
integers, so the output does not depend on how the samples are chunked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.audio.levels import FULL_SCALE, Level
from processors.audio.vad import Int16Array, JsonDict, VadError

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ActivitySummary:
    """Level and voice activity over [start_sample, end_sample) at the track's sample rate."""

    start_sample: int
    end_sample: int
    level: Level
    voiced_samples: int

    @property
    def voiced_fraction(self) -> float:
        """Share of the interval's samples in voiced frames, 0..1."""
        return self.voiced_samples / (self.end_sample - self.start_sample)


def level_from_sums(sum_squares: int, peak: int, count: int) -> Level:
    """Level of ``count`` samples from their exact sum of squares and peak magnitude (same as levels.measure)."""
    if count == 0:
        return Level(None, None)
    rms = math.sqrt(sum_squares / count)
    return Level(_dbfs(rms), _dbfs(float(peak)))


def _dbfs(value: float) -> float | None:
    return 20.0 * math.log10(value / FULL_SCALE) if value > 0 else None


class ActivityMeter:
    """Accumulates one interval at a time; offsets in samples at ``sample_rate`` Hz."""

    def __init__(self, sample_rate: int, interval_ms: int = 1000, start_sample: int = 0) -> None:
        interval = sample_rate * interval_ms // 1000
        if interval <= 0 or sample_rate * interval_ms % 1000:
            raise VadError(f"activity interval of {interval_ms} ms is not a whole, positive number of samples")
        self.sample_rate = sample_rate
        self.interval_ms = interval_ms
        self.interval_samples = interval
        self.start = start_sample  # first sample of the current interval
        self.count = 0  # samples of the current interval seen so far
        self.sum_squares = 0
        self.peak = 0
        self.voiced = 0

    @property
    def cursor(self) -> int:
        """Next expected sample."""
        return self.start + self.count

    def push(self, samples: Int16Array, voiced: BoolArray) -> list[ActivitySummary]:
        """Consecutive samples and, per sample, whether its frame was voiced -> completed summaries."""
        if samples.shape != voiced.shape or samples.ndim != 1 or samples.dtype != np.int16:
            raise VadError(f"activity needs 1-D int16 samples and an equal voiced mask, got {samples.shape}")
        out: list[ActivitySummary] = []
        at = 0
        while at < samples.size:
            take = min(self.interval_samples - self.count, samples.size - at)
            self._add(samples[at : at + take], voiced[at : at + take])
            at += take
            if self.count == self.interval_samples:
                out.append(self._emit())
        return out

    def flush(self) -> list[ActivitySummary]:
        """End of stream: the partial last interval, if it has samples."""
        return [self._emit()] if self.count else []

    def _add(self, samples: Int16Array, voiced: BoolArray) -> None:
        wide = samples.astype(np.int64)
        self.sum_squares += int(np.dot(wide, wide))
        self.peak = max(self.peak, int(np.max(np.abs(wide))))
        self.voiced += int(np.count_nonzero(voiced))
        self.count += samples.size

    def _emit(self) -> ActivitySummary:
        summary = ActivitySummary(
            self.start, self.cursor, level_from_sums(self.sum_squares, self.peak, self.count), self.voiced
        )
        self.start, self.count, self.sum_squares, self.peak, self.voiced = self.cursor, 0, 0, 0, 0
        return summary

    def state(self) -> JsonDict:
        """JSON-able state: interval position and exact integer sums."""
        keys = ("sample_rate", "interval_ms", "start", "count", "sum_squares", "peak", "voiced")
        return {key: getattr(self, key) for key in keys}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ActivityMeter:
        try:
            meter = cls(int(state["sample_rate"]), int(state["interval_ms"]), int(state["start"]))
            meter.count, meter.sum_squares = int(state["count"]), int(state["sum_squares"])
            meter.peak, meter.voiced = int(state["peak"]), int(state["voiced"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VadError(f"malformed activity state: {exc!r}") from exc
        return meter
