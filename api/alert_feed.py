"""Live alerts as Server-Sent Events, read from the alerts topic.

Each stream has its own consumer without a consumer group (nothing is committed, nothing to clean
up on the broker), reads ``read_committed`` and starts at the end of every partition: the stream
carries the alerts produced after it was opened. ``open`` resolves those end offsets before the
response starts, so an alert produced once the client has the response headers is never missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import orjson
from aiokafka import AIOKafkaConsumer

from api.process import iso_utc
from schemas import ALERT, AvroCodec, SchemaError

log = logging.getLogger(__name__)


class FeedError(Exception):
    """The alert stream cannot be opened; the message names the topic."""


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts of tenant ``cid`` a stream delivers (empty = any)."""

    cid: int
    call_id: str = ""
    rule_kind: str = ""
    agent: str = ""

    def matches_record(self, record: Mapping[str, Any]) -> bool:
        """Everything but the agent, which needs the call's session."""
        return (
            int(record["cid"]) == self.cid
            and self.call_id in ("", record["call_id"])
            and self.rule_kind in ("", record["rule_kind"])
        )


def sse(record: Mapping[str, Any]) -> str:
    """One SSE message of an alert: ``id`` = occurrence and status, ``event: alert``, JSON ``data``."""
    detected = record["detected_at"]
    body = {
        **{k: record[k] for k in ("alert_id", "call_id", "rule_id", "rule_kind", "severity", "status")},
        "start_ms": record["start_ms"],
        "end_ms": record["end_ms"],
        "detected_at": iso_utc(detected) if isinstance(detected, datetime) else detected,
        "details": dict(record["details"]),
    }
    return f"id: {record['alert_id']}.{record['status']}\nevent: alert\ndata: {orjson.dumps(body).decode()}\n\n"


class AlertStream:
    """One client's live alert feed."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        wanted: AlertFilter,
        agent_of: Callable[[str], Awaitable[str]],
        *,
        keepalive_s: float,
    ) -> None:
        self._topic = topic
        self._wanted = wanted
        self._agent_of = agent_of
        self._agents: dict[str, str] = {}
        self._keepalive_s = keepalive_s
        self._codec = AvroCodec.default()
        self._consumer = AIOKafkaConsumer(
            topic,  # without a group, the consumer is assigned every partition of the topic
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            isolation_level="read_committed",
        )

    async def open(self, timeout_s: float = 10.0) -> None:
        """Connect and pin every partition's end offset; raises FeedError when the topic has no partitions."""
        await self._consumer.start()
        try:
            async with asyncio.timeout(timeout_s):
                # A consumer without a group has no rebalance listener: poll until the metadata assigned partitions.
                while not self._consumer.assignment():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assigned = sorted(self._consumer.assignment())
            await self._consumer.seek_to_end(*assigned)
            for tp in assigned:
                await self._consumer.position(tp)
        except TimeoutError:
            await self._consumer.stop()
            raise FeedError(f"alerts topic {self._topic} has no partitions (does it exist?)") from None
        except BaseException:
            await self._consumer.stop()
            raise

    async def events(self) -> AsyncIterator[str]:
        """SSE text: a ``connected`` comment, then alerts as they come, a comment line when idle."""
        try:
            yield ": connected\n\n"
            loop = asyncio.get_running_loop()
            last = loop.time()
            while True:
                fetched = await self._consumer.getmany(timeout_ms=int(min(self._keepalive_s, 1.0) * 1000))
                for messages in fetched.values():
                    for message in messages:
                        record = await self._wanted_record(message.value)
                        if record is not None:
                            last = loop.time()
                            yield sse(record)
                if loop.time() - last >= self._keepalive_s:
                    last = loop.time()
                    yield ": keepalive\n\n"
        finally:
            with anyio.CancelScope(shield=True):
                await self._consumer.stop()

    async def _wanted_record(self, value: bytes) -> Mapping[str, Any] | None:
        try:
            decoded = self._codec.decode(value)
        except SchemaError as exc:
            log.warning("alert stream: undecodable record on %s (the projector dead-letters it): %s", self._topic, exc)
            return None
        if decoded.name != ALERT or not self._wanted.matches_record(decoded.record):
            return None
        if self._wanted.agent and await self._agent(decoded.record["call_id"]) != self._wanted.agent:
            return None
        return decoded.record

    async def _agent(self, call_id: str) -> str:
        """The call's agent, looked up once it is known (an unknown agent is looked up again next time)."""
        if call_id not in self._agents:
            agent = await self._agent_of(call_id)
            if not agent:
                return ""
            self._agents[call_id] = agent
        return self._agents[call_id]
