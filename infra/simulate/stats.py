"""Counters of a simulation run and its report: calls, packets, send lag (ms late vs real time), errors."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Stats:
    """Shared by every simulated call of a run (one asyncio loop, so no locking)."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    packets: int = 0
    audio_bytes: int = 0
    callbacks: int = 0
    responses: int = 0
    lags_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> int:
        return self.started - self.completed - self.failed

    def lag(self, late_s: float) -> None:
        """Record how late (s) a paced send went out; early sends count as 0."""
        self.lags_ms.append(max(0.0, late_s * 1000.0))

    def error(self, where: str, exc: BaseException | str) -> None:
        """Count an error by ``where``; keep the first few messages for the report."""
        self.errors[where] += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(f"{where}: {exc}")

    def percentiles(self) -> dict[str, float]:
        """p50/p95/p99/max of the send lag (ms); zeros before anything was sent."""
        if not self.lags_ms:
            return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
        values = np.asarray(self.lags_ms)
        p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
        return {"p50": p50, "p95": p95, "p99": p99, "max": float(values.max())}

    def progress(self) -> str:
        """One progress line."""
        elapsed = time.monotonic() - self.began
        lag = self.percentiles()
        return (
            f"[{elapsed:6.1f}s] active {self.active:4d}  started {self.started:4d}  completed {self.completed:4d}  "
            f"failed {self.failed:3d}  packets {self.packets:8d}  lag p95 {lag['p95']:6.1f}ms  "
            f"errors {sum(self.errors.values())}"
        )

    def summary(self) -> dict[str, Any]:
        """Everything in one JSON-able dict."""
        elapsed = time.monotonic() - self.began
        return {
            "seconds": round(elapsed, 2),
            "calls_started": self.started,
            "calls_completed": self.completed,
            "calls_failed": self.failed,
            "packets_sent": self.packets,
            "audio_bytes_sent": self.audio_bytes,
            "packets_per_s": round(self.packets / elapsed, 1) if elapsed > 0 else 0.0,
            "callbacks": self.callbacks,
            "stream_responses": self.responses,
            "send_lag_ms": {k: round(v, 2) for k, v in self.percentiles().items()},
            "errors": dict(self.errors),
            "first_errors": list(self.first_errors),
        }

    def report(self) -> str:
        """The closing report, human-readable."""
        s = self.summary()
        lag = s["send_lag_ms"]
        lines = [
            f"calls: {s['calls_started']} started, {s['calls_completed']} completed, {s['calls_failed']} failed",
            f"packets sent: {s['packets_sent']} ({s['packets_per_s']}/s), audio {s['audio_bytes_sent']} bytes, "
            f"{s['callbacks']} callbacks, {s['stream_responses']} Cresta responses",
            f"send lag vs real time (ms): p50 {lag['p50']}, p95 {lag['p95']}, p99 {lag['p99']}, max {lag['max']}",
            f"errors: {sum(self.errors.values())} {dict(self.errors) if self.errors else ''}".rstrip(),
        ]
        lines += [f"  {line}" for line in self.first_errors]
        return "\n".join(lines)
