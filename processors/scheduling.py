"""In what order the worker's consumer hands a fetched batch to the agents: oldest record first.

A call's events and its audio are on two topics (co-partitioned by call id), so one fetch returns
them as separate per-partition lists. Faust's default strategy alternates between topics one record
at a time, which puts the single hold event of a 300-record audio backlog right after the first audio
record, whereas live it sat between the records it was sent between. This strategy merges the lists
by record timestamp (the gateway's send time), the order the gateway produced them in, so a
backlog replays in the order it happened live. Each partition's own order is kept whatever its
timestamps say: only the heads of the lists are compared.

The merge covers one fetched batch. Two partitions fetched in different batches (their leaders are
different brokers, or one partition's fetch started later, as after a rebalance) keep fetch order,
so an event can still reach the call agent after audio that was sent after it; the pipeline then
applies a hold from the audio position already reached and counts the difference in the call's
``late_hold_ms``. Holding back a partition until its co-partition has caught up (Kafka Streams'
``max.task.idle.ms``) would close that gap; Faust offers no such hook.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from faust.transport.utils import DefaultSchedulingStrategy


def _timestamp(item: tuple[Any, Any]) -> int:
    return int(item[1].timestamp)


class OldestFirst(DefaultSchedulingStrategy):
    """Faust ``ConsumerScheduler``: the batch's records in timestamp order, each partition in offset order."""

    def iterate(self, records: Mapping[Any, Sequence[Any]]) -> Iterator[tuple[Any, Any]]:
        lanes = [[(tp, record) for record in batch] for tp, batch in records.items()]
        return heapq.merge(*lanes, key=_timestamp)
