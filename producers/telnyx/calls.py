"""What this gateway instance remembers about Telnyx calls: bounded, expiring, in process. Pure (time passed in).

Nothing here is needed for correctness across instances: a command repeated on another instance
gets the same content-derived event id and is deduplicated downstream; a media socket whose
streaming_start went to another instance keeps every track and checks only the configured tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A map whose entries expire ``ttl_ms`` after their last write; the least recently written go first when full."""

    def __init__(self, ttl_ms: int, max_entries: int) -> None:
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()

    def get(self, key: K, now_ms: int) -> V | None:
        """The live value of ``key`` at ``now_ms``, if any."""
        found = self._entries.get(key)
        if found is None or found[0] <= now_ms:
            return None
        return found[1]

    def put(self, key: K, value: V, now_ms: int) -> None:
        """Store ``value`` until ``now_ms + ttl_ms``; evicts expired and surplus entries."""
        self._entries.pop(key, None)
        self._entries[key] = (now_ms + self.ttl_ms, value)
        while self._entries:
            oldest_key, (expires, _) = next(iter(self._entries.items()))
            if expires > now_ms and len(self._entries) <= self.max_entries:
                break
            del self._entries[oldest_key]

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class CallConfig:
    """The streaming configuration of a call, from the latest command this instance accepted for it."""

    cid: int
    stream_track: str | None = None
    stream_url: str | None = None
    stream_auth_token: str | None = None
    client_state: str | None = None
    webhook_url: str | None = None


DAY_MS = 24 * 3600 * 1000


@dataclass
class CallMemory:
    """Seen command ids and per-call configuration."""

    commands: TtlCache[tuple[str, str], bool]
    calls: TtlCache[str, CallConfig]

    @classmethod
    def create(cls, max_entries: int = 100_000, ttl_ms: int = DAY_MS) -> CallMemory:
        return cls(commands=TtlCache(ttl_ms, max_entries), calls=TtlCache(ttl_ms, max_entries))
