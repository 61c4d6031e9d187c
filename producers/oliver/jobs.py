"""Find the streaming job behind a pid, so any gateway instance can serve the socket of a job another one created.

The job's queued JobTransition on ``jobs.transitions`` is the proof that the pid is a streaming job
and of which tenant. The result feed of this instance caches the ones it saw; for the others
(created before this instance started, or not consumed yet) the record is read back from Kafka:
a pid is a snowflake id carrying its creation time (``producers.ids``), and the create call produces
the transition right after taking the id, so only a few seconds of the topic are scanned, starting at
that time (``offsets_for_times``). A pid whose time is in the future or older than the configured
maximum age is refused without looking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from producers.ids import id_time_ms
from producers.oliver.errors import OliverError
from producers.oliver.feed import JobCache
from producers.oliver.models import JobInfo
from producers.oliver.translate import job_from_transition
from producers.sink import KafkaUnavailableError
from schemas import JOB_TRANSITION, AvroCodec, SchemaError

log = logging.getLogger(__name__)

CLOCK_SKEW_MS = 5_000  # tolerated between the instance that took the id and this one
SCAN_BEFORE_MS = 1_000  # the transition's timestamp is taken after the id, but tolerate clock steps


class JobDirectory:
    """Streaming jobs by pid: from the cache, else from the transitions topic."""

    def __init__(
        self,
        bootstrap: str | None,
        topic: str,
        codec: AvroCodec,
        cache: JobCache,
        *,
        timeout_s: float,
        max_age_ms: int,
        clock_ms: Callable[[], int],
    ) -> None:
        self.bootstrap, self.topic, self.codec, self.cache = bootstrap, topic, codec, cache
        self.timeout_s, self.max_age_ms, self.clock_ms = timeout_s, max_age_ms, clock_ms

    def plausible(self, pid: int) -> bool:
        """Whether ``pid`` could be a job id issued within the maximum age (by its embedded time)."""
        now, born = self.clock_ms(), id_time_ms(pid)
        return now - self.max_age_ms <= born <= now + CLOCK_SKEW_MS

    async def find(self, pid: int) -> JobInfo | None:
        """The streaming job ``pid`` (any tenant), or None if no queued transition of a streaming job has it."""
        if not self.plausible(pid):
            return None
        job = self.cache.get(pid)
        if job is None:
            job = await self._scan(pid)
            if job is not None:
                self.cache.put(job)
        return job

    async def _scan(self, pid: int) -> JobInfo | None:
        born = id_time_ms(pid)
        since, until = born - SCAN_BEFORE_MS, born + int(self.timeout_s * 1000) + CLOCK_SKEW_MS
        # Without a group the consumer is given every partition of the topic when it starts.
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            async with asyncio.timeout(self.timeout_s):
                await consumer.start()
                return await self._read(consumer, str(pid).encode(), since, until)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailableError(f"cannot look up job {pid} on {self.topic}: {exc!r}") from exc
        finally:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, key: bytes, since: int, until: int) -> JobInfo | None:
        partitions = sorted(consumer.assignment())
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        ends = await consumer.end_offsets(partitions)
        todo: dict[TopicPartition, int] = {}
        for tp in partitions:
            start = starts.get(tp)
            if start is not None and start.offset < ends[tp]:
                consumer.seek(tp, start.offset)
                todo[tp] = ends[tp]
        job: JobInfo | None = None
        while todo:
            batches = await consumer.getmany(*todo, timeout_ms=200)
            for tp, messages in batches.items():
                for message in messages:
                    if message.timestamp > until:
                        todo.pop(tp, None)
                        break
                    if message.key == key:
                        job = self._apply(job, message.value or b"")
                    if message.offset + 1 >= todo.get(tp, 0):
                        todo.pop(tp, None)
                        break
        return job

    def _apply(self, job: JobInfo | None, value: bytes) -> JobInfo | None:
        try:
            record = self.codec.decode_as(JOB_TRANSITION, value)
            created = job_from_transition(record)
        except (SchemaError, OliverError, KeyError, ValueError) as exc:
            log.error("job lookup: skipping a record on %s that cannot be read: %s", self.topic, exc)
            return job
        if created is not None:
            return created
        if job is not None:
            job.status = int(record["to_status"])
        return job
