"""Per-partition batching for the projector (pure: time is passed in, nothing is read from a clock).

Records are grouped by (topic, partition). A group is due when it holds ``max_rows`` rows or its
oldest row is ``max_age_ms`` old. Flushing a group yields its rows and the offset to commit
(last offset + 1), so the caller writes first and commits after.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


@dataclass
class PendingBatch:
    """Rows read from one partition and not yet written, with their offset range."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    opened_at_ms: float
    rows: list[Any] = field(default_factory=list)

    @property
    def commit_offset(self) -> int:
        """Offset to commit once the rows are durable (the next one to read)."""
        return self.last_offset + 1


class Batcher:
    """Accumulates rows per partition and says which batches are due."""

    def __init__(self, max_rows: int, max_age_ms: float) -> None:
        if max_rows < 1 or max_age_ms <= 0:
            raise ValueError("max_rows must be >= 1 and max_age_ms > 0")
        self.max_rows = max_rows
        self.max_age_ms = max_age_ms
        self._pending: dict[TopicPartition, PendingBatch] = {}

    def add(self, topic: str, partition: int, offset: int, row: Any, now_ms: float) -> None:
        """Add one row (or a skip marker with ``row=None``: the offset still advances)."""
        key = (topic, partition)
        batch = self._pending.get(key)
        if batch is None:
            batch = PendingBatch(topic, partition, offset, offset, now_ms)
            self._pending[key] = batch
        batch.last_offset = max(batch.last_offset, offset)
        if row is not None:
            batch.rows.append(row)

    def due(self, now_ms: float) -> list[PendingBatch]:
        """Remove and return the batches that are full or old enough."""
        ready = [
            key
            for key, batch in self._pending.items()
            if len(batch.rows) >= self.max_rows or now_ms - batch.opened_at_ms >= self.max_age_ms
        ]
        return [self._pending.pop(key) for key in ready]

    def drain(self, partitions: Iterable[TopicPartition] | None = None) -> list[PendingBatch]:
        """Remove and return every pending batch (of the given partitions, or all)."""
        keys = list(self._pending) if partitions is None else [k for k in partitions if k in self._pending]
        return [self._pending.pop(key) for key in keys]

    def discard(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget pending rows of partitions this consumer lost; their new owner re-reads them."""
        for key in partitions:
            self._pending.pop(key, None)

    def __len__(self) -> int:
        return sum(len(b.rows) for b in self._pending.values())
