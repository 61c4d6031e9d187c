"""Deliver callback records to Kafka without ever making the telephony platform wait past its deadline.

``deliver`` tries Kafka until the caller's deadline (monotonic loop time): if Kafka acknowledges
in time, done. Otherwise the encoded record is appended to the durable spool (spool.py) before
``deliver`` returns, so the callback can be answered and nothing it carried is lost. A background
drainer (``running``, registered with ``ctx.add_service``) sends spooled entries in order and marks
them delivered only after Kafka acknowledged them; it starts at gateway start-up when a spool from
an earlier run holds entries, and is woken by every new spooled entry.

Exactly once, as far as one process can see: a record handed to the producer is never handed
to it again while that send is unresolved. The outbox owns its producer (idempotent, acks=all, so
aiokafka retries a handed-over batch until it is delivered) and keeps each send's delivery future:
a record whose send outlived the deadline is spooled *with* its future, and the drainer waits for
that future instead of sending the record again. Only a send that failed outright is repeated.
(``RecordSink`` hides the delivery future behind its timeout, so it cannot be used here.)
A crash between Kafka's acknowledgement and the spool's delivery mark re-sends that entry after
restart: the same record with the same event_id, which consumers already deduplicate.

Order: while the spool holds an entry that is not with the producer yet, new records are spooled
behind it instead of overtaking it; records with the producer stay in its per-partition order.
If the spool itself cannot be written, ``deliver`` raises ``KafkaUnavailableError`` (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from producers.mediaservice.models import CallbackError
from producers.mediaservice.spool import LOG_NAME, Spool, SpoolEntry, SpoolError
from producers.sink import KafkaUnavailableError

log = logging.getLogger(__name__)

BATCH = 500  # spooled entries handed to the producer per drain round
BACKOFF_S = (0.2, 5.0)  # first and largest wait between drain attempts after a failure, s
SHUTDOWN_S = 5.0  # longest wait at shutdown for records still with the producer, s


class OutboxError(CallbackError):
    """A drain round failed (Kafka refused or lost a record); it is retried after a backoff."""


def _failed(future: asyncio.Future[Any]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


def _succeeded(future: asyncio.Future[Any]) -> bool:
    return future.done() and not _failed(future)


class Outbox:
    """Kafka-or-spool delivery of encoded records, with the drainer as a gateway service."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self._settings = settings
        self.directory = directory
        self._spool: Spool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._inflight: dict[int, asyncio.Future[Any]] = {}  # spooled seq -> delivery future with the producer
        self._lock = asyncio.Lock()  # spool append + in-flight registration, drain snapshots and acks
        self._wake = asyncio.Event()
        self._needed = asyncio.Event()
        self._ready = asyncio.Event()
        self._running = False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the drainer for the gateway's lifetime; at exit, give pending sends a last chance."""
        if (self.directory / LOG_NAME).exists():  # an earlier run may have left entries
            self._open_spool()
            self._needed.set()
        task = asyncio.create_task(self._run(), name="mediaservice-outbox")
        task.add_done_callback(_report_crash)
        self._running = True
        try:
            yield
        finally:
            self._running = False
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._shutdown()

    async def deliver(self, topic: str, key: str, value: bytes, deadline: float) -> bool:
        """Kafka-acknowledged (True) or durably spooled (False) by ``deadline`` (loop time, s) or soon after."""
        if not self._running:
            raise OutboxError("the mediaservice outbox is not running (gateway lifespan not started)")
        self._needed.set()
        future = await self._try_send(topic, key, value, deadline)
        if future is not None and _succeeded(future):
            return True
        try:
            async with self._lock:
                spool = self._open_spool()
                entry = await asyncio.to_thread(spool.append, topic, key, value)
                if future is not None and not _failed(future):
                    self._inflight[entry.seq] = future
        except SpoolError as exc:
            raise KafkaUnavailableError(f"Kafka did not acknowledge in time and the spool failed: {exc}") from exc
        self._wake.set()
        return False

    async def _try_send(self, topic: str, key: str, value: bytes, deadline: float) -> asyncio.Future[Any] | None:
        """The delivery future of a send started before the deadline (waited for until then), or None."""
        loop = asyncio.get_running_loop()
        if self._producer is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), max(0.0, deadline - loop.time()))
        producer = self._producer
        if producer is None or (self._spool is not None and self._spool.pending_count > len(self._inflight)):
            return None  # no producer yet, or a backlog this record must not overtake
        try:
            async with asyncio.timeout_at(deadline):
                future: asyncio.Future[Any] = await producer.send(topic, value, key=key.encode())
        except (TimeoutError, KafkaError) as exc:
            log.info("mediaservice record for %s not handed to Kafka before the deadline: %r", key, exc)
            return None  # a cancelled send() never reached the producer's batches
        await asyncio.wait({future}, timeout=max(0.0, deadline - loop.time()))
        return future

    def _open_spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool.open(self.directory)
        return self._spool

    async def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while True:
            await self._needed.wait()
            try:
                await self._start_producer()
                await self._drain()
            except (KafkaError, TimeoutError, SpoolError, OutboxError) as exc:
                log.warning("mediaservice spool not drained (retry in %.1fs): %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_S[1])
                continue
            backoff = BACKOFF_S[0]
            await self._wake.wait()

    async def _start_producer(self) -> None:
        if self._producer is not None:
            return
        bootstrap = self._settings.kafka_bootstrap
        if not bootstrap:
            raise OutboxError("SWITCHBOARD_KAFKA_BOOTSTRAP is not set; callbacks stay in the spool")
        producer = make_producer(bootstrap, self._settings)
        try:
            async with asyncio.timeout(self._settings.produce_timeout_s):
                await producer.start()
        except BaseException:
            await stop_producer(producer, SHUTDOWN_S)
            raise
        self._producer = producer
        self._ready.set()

    async def _drain(self) -> None:
        """Deliver spooled entries in order until none is left."""
        while True:
            self._wake.clear()
            async with self._lock:
                spool = self._spool
                if spool is None or spool.pending_count == 0:
                    return
                batch = await asyncio.to_thread(spool.pending, BATCH)
            await self._hand_over(batch)
            delivered = await self._delivered_prefix(batch)
            if delivered:
                await self._ack(spool, delivered[-1].seq)
            if len(delivered) < len(batch):
                raise OutboxError(f"Kafka did not take spooled record seq {batch[len(delivered)].seq}")

    async def _hand_over(self, batch: list[SpoolEntry]) -> None:
        """Give the producer every entry of ``batch`` it does not have (or lost), in order."""
        assert self._producer is not None
        for entry in batch:
            known = self._inflight.get(entry.seq)
            if known is None or _failed(known):
                self._inflight[entry.seq] = await self._producer.send(entry.topic, entry.value, key=entry.key.encode())

    async def _delivered_prefix(self, batch: list[SpoolEntry]) -> list[SpoolEntry]:
        """The leading entries of ``batch`` Kafka acknowledged (waits for each; stops at the first failure)."""
        for done, entry in enumerate(batch):
            future = self._inflight[entry.seq]
            await asyncio.wait({future})
            if _failed(future):
                why = "cancelled" if future.cancelled() else repr(future.exception())
                log.warning("spooled mediaservice record seq %d was not delivered: %s", entry.seq, why)
                return batch[:done]
        return batch

    async def _ack(self, spool: Spool, seq: int) -> None:
        async with self._lock:
            await asyncio.to_thread(spool.ack, seq)
            for done in [s for s in self._inflight if s <= seq]:
                del self._inflight[done]

    async def _shutdown(self) -> None:
        if self._producer is not None:
            await stop_producer(self._producer, min(self._settings.produce_timeout_s, SHUTDOWN_S))
            self._producer = None
        if self._spool is None:
            return
        delivered = None
        for entry in self._spool.pending(len(self._inflight)) if self._inflight else []:
            future = self._inflight.get(entry.seq)
            if future is None or not _succeeded(future):
                break
            delivered = entry.seq
        if delivered is not None:
            self._spool.ack(delivered)
        self._inflight.clear()
        self._spool.close()
        self._spool = None


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "mediaservice outbox drainer stopped; spooled callbacks wait for a restart", exc_info=task.exception()
        )
