"""Per-connection message rate limiting (token bucket). Pure: the caller passes the time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Allows ``rate`` messages per second on average and bursts of up to ``burst``."""

    rate: float
    burst: int
    tokens: float = -1.0
    last_s: float | None = None

    def allow(self, now_s: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens at time ``now_s`` (monotonic seconds); False if there are not enough."""
        if self.last_s is None:
            self.tokens = float(self.burst)
        else:
            self.tokens = min(float(self.burst), self.tokens + (now_s - self.last_s) * self.rate)
        self.last_s = now_s
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
