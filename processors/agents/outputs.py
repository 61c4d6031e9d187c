"""Sending a worker's outputs inside the Kafka transaction that commits its input.

faust-streaming's exactly-once mode puts only writes to the topics it consumes (and its tables'
changelogs) into the input partition's transaction; records sent to other topics, and table writes
still in Faust's send buffer when it commits, fall outside it. Agents therefore send their state and
outputs here, straight to the input partition's transactional producer: a crash rolls back the
offset, the state and the outputs together.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from infra.topics import Topics
from schemas import ALERT, JOB_TRANSITION, AvroCodec


def topic_for(topics: Topics, name: str) -> str:
    """Where an output record goes: alerts and job transitions have their own topics, the rest is speech."""
    if name == ALERT:
        return topics.alerts
    if name == JOB_TRANSITION:
        return topics.transitions
    return topics.speech


class TransactionalOutputs:
    """Writes table state and output records in the transaction of the event being processed."""

    def __init__(self, app: faust.App, topics: Topics, codec: AvroCodec) -> None:
        self._app = app
        self._topics = topics
        self._codec = codec

    def transaction(self, event: Any) -> str:
        """The transactional id Faust commits the event's offset with (one per input partition)."""
        group = self._app.assignor.group_for_topic(event.message.topic)
        return f"{self._app.conf.id}-{group}-{event.message.partition}"

    async def save(self, event: Any, table: Any, key: str, state: Any) -> None:
        """Set ``table[key]`` locally and write its changelog record in the event's transaction."""
        table.data[key] = state
        changelog = table.changelog_topic.get_topic_name()
        await self._send(event, changelog, orjson.dumps(key), orjson.dumps(state), event.message.partition)

    async def delete(self, event: Any, table: Any, key: str) -> None:
        """Remove ``table[key]`` locally and write its changelog tombstone in the event's transaction."""
        table.data.pop(key, None)
        changelog = table.changelog_topic.get_topic_name()
        await self._send(event, changelog, orjson.dumps(key), None, event.message.partition)

    async def emit(self, event: Any, key: str, outputs: list[tuple[str, Any]]) -> None:
        """Send (record type, record) outputs keyed by ``key``, each to its topic."""
        for name, record in outputs:
            await self._send(event, topic_for(self._topics, name), key.encode(), self._codec.encode(name, record), None)

    async def _send(self, event: Any, topic: str, key: bytes, value: bytes | None, partition: int | None) -> None:
        producer: Any = self._app.producer  # the driver keeps one transactional producer per input partition
        await producer.send(topic, key, value, partition, None, None, transactional_id=self.transaction(event))
