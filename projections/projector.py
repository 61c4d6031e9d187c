"""The projector: consume topics, write rows to ClickHouse per partition batch, then commit offsets.

Write-before-commit gives at-least-once delivery into the tables; the tables are
ReplacingMergeTree keyed by natural id (version = offset), so a batch written twice (crash
between insert and commit, rebalance) leaves every view unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from infra.store import Store
from projections.batch import Batcher, PendingBatch
from projections.rows import TABLES, RowError, to_row
from schemas import AvroCodec, SchemaError

log = logging.getLogger(__name__)


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        partitions = [(tp.topic, tp.partition) for tp in revoked]
        await self._projector.flush(partitions)
        self._projector.forget(partitions)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("projector assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))


class Projector:
    """Materialises ``topics`` into the store."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        store: Store,
        codec: AvroCodec,
        batcher: Batcher,
        *,
        deadletter: tuple[AIOKafkaProducer, str] | None = None,
    ) -> None:
        self._consumer = consumer
        self._store = store
        self._codec = codec
        self._batcher = batcher
        self._deadletter = deadletter
        self.rows_written = 0
        self.dead_lettered = 0
        self._committed: dict[tuple[str, int], int] = {}
        self._lag: dict[tuple[str, int], int] = {}

    def listener(self) -> ConsumerRebalanceListener:
        """Pass to ``consumer.subscribe(..., listener=...)`` so revoked partitions are flushed first."""
        return _FlushOnRevoke(self)

    async def run(self, stop: asyncio.Event, poll_ms: int = 200) -> None:
        """Consume until ``stop`` is set, then flush what is pending."""
        while not stop.is_set():
            fetched = await self._consumer.getmany(timeout_ms=poll_ms)
            now = _now_ms()
            for tp, messages in fetched.items():
                if messages:  # where this partition's uncommitted range starts
                    self._committed.setdefault((tp.topic, tp.partition), messages[0].offset)
                for message in messages:
                    row = await self._to_row(message)
                    self._batcher.add(tp.topic, tp.partition, message.offset, row, now)
            for batch in self._batcher.due(_now_ms()):
                await self._write(batch)
            await self._measure_lag()
        await self.flush()
        await self._measure_lag()

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Drop what this projector knows of partitions it no longer owns (their new owner reports them)."""
        for key in partitions:
            self._committed.pop(key, None)
            self._lag.pop(key, None)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records each assigned (topic, partition) is behind, as of the last poll.

        Lag = the partition's last stable offset (its end, for read_committed) minus the offset this
        projector committed there last (before its first commit: the first offset it fetched; before
        any fetch: its position), so rows fetched but not yet written still count as lag.
        """
        return dict(self._lag)

    async def _measure_lag(self) -> None:
        assigned = self._consumer.assignment()
        lag = {}
        for tp in assigned:
            end = self._consumer.last_stable_offset(tp)
            if end is None:
                end = self._consumer.highwater(tp)
            if end is None:
                continue
            done = self._committed.get((tp.topic, tp.partition))
            if done is None:
                done = await self._consumer.position(tp)
            lag[(tp.topic, tp.partition)] = max(0, end - done)
        self._lag = lag

    async def flush(self, partitions: list[tuple[str, int]] | None = None) -> None:
        """Write and commit every pending batch (of ``partitions``, or all)."""
        for batch in self._batcher.drain(partitions):
            await self._write(batch)

    async def _to_row(self, message: Any) -> tuple[str, list[Any]] | None:
        try:
            decoded = self._codec.decode(message.value)
            return to_row(decoded.name, decoded.record, message.partition, message.offset)
        except (SchemaError, RowError) as exc:
            await self._dead_letter(message, f"{type(exc).__name__}: {exc}")
            return None

    async def _dead_letter(self, message: Any, reason: str) -> None:
        self.dead_lettered += 1
        log.warning("dead-lettering %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
        if self._deadletter is None:
            return
        producer, topic = self._deadletter
        await producer.send_and_wait(
            topic,
            message.value,
            key=message.key,
            headers=[
                ("reason", reason.encode()),
                ("source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
                ("stage", b"projector"),
            ],
        )

    async def _write(self, batch: PendingBatch) -> None:
        by_table: dict[str, list[list[Any]]] = defaultdict(list)
        for table, values in batch.rows:
            by_table[table].append(values)
        columns = {table: cols for table, cols in TABLES.values()}
        for table, rows in by_table.items():
            await asyncio.to_thread(self._store.insert, table, rows, columns[table])
            self.rows_written += len(rows)
        await self._consumer.commit({TopicPartition(batch.topic, batch.partition): batch.commit_offset})
        self._committed[(batch.topic, batch.partition)] = batch.commit_offset


def _now_ms() -> float:
    return time.monotonic() * 1000.0
