"""The rules task: every worker reads the whole compacted rules topic into its Rulebook and follows it.

Each worker needs every tenant's rules (its calls may belong to any tenant), so this is a plain
consumer assigned to all partitions, outside the worker's consumer group, from the beginning. The
call agent waits for ``rules_loaded`` (set once everything published before start-up was read), so
no call is judged by defaults while its tenant's rules are still being loaded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.rules.model import RuleError
from schemas import RULE_SET, SchemaError

if TYPE_CHECKING:
    from processors.app import WorkerContext

log = logging.getLogger(__name__)


def register(ctx: WorkerContext) -> None:
    """Run the rules follower as a task of ``ctx.app``."""

    async def follow_rules() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(ctx.topics.rules)
            while not partitions:
                await consumer._client.force_metadata_update()  # the topic may be created after start-up
                partitions = consumer.partitions_for_topic(ctx.topics.rules)
                await asyncio.sleep(0 if partitions else 1)
            assigned = [TopicPartition(ctx.topics.rules, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            caught_up = _CaughtUp(ends, ctx.rules_loaded)
            await caught_up.check(consumer)
            async for message in consumer:
                try:
                    decoded = ctx.codec.decode(message.value)
                    if decoded.name != RULE_SET:
                        raise SchemaError(f"expected a RuleSet on {ctx.topics.rules}, got {decoded.name}")
                    applied = ctx.rulebook.apply(decoded.record)
                except (SchemaError, RuleError) as exc:
                    log.error("ignoring rule set at %s/%s: %s", message.partition, message.offset, exc)
                    continue
                if applied is not None:
                    log.info("rules of tenant %s now at version %s", applied.cid, applied.version)
                await caught_up.check(consumer)
        finally:
            await consumer.stop()

    ctx.app.task(follow_rules)


class _CaughtUp:
    """Sets ``loaded`` once the consumer has reached the end offsets seen at start-up."""

    def __init__(self, ends: dict[TopicPartition, int], loaded: asyncio.Event) -> None:
        self._ends = ends
        self._loaded = loaded

    async def check(self, consumer: AIOKafkaConsumer) -> None:
        if self._loaded.is_set():
            return
        for tp, end in self._ends.items():
            if await consumer.position(tp) < end:
                return
        log.info("rules loaded: everything published before start-up was read")
        self._loaded.set()
