"""64-bit job ids: unique across gateway instances without coordination, roughly time-ordered.

Layout of the positive signed 64-bit id (bit 63 stays 0, so it is a valid Java/Avro ``long``):

    | 41 bits: ms since 2024-01-01T00:00:00Z | 10 bits: node | 12 bits: sequence within the ms |

41 bits of milliseconds last until 2093. The node is configured per instance
(``SWITCHBOARD_GATEWAY_NODE_ID``) or, unset, drawn at random when the generator is built: two
unconfigured instances then collide only if they draw the same node (1 in 1024) *and* issue an id in
the same millisecond with the same sequence. 4096 ids per ms per node; beyond that the generator
waits for the next millisecond. A clock that steps back is never followed backwards.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


class IdGenerator:
    """Thread-safe snowflake-style id source."""

    def __init__(self, node: int | None = None, clock_ms: Callable[[], int] | None = None) -> None:
        if node is None:
            node = secrets.randbelow(MAX_NODE + 1)
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node id {node} is outside 0..{MAX_NODE}")
        self.node = node
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        """A new id, greater than every id this generator issued before."""
        with self._lock:
            now = max(self._clock_ms() - EPOCH_MS, self._last_ms)
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:  # 4096 ids in this ms: borrow the next one
                    now += 1
            else:
                self._sequence = 0
            self._last_ms = now
            return (now << (NODE_BITS + SEQUENCE_BITS)) | (self.node << SEQUENCE_BITS) | self._sequence


def id_time_ms(job_id: int) -> int:
    """Unix time (ms) encoded in an id."""
    return (job_id >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS
