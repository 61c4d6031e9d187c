"""Factories for the Kafka clients every process uses, configured the same way everywhere."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.settings import Settings


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
