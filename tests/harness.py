"""Test harness for the ingestion edge: a gateway served by uvicorn on a real port, topic readers, a vendor peer.

Everything here is real: the gateway's producer talks to the session broker, readers are aiokafka
consumers, and the peer is an HTTP server on a socket (it plays the vendor's mediaservice or a
webhook receiver).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.broker import free_port
from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.context import GatewayContext
from producers.gateway import create_gateway
from producers.sink import RecordSink
from schemas import AvroCodec

CODEC = AvroCodec.default()


@dataclass(frozen=True)
class Consumed:
    """One record read back from a topic."""

    key: str
    name: str
    record: dict[str, Any]
    headers: dict[str, bytes]


def consumed(msg: Any) -> Consumed:
    """A fetched Kafka message, decoded."""
    decoded = CODEC.decode(msg.value)
    key = msg.key.decode() if msg.key else ""
    return Consumed(key, decoded.name, decoded.record, {k: bytes(v) for k, v in msg.headers})


async def read_topic(
    bootstrap: str, topic: str, count: int, timeout_s: float = 15.0, *, committed_only: bool = False
) -> list[Consumed]:
    """The first ``count`` records of ``topic`` (all partitions), decoded; fails if fewer arrive in time.

    ``committed_only`` reads as downstream consumers of transactional writers do (read_committed).
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed" if committed_only else "read_uncommitted",
    )
    await consumer.start()
    out: list[Consumed] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < count:
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    out += [consumed(msg) for msg in messages]
    except TimeoutError:
        raise AssertionError(f"expected {count} records on {topic}, got {len(out)}: {out}") from None
    finally:
        await consumer.stop()
    return out


async def topic_size(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (sum of end offsets over its partitions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()  # first lookup of a fresh topic
            partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


@dataclass
class RunningGateway:
    """A gateway served on 127.0.0.1 with its own topics."""

    url: str
    ws_url: str
    ctx: GatewayContext
    bootstrap: str

    @property
    def topics(self) -> Topics:
        return self.ctx.topics

    async def read(self, topic: str, count: int, timeout_s: float = 15.0) -> list[Consumed]:
        return await read_topic(self.bootstrap, topic, count, timeout_s)

    async def size(self, topic: str) -> int:
        return await topic_size(self.bootstrap, topic)


@asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 until the block ends; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_gateway(settings: Settings, **overrides: Any) -> AsyncIterator[RunningGateway]:
    """Topics created, a real producer started, the gateway app served on a free port."""
    if overrides:
        settings = settings.model_copy(update=overrides)
    assert settings.kafka_bootstrap is not None
    bootstrap = settings.kafka_bootstrap
    topics = Topics.from_settings(settings)
    await ensure_topics(
        bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=settings.topic_replication
    )
    producer = make_producer(bootstrap, settings)
    await producer.start()
    try:
        ctx = GatewayContext.build(settings, RecordSink(producer, CODEC, settings.produce_timeout_s))
        async with serve(create_gateway(ctx)) as url:
            yield RunningGateway(url=url, ws_url=url.replace("http://", "ws://"), ctx=ctx, bootstrap=bootstrap)
    finally:
        await stop_producer(producer, settings.produce_timeout_s)


@dataclass(frozen=True)
class PeerRequest:
    """One request the peer received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[PeerRequest], Response]


@dataclass
class HttpPeer:
    """A real HTTP server that records every request and answers with ``respond`` (default 200 {"success": true})."""

    respond: Responder = field(default=lambda _: JSONResponse({"success": True}))
    requests: list[PeerRequest] = field(default_factory=list)
    url: str = ""

    async def _handle(self, request: Request) -> Response:
        seen = PeerRequest(request.method, request.url.path, dict(request.headers), await request.body())
        self.requests.append(seen)
        return self.respond(seen)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"])])

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[PeerRequest]:
        """The first ``count`` requests, waiting for them to arrive."""
        try:
            async with asyncio.timeout(timeout_s):
                while len(self.requests) < count:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"peer expected {count} requests, got {self.requests}") from None
        return self.requests[:count]


@asynccontextmanager
async def http_peer(respond: Responder | None = None) -> AsyncIterator[HttpPeer]:
    """An ``HttpPeer`` served on a free port."""
    peer = HttpPeer() if respond is None else HttpPeer(respond=respond)
    async with serve(peer.app()) as url:
        peer.url = url
        yield peer


async def read_to_end(bootstrap: str, topic: str, *, committed_only: bool = True) -> list[Consumed]:
    """Every record of ``topic`` up to its current end (for read_committed: its last stable offset).

    Unlike ``read_topic`` it needs no count, so transaction markers (which take offsets but are not
    records) do not matter.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed_only else "read_uncommitted",
    )
    await consumer.start()
    out: list[Consumed] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        async with asyncio.timeout(30):
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    out += [consumed(msg) for msg in messages]
    finally:
        await consumer.stop()
    return out
