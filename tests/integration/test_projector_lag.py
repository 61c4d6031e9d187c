"""Consumer lag of the projector, per partition, as /metrics exposes it (real broker, embedded ClickHouse)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import httpx

from api.app import create_app
from infra.kafka_clients import make_consumer
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from projections.batch import Batcher
from projections.projector import Projector
from schemas import AvroCodec
from tests.integration import api_data
from tests.integration.api_data import S, event

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))
EVENTS = [event(1, "call-l", "Dtmf", S(n), n, digits=str(n % 10)) for n in range(10)]


async def _run_until(projector: Projector, done: Callable[[], bool], then: Callable[[], Awaitable[str]]) -> str:
    """Run ``projector`` until ``done()``, await ``then`` while it still runs, stop it (it flushes)."""
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop, poll_ms=50))
    try:
        async with asyncio.timeout(30):
            while not done():
                await asyncio.sleep(0.05)
        return await then()
    finally:
        stop.set()
        await task


async def _metrics(settings: Settings, store: ClickHouseStore, projector: Projector) -> str:
    transport = httpx.ASGITransport(app=create_app(settings, store, projector=projector))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def test_lag_counts_unwritten_records_then_drops_to_zero(settings: Settings, store: ClickHouseStore) -> None:
    topics = Topics.from_settings(settings)
    await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=1, replication=1)
    apply_migrations(store, load_migrations(MIGRATIONS))
    await api_data.produce(settings, EVENTS)
    group = settings.group("projector-lag")
    consumer = make_consumer(str(settings.kafka_bootstrap), group)
    # Batches that are never due: everything read stays pending (not written, not committed).
    holding = Projector(consumer, store, AvroCodec.default(), Batcher(max_rows=1000, max_age_ms=3_600_000))
    consumer.subscribe([topics.events, topics.alerts], listener=holding.listener())
    await consumer.start()
    try:
        full = lambda: holding.lag().get((topics.events, 0)) == len(EVENTS)  # noqa: E731
        text = await _run_until(holding, full, lambda: _metrics(settings, store, holding))
        assert holding.lag() == {(topics.events, 0): 0, (topics.alerts, 0): 0}  # run() flushed on stop
    finally:
        await consumer.stop()
    assert f'switchboard_projector_lag{{topic="{topics.alerts}",partition="0"}} 0\n' in text
    assert f'switchboard_projector_lag{{topic="{topics.events}",partition="0"}} 10\n' in text
    assert "# TYPE switchboard_projector_lag gauge\n" in text
    assert "switchboard_projector_rows_written_total 0\n" in text

    await api_data.produce(settings, [event(1, "call-l", "CallEnded", S(20), 0)])
    consumer = make_consumer(str(settings.kafka_bootstrap), group)
    resumed = Projector(consumer, store, AvroCodec.default(), Batcher(max_rows=1, max_age_ms=50))
    consumer.subscribe([topics.events], listener=resumed.listener())
    await consumer.start()
    try:
        caught_up = lambda: resumed.rows_written == 1 and resumed.lag().get((topics.events, 0)) == 0  # noqa: E731
        text = await _run_until(resumed, caught_up, lambda: _metrics(settings, store, resumed))
    finally:
        await consumer.stop()
    assert f'switchboard_projector_lag{{topic="{topics.events}",partition="0"}} 0\n' in text
    assert "switchboard_projector_rows_written_total 1\n" in text
    count = store.query(f"SELECT count() AS n FROM {store.database}.call_events FINAL")[0]["n"]
    assert count == 11


async def test_metrics_without_an_in_process_projector_is_empty(settings: Settings, store: ClickHouseStore) -> None:
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answer = await client.get("/metrics")
    assert (answer.status_code, answer.text) == (200, "")
