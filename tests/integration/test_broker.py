"""The local broker launcher and the Kafka client factories, against real brokers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import Request
from httpx import ASGITransport, AsyncClient

from infra.broker import BrokerError, LocalBroker
from infra.kafka_clients import make_consumer, make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.context import GatewayContext
from producers.gateway import SERVICE_UNAVAILABLE, create_gateway
from producers.sink import KafkaUnavailableError, RecordSink
from schemas import CALL_EVENT, AvroCodec
from tests.conftest import JARS_DIR, alive
from tests.factories import call_event


async def _read_all(consumer: AIOKafkaConsumer, count: int) -> list[bytes]:
    values: list[bytes] = []
    while len(values) < count:
        batch = await consumer.getmany(timeout_ms=10_000)
        assert batch, f"no records within 10 s; got {len(values)} of {count}"
        values.extend(m.value for msgs in batch.values() for m in msgs)
    return values


async def test_idempotent_producer_round_trip(settings: Settings, kafka_bootstrap: str) -> None:
    topics = Topics.from_settings(settings)
    await ensure_topics(kafka_bootstrap, topics.specs(), partitions=3, replication=1)
    producer = make_producer(kafka_bootstrap, settings)
    await producer.start()
    codec = AvroCodec.default()
    try:
        sink = RecordSink(producer, codec, timeout_s=5)
        await sink.send_many(
            topics.events,
            [(f"c{i}", CALL_EVENT, call_event(f"c{i}", 1, "CallStarted", i)) for i in range(20)],
        )
    finally:
        await producer.stop()
    consumer = make_consumer(kafka_bootstrap, settings.group("reader"), topics.events)
    await consumer.start()
    try:
        values = await _read_all(consumer, 20)
    finally:
        await consumer.stop()
    assert sorted(codec.decode(v).record["call_id"] for v in values) == sorted(f"c{i}" for i in range(20))


def test_broker_restarts_on_its_data_and_stops_without_orphans(tmp_path: Path) -> None:
    # A cluster id may begin with '-' (random URL-safe base64); the format step must not read it as an option.
    broker = LocalBroker(workdir=tmp_path / "b", jars_dir=JARS_DIR, heap="256m", cluster_id="-dashFirstClusterId0Aw")
    broker.start()
    pid = broker.pid
    assert pid is not None and alive(pid)
    assert (tmp_path / "b" / "data" / "meta.properties").exists()
    first_meta = (tmp_path / "b" / "data" / "meta.properties").read_text()
    assert "cluster.id=-dashFirstClusterId0Aw" in first_meta
    broker.stop()
    assert not alive(pid)
    # The second start reuses the formatted data directory (no re-format, same cluster id).
    again = LocalBroker(workdir=tmp_path / "b", jars_dir=JARS_DIR, heap="256m")
    with again:
        assert (tmp_path / "b" / "data" / "meta.properties").read_text() == first_meta
        assert "Kafka Server started" in again.log_tail(400)
    assert again.pid is None


def test_broker_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalBroker(workdir=tmp_path / "bad", jars_dir=JARS_DIR, heap="256m", port=port, start_timeout_s=60)
        with pytest.raises(BrokerError, match=r"(?s)exited with code \d+ while starting.*Address already in use"):
            broker.start()
    assert broker.pid is None


async def test_broker_down_gives_kafka_unavailable_and_the_vendor_503(tmp_path: Path, settings: Settings) -> None:
    codec = AvroCodec.default()
    with LocalBroker(workdir=tmp_path / "doomed", jars_dir=JARS_DIR, heap="256m") as doomed:
        topics = Topics.from_settings(settings)
        await ensure_topics(doomed.bootstrap, topics.specs(), partitions=1, replication=1)
        producer = make_producer(doomed.bootstrap, settings)
        await producer.start()
        sink = RecordSink(producer, codec, timeout_s=2)
        await sink.send(topics.events, "c1", CALL_EVENT, call_event("c1", 1, "CallStarted", 0))
    # The broker is gone now; the same producer must give up within the timeout.
    try:
        with pytest.raises(KafkaUnavailableError, match="did not acknowledge 1 record"):
            await sink.send(topics.events, "c1", CALL_EVENT, call_event("c1", 1, "CallEnded", 1))

        app = create_gateway(GatewayContext.build(settings, sink))

        @app.post("/probe")
        async def probe(request: Request) -> dict[str, str]:
            await request.app.state.ctx.sink.send(topics.events, "c1", CALL_EVENT, call_event("c1", 1, "CallHeld", 2))
            return {"status": "sent"}

        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://gw") as client:
            response = await client.post("/probe")
        assert response.status_code == 503
        assert response.json() == SERVICE_UNAVAILABLE
    finally:
        # Two records were never acknowledged; closing must give up on them instead of hanging.
        assert await stop_producer(producer, timeout_s=3) is False
