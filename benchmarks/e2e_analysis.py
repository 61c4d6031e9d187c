"""Pure arithmetic of the end-to-end benchmark (benchmarks/e2e.py): no I/O, unit-tested.

- ``Arrivals``: when the audio carrying a given media time reached the gateway, from the AudioChunk
  records (``received_at`` is the gateway's receive time of a chunk's first packet; packets inside a
  chunk arrive in real time, 20 ms apart, so media time t of a chunk starting at s arrived at
  ``received_at + (t - s)``).
- ``latencies``: output visible to a read_committed subscriber (wall ms) minus the arrival of the
  audio that decided it: a speech segment's last sample; an alert's threshold crossing (``end_ms`` of
  a RAISED alert). Both in call media time; the later of the call's tracks counts (a segment is
  labelled by role, not by the vendor's track, and the worker reads both tracks in step).
- ``LagSeries``: the worker group's consumer lag sampled over a load step; "sustained" means the lag
  does not grow while the load holds.
- ``profile_rows``: a py-spy ``--format raw`` (collapsed stacks) profile, as self and inclusive
  shares of the samples per function.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Arrivals:
    """Per call and track: chunk start media times (ms, sorted) and their receive times (epoch ms)."""

    _starts: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    _received: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, call_id: str, track: str, start_sample: int, sample_rate: int, received_ms: float) -> None:
        """One AudioChunk (start_sample at sample_rate Hz, received at received_ms)."""
        key = (call_id, track)
        start_ms = start_sample * 1000.0 / sample_rate
        starts = self._starts[key]
        at = bisect.bisect_right(starts, start_ms)
        starts.insert(at, start_ms)
        self._received[key].insert(at, received_ms)

    def tracks(self, call_id: str) -> list[str]:
        return sorted(track for call, track in self._starts if call == call_id)

    def at(self, call_id: str, track: str, media_ms: float) -> float | None:
        """Gateway arrival (epoch ms) of the audio at ``media_ms`` of this track; None before its first chunk."""
        starts = self._starts.get((call_id, track))
        if not starts:
            return None
        i = bisect.bisect_right(starts, media_ms) - 1
        if i < 0:
            return None
        return self._received[(call_id, track)][i] + (media_ms - starts[i])

    def at_call(self, call_id: str, media_ms: float) -> float | None:
        """The latest arrival over the call's tracks of the audio at ``media_ms``; None if a track lacks it."""
        times = [self.at(call_id, track, media_ms) for track in self.tracks(call_id)]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)


@dataclass(frozen=True)
class Seen:
    """An output record and when the benchmark's read_committed consumer got it (epoch ms)."""

    kind: str  # "segment" or "alert"
    call_id: str
    media_ms: float  # the decisive media time: segment end, alert threshold crossing
    visible_ms: float
    produced_ms: float  # the record's Kafka timestamp: when the worker sent it (before its transaction commits)


def latencies(seen: Iterable[Seen], arrivals: Arrivals) -> dict[str, list[float]]:
    """Latency (ms) per kind, to visible (``segment``) and to produced (``segment produced``); outputs whose
    audio was not seen are left out."""
    out: dict[str, list[float]] = defaultdict(list)
    for s in seen:
        arrived = arrivals.at_call(s.call_id, s.media_ms)
        if arrived is not None:
            out[s.kind].append(s.visible_ms - arrived)
            out[f"{s.kind} produced"].append(s.produced_ms - arrived)
    return dict(out)


def percentiles(values: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p95, p99, max (ms, rounded); an empty input gives the count only."""
    if not values:
        return {"count": 0}
    a = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = (float(v) for v in np.percentile(a, [50, 95, 99]))
    return {"count": int(a.size), "p50": round(p50), "p95": round(p95), "p99": round(p99), "max": round(float(a.max()))}


@dataclass
class LagSeries:
    """(seconds since the step began, lag in records) samples of the worker group."""

    points: list[tuple[float, int]] = field(default_factory=list)

    def add(self, t_s: float, lag: int) -> None:
        self.points.append((t_s, lag))

    def window(self, start_s: float, end_s: float) -> list[tuple[float, int]]:
        return [(t, lag) for t, lag in self.points if start_s <= t <= end_s]

    def slope(self, start_s: float, end_s: float) -> float:
        """Least-squares growth of the lag (records/s) over [start_s, end_s]; 0 with fewer than 3 samples."""
        pts = self.window(start_s, end_s)
        if len(pts) < 3:
            return 0.0
        t = np.asarray([p[0] for p in pts])
        y = np.asarray([p[1] for p in pts], dtype=np.float64)
        return float(np.polyfit(t, y, 1)[0])

    def max(self, start_s: float, end_s: float) -> int:
        return max((lag for _, lag in self.window(start_s, end_s)), default=0)


@dataclass(frozen=True)
class Verdict:
    sustained: bool
    why: str


def judge(
    series: LagSeries, hold: tuple[float, float], input_rate: float, commit_s: float, max_lag_s: float
) -> Verdict:
    """Sustained in real time: over the hold the lag grows by under 2% of the input rate and never exceeds
    ``max_lag_s`` of input (plus what a commit interval ``commit_s`` leaves uncommitted)."""
    if input_rate <= 0:
        return Verdict(False, "no input reached the topics")
    slope = series.slope(*hold)
    worst = series.max(*hold)
    bound = input_rate * (max_lag_s + commit_s)
    if slope > 0.02 * input_rate:
        return Verdict(False, f"lag grew {slope:.1f} rec/s while {input_rate:.1f} rec/s came in")
    if worst > bound:
        return Verdict(False, f"lag reached {worst} records ({worst / input_rate:.1f} s of input)")
    return Verdict(True, f"lag slope {slope:+.1f} rec/s, max {worst} records ({worst / input_rate:.1f} s of input)")


@dataclass(frozen=True)
class ProfileRow:
    function: str  # "name (dir/module.py)"
    path: str  # the frame's file as py-spy reported it
    own: float  # share of the samples with this function on top
    inclusive: float  # share of the samples with this function anywhere on the stack


def profile_rows(raw: str) -> tuple[int, list[ProfileRow]]:
    """Samples and every function's shares, by inclusive share, from py-spy collapsed stacks.

    ``raw`` holds ``frame;frame;...;leaf count`` per line, root first; a frame is ``func (path:line)``.
    """
    inclusive: Counter[tuple[str, str]] = Counter()
    own: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return 0, []
    rows = [ProfileRow(name, path, own[(name, path)] / total, n / total) for (name, path), n in inclusive.most_common()]
    return total, rows


def _frame(frame: str) -> tuple[str, str]:
    """``func (path/to/module.py:123)`` -> (``func (to/module.py)``, ``path/to/module.py``)."""
    name, sep, where = frame.partition(" (")
    if not sep:
        return frame, ""
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:])
    return f"{name} ({short})", path
