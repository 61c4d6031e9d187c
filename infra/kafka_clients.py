"""Factories for the Kafka clients every process uses, configured the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.settings import Settings

log = logging.getLogger(__name__)


def make_producer(bootstrap: str, settings: Settings) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a record is acknowledged only once every in-sync replica has it."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
        max_request_size=4 * 1024 * 1024,
    )


def make_consumer(bootstrap: str, group: str, *topics: str) -> AIOKafkaConsumer:
    """A consumer that commits by hand (after its output is durable) and starts at the beginning."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=2000,
    )


async def stop_producer(producer: AIOKafkaProducer, timeout_s: float) -> bool:
    """Flush and close ``producer``; True if everything pending was delivered.

    aiokafka's ``stop()`` waits for every pending batch, forever if the cluster is gone. After
    ``timeout_s`` the remaining batches are abandoned (their senders already got an error or a
    timeout, so nothing acknowledged is lost) and the connections are closed.
    """
    stopping = asyncio.create_task(producer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=timeout_s)
    if done:
        stopping.result()
        return True
    log.error("Kafka producer could not deliver its pending records within %.1fs; abandoning them", timeout_s)
    sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)  # no public API for this
    if sender_task is not None:
        sender_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stopping
    return False
