"""Per-call tally of signal detections (beep, ring-back, DTMF, clipping) and per-role levels.

The detectors live elsewhere; this only aggregates what they report, as plain data on media time.
Detections are kept as a set keyed by (kind, role, start_ms), so a redelivered detection changes
nothing and the order detections arrive in does not matter. Level readings (the LEVEL segments of
the session state machine) are counted per role with a sample cursor: a reading that starts
before the role's cursor and ends at or before it is a redelivery and is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from processors.analytics.errors import InvalidInputError, OutOfOrderError
from processors.analytics.sweep import ROLES, Role


class DetectionKind(StrEnum):
    BEEP = "BEEP"
    RINGBACK = "RINGBACK"
    DTMF = "DTMF"
    CLIPPING = "CLIPPING"


@dataclass(frozen=True)
class Detection:
    """One detection over ``[start_ms, end_ms)``; ``value`` is the digit for DTMF, else empty. ``role`` None = mixed."""

    kind: DetectionKind
    start_ms: int
    end_ms: int
    role: Role | None = None
    value: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.start_ms <= self.end_ms:
            raise InvalidInputError(
                f"{self.kind} detection [{self.start_ms}, {self.end_ms}) ms is reversed or negative"
            )
        if self.kind is DetectionKind.DTMF and (len(self.value) != 1 or self.value not in "0123456789*#ABCD"):
            raise InvalidInputError(f"DTMF detection at {self.start_ms} ms has no single digit: {self.value!r}")

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.kind.value, "" if self.role is None else self.role.value, self.start_ms)


@dataclass(frozen=True)
class LevelReading:
    """Level of one role's audio over ``[start_sample, end_sample)`` (dBFS; None = digital silence)."""

    role: Role
    start_sample: int
    end_sample: int
    rms_dbfs: float | None
    peak_dbfs: float | None


@dataclass(frozen=True)
class LevelSum:
    """Running level aggregate of one role: samples seen, summed power (sum of n * 10^(rms/10)), highest peak."""

    cursor_sample: int = 0
    samples: int = 0
    power: float = 0.0
    peak_dbfs: float | None = None

    @property
    def mean_dbfs(self) -> float | None:
        """Power-mean RMS over every sample read (digital silence counts as zero power); None without any power."""
        if self.samples == 0 or self.power <= 0:
            return None
        return 10.0 * math.log10(self.power / self.samples)


def _levels() -> Mapping[Role, LevelSum]:
    return {role: LevelSum() for role in ROLES}


@dataclass(frozen=True)
class SignalTally:
    detections: tuple[Detection, ...] = ()  # sorted, unique by key
    levels: Mapping[Role, LevelSum] = field(default_factory=_levels)

    def count(self, kind: DetectionKind) -> int:
        return sum(1 for d in self.detections if d.kind is kind)

    def of_kind(self, kind: DetectionKind) -> list[Detection]:
        return [d for d in self.detections if d.kind is kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "detections": [
                [d.kind.value, d.start_ms, d.end_ms, None if d.role is None else d.role.value, d.value]
                for d in self.detections
            ],
            "levels": {r.value: [s.cursor_sample, s.samples, s.power, s.peak_dbfs] for r, s in self.levels.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalTally:
        detections = tuple(
            Detection(DetectionKind(k), int(s), int(e), None if r is None else Role(r), str(v))
            for k, s, e, r, v in data["detections"]
        )
        levels = {
            Role(r): LevelSum(int(v[0]), int(v[1]), float(v[2]), None if v[3] is None else float(v[3]))
            for r, v in dict(data["levels"]).items()
        }
        return cls(detections, levels)


def add_detection(tally: SignalTally, detection: Detection) -> SignalTally:
    """Count a detection once (a second one with the same kind, role and start is ignored)."""
    if any(d.key == detection.key for d in tally.detections):
        return tally
    return replace(tally, detections=tuple(sorted((*tally.detections, detection), key=_order)))


def _order(d: Detection) -> tuple[int, str, str]:
    return (d.start_ms, d.kind.value, "" if d.role is None else d.role.value)


def add_level(tally: SignalTally, reading: LevelReading) -> SignalTally:
    """Add a level reading of one role; readings of a role arrive in order, redeliveries are ignored."""
    if reading.end_sample <= reading.start_sample or reading.start_sample < 0:
        raise InvalidInputError(
            f"{reading.role} level reading [{reading.start_sample}, {reading.end_sample}) is empty or negative"
        )
    current = tally.levels[reading.role]
    if reading.end_sample <= current.cursor_sample:
        return tally
    if reading.start_sample < current.cursor_sample:
        raise OutOfOrderError(
            f"{reading.role} level reading [{reading.start_sample}, {reading.end_sample}) overlaps samples read up "
            f"to {current.cursor_sample}"
        )
    n = reading.end_sample - reading.start_sample
    power = 0.0 if reading.rms_dbfs is None else n * 10.0 ** (reading.rms_dbfs / 10.0)
    peaks = [p for p in (current.peak_dbfs, reading.peak_dbfs) if p is not None]
    updated = LevelSum(reading.end_sample, current.samples + n, current.power + power, max(peaks) if peaks else None)
    return replace(tally, levels={**tally.levels, reading.role: updated})


def summary(tally: SignalTally) -> dict[str, Any]:
    """Counts and times (s) of beeps and ring-back, DTMF digits per role, clipping and levels per role."""

    def times(kind: DetectionKind) -> list[dict[str, float]]:
        return [{"st": d.start_ms / 1000, "et": d.end_ms / 1000} for d in tally.of_kind(kind)]

    dtmf: dict[str, str] = {}
    for d in tally.of_kind(DetectionKind.DTMF):
        key = "mixed" if d.role is None else d.role.value.lower()
        dtmf[key] = dtmf.get(key, "") + d.value
    clipping: dict[str, dict[str, int]] = {}
    for d in tally.of_kind(DetectionKind.CLIPPING):
        slot = clipping.setdefault("mixed" if d.role is None else d.role.value.lower(), {"count": 0, "ms": 0})
        slot["count"] += 1
        slot["ms"] += d.end_ms - d.start_ms
    levels = {
        r.value.lower(): {k: v for k, v in (("mean_dbfs", s.mean_dbfs), ("peak_dbfs", s.peak_dbfs)) if v is not None}
        for r, s in tally.levels.items()
        if s.samples
    }
    return {
        "beeps": times(DetectionKind.BEEP),
        "rings": times(DetectionKind.RINGBACK),
        "dtmf": dtmf,
        "clipping": clipping,
        "levels": levels,
    }
