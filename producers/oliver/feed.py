"""The result feed: one consumer per gateway instance that routes job outputs to the sockets of this instance.

It reads ``calls.speech``, ``calls.alerts`` and ``jobs.transitions`` from the latest offsets in a
consumer group unique to this instance (so every instance gets every partition; nothing is
committed) and hands each record to the queues subscribed to its key (the call id = str(pid)).
Transitions also feed ``JobCache``, the instance's view of recently created streaming jobs.

A socket must not announce ``accepting`` before the feed is *ready* (every partition assigned and its
position fixed): records produced after that point are guaranteed to be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from producers.oliver.errors import OliverError
from producers.oliver.models import JobInfo
from producers.oliver.translate import job_from_transition
from producers.sink import KafkaUnavailableError
from schemas import JOB_TRANSITION, AvroCodec, SchemaError

log = logging.getLogger(__name__)

FeedItem = tuple[str, str, dict[str, Any]]  # (Kafka key, record full name, record)
JOB_CACHE_SIZE = 100_000
STOP_TIMEOUT_S = 5.0


class JobCache:
    """The streaming jobs this instance saw created (bounded, oldest forgotten first), with their latest status."""

    def __init__(self, capacity: int = JOB_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._jobs: OrderedDict[int, JobInfo] = OrderedDict()

    def get(self, pid: int) -> JobInfo | None:
        return self._jobs.get(pid)

    def put(self, job: JobInfo) -> None:
        self._jobs[job.pid] = job
        self._jobs.move_to_end(job.pid)
        while len(self._jobs) > self.capacity:
            self._jobs.popitem(last=False)

    def learn(self, record: Mapping[str, Any]) -> None:
        """Take note of a JobTransition: a new streaming job, or a status change of a known one."""
        created = job_from_transition(record)
        if created is not None:
            self.put(created)
            return
        known = self._jobs.get(int(record["job_id"]))
        if known is not None:
            known.status = int(record["to_status"])


class ResultFeed:
    """Routes records of the output topics to subscribed queues by Kafka key."""

    def __init__(self, bootstrap: str | None, group: str, topics: list[str], codec: AvroCodec) -> None:
        self.bootstrap = bootstrap
        self.group = f"{group}-{uuid.uuid4().hex}"
        self.topics = topics
        self.jobs = JobCache()
        self._codec = codec
        self._subscribers: dict[str, set[asyncio.Queue[FeedItem]]] = {}
        self._ready = asyncio.Event()

    def subscribe(self, key: str, queue: asyncio.Queue[FeedItem]) -> None:
        self._subscribers.setdefault(key, set()).add(queue)

    def unsubscribe(self, key: str, queue: asyncio.Queue[FeedItem]) -> None:
        queues = self._subscribers.get(key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[key]

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until every partition is assigned and positioned; KafkaUnavailableError after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            raise KafkaUnavailableError(
                f"the result feed was not assigned every partition of {self.topics} within {timeout_s}s"
            ) from None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ResultFeed]:
        """Consume for the lifetime of the block (a gateway service)."""
        if not self.bootstrap:
            raise OliverError("the Oliver result feed needs SWITCHBOARD_KAFKA_BOOTSTRAP")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False, auto_offset_reset="latest"
        )
        await consumer.start()
        consumer.subscribe(self.topics)  # after start: a topic that does not exist yet does not hold the gateway up
        task = asyncio.create_task(self._consume(consumer), name=f"oliver-feed-{self.group}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await _stop(consumer)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    self._dispatch(message)
            if not self._ready.is_set() and await self._positioned(consumer):
                self._ready.set()

    async def _positioned(self, consumer: AIOKafkaConsumer) -> bool:
        assigned = consumer.assignment()
        for topic in self.topics:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions or any(TopicPartition(topic, p) not in assigned for p in partitions):
                return False
        for tp in assigned:
            await consumer.position(tp)
        return True

    def _dispatch(self, message: ConsumerRecord[bytes, bytes]) -> None:
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        try:
            decoded = self._codec.decode(message.value or b"")
            if decoded.name == JOB_TRANSITION:
                self.jobs.learn(decoded.record)
        except (SchemaError, OliverError, KeyError, ValueError) as exc:
            log.error("result feed: skipping record %s that cannot be read: %s", where, exc)
            return
        key = message.key.decode() if message.key else ""
        for queue in self._subscribers.get(key, ()):
            queue.put_nowait((key, decoded.name, decoded.record))


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer; if the cluster is gone, give up leaving the group after STOP_TIMEOUT_S."""
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await consumer.stop()
    except TimeoutError:
        log.error("result feed consumer %s did not stop within %.1fs (Kafka unreachable?)", consumer, STOP_TIMEOUT_S)
