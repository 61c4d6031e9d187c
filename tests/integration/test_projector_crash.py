"""A projector that dies between an insert and its offset commit: the next one re-inserts, no view changes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from api import queries
from infra.kafka_clients import make_consumer
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from projections.batch import Batcher
from projections.projector import Projector
from schemas import AvroCodec
from tests.integration import api_data

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))


class Crash(Exception):
    """The process died right after ClickHouse acknowledged an insert."""


class DyingStore:
    """The real store; the ``nth`` insert is written, then the 'process' dies before anything else runs."""

    def __init__(self, store: ClickHouseStore, nth: int) -> None:
        self.database = store.database
        self._store = store
        self._left = nth

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        self._store.insert(table, rows, columns)
        self._left -= 1
        if self._left == 0:
            raise Crash(f"died after inserting {len(rows)} rows into {table}")

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        self._store.command(sql, parameters)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._store.query(sql, parameters)

    def close(self) -> None:
        """The real store outlives the dead projector."""


def _views(store: ClickHouseStore) -> dict[str, Any]:
    return {
        "calls": queries.sessions(store, 1),
        "call-a": queries.call_session(store, 1, "call-a"),
        "metrics": queries.call_metrics(store, 1, "call-a"),
        "interims": queries.prosody_interims(store, 1, "call-a"),
        "alerts": queries.alerts(store, 1),
        "jobs": queries.jobs(store, 1),
        "segments": queries.call_segments(store, 1, "call-a", None, 100, 0),
    }


async def _consume(projector: Projector, consumer: Any, done: Any) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop, poll_ms=50))
    try:
        async with asyncio.timeout(60):
            while not done() and not task.done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        try:
            await task
        finally:
            await consumer.stop()


async def test_crash_between_insert_and_commit_changes_no_view(settings: Settings, store: ClickHouseStore) -> None:
    topics = Topics.from_settings(settings)
    await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=3, replication=1)
    apply_migrations(store, load_migrations(MIGRATIONS))
    await api_data.produce(settings)
    subscribed = [topics.events, topics.speech, topics.transitions, topics.alerts]
    group = settings.group("projector")

    consumer = make_consumer(str(settings.kafka_bootstrap), group)
    dying = Projector(consumer, DyingStore(store, nth=4), AvroCodec.default(), Batcher(max_rows=3, max_age_ms=50))
    consumer.subscribe(subscribed, listener=dying.listener())
    await consumer.start()
    with pytest.raises(Crash):
        await _consume(dying, consumer, lambda: False)

    consumer = make_consumer(str(settings.kafka_bootstrap), group)  # same group: resumes from committed offsets
    survivor = Projector(consumer, store, AvroCodec.default(), Batcher(max_rows=3, max_age_ms=50))
    consumer.subscribe(subscribed, listener=survivor.listener())
    await consumer.start()
    partitions = len(subscribed) * 3

    def caught_up() -> bool:
        lag = survivor.lag()
        return len(lag) == partitions and not any(lag.values()) and survivor.rows_written > 0

    await _consume(survivor, consumer, caught_up)
    recovered = _views(store)

    raw = sum(store.query(f"SELECT count() AS n FROM {store.database}.{t}")[0]["n"] for t in (
        "call_events", "speech_segments", "call_metrics", "prosody_interims", "alerts", "job_transitions"))  # fmt: skip
    assert raw > len(api_data.RECORDS)  # the crashed batch was inserted twice ...
    # ... and every view shows each record once: the same as a projection that never crashed.
    await api_data.project(settings, store, settings.group("clean-replay"))
    assert _views(store) == recovered
    assert [c["call_id"] for c in recovered["calls"]] == ["call-b", "call-c", "call-a"]
    assert (recovered["call-a"]["hold_time_ms"], recovered["call-a"]["alert_count"]) == (15_000, 2)
    assert [a["alert_id"] for a in recovered["alerts"]] == ["occ-3", "occ-2", "occ-1"]
    assert [(j["job_id"], j["status"], j["transitions"]) for j in recovered["jobs"]] == [
        (78, 0, 1), (80, 2, 3), (79, -2, 2), (77, 2, 3)
    ]  # fmt: skip
