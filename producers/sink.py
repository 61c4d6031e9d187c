"""Produce Avro records and wait for Kafka's acknowledgement (idempotent producer, acks=all).

A request is answered only after ``RecordSink.send`` returns. When Kafka cannot take the
records in time, ``KafkaUnavailableError`` is raised; the gateway maps it, in one handler, to
the vendor's 503 body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import AvroCodec


class KafkaUnavailableError(Exception):
    """Kafka did not acknowledge the records within the produce timeout."""


class RecordSink:
    """Encodes records with the codec and produces them keyed, awaiting every acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer, codec: AvroCodec, timeout_s: float) -> None:
        self._producer = producer
        self._codec = codec
        self._timeout_s = timeout_s

    async def send(self, topic: str, key: str, name: str, record: Mapping[str, Any]) -> None:
        """Produce one record; return once Kafka has it."""
        await self.send_many(topic, [(key, name, record)])

    async def send_many(self, topic: str, items: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Produce several records (encoded first, so a bad record sends nothing); return once all are acked."""
        encoded = [(key.encode(), self._codec.encode(name, record)) for key, name, record in items]
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = [await self._producer.send(topic, value, key=key) for key, value in encoded]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailableError(
                f"Kafka did not acknowledge {len(encoded)} record(s) for {topic} within {self._timeout_s}s: {exc!r}"
            ) from exc
