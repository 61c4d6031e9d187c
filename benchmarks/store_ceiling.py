"""chDB insert rate vs our projector, and the consumer alone, on the same speech_segments rows.

Run: /tmp/venv/bin/python benchmarks/store_ceiling.py [--smoke]   (Kafka: SWITCHBOARD_KAFKA_BOOTSTRAP)

N realistic SpeechSegment records (LEVEL and SPEECH segments of two-track calls, 100 per call) are
measured three ways, each on a fresh chDB directory with our migrations applied:
- raw insert: their projector rows (``projections.rows.to_row``) inserted straight through
  ``ClickHouseStore`` (clickhouse-connect, interface="chdb") in batches of ``projector_batch_size``;
- projector: the records are first produced to Kafka as Avro (``AvroCodec``, topic ``calls.speech``
  with a unique prefix), then our ``Projector`` runs in this process, wired as ``switchboard
  projector`` wires it (without the API), from offset 0; timed from partition assignment until
  ``count()`` of the table is N;
- consume only: the same topic read by a consumer configured like the projector's and every value
  Avro-decoded, no insert; timed from partition assignment to the Nth record.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from infra.kafka_clients import make_consumer, make_producer, stop_producer
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from processors.session import segment_id
from projections.batch import Batcher
from projections.projector import Projector
from projections.rows import TABLES, to_row
from schemas import SPEECH_SEGMENT, AvroCodec

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))
PER_CALL = 100  # segments per call: both tracks, alternating 1 s LEVEL intervals and SPEECH segments
RATE_HZ = 8000


class StoreCeilingError(Exception):
    """A measurement did not see every row in time; the message names it and the count reached."""


def segments(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` SpeechSegment records as the worker emits them, ``PER_CALL`` per call of 5 tenants."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        if i % PER_CALL == 0:
            call_id, cid = str(uuid.UUID(int=rng.getrandbits(128), version=4)), 1 + rng.randrange(5)
        step = i % PER_CALL
        role = ("AGENT", "CUSTOMER")[step % 2]
        level = step % 4 < 2
        start = (step // 4) * RATE_HZ + (0 if level else rng.randrange(RATE_HZ // 2))
        end = start + (RATE_HZ if level else rng.randrange(2_000, 16_000))
        rms = round(rng.uniform(-45.0, -15.0), 2)
        out.append({
            "segment_id": segment_id(call_id, role, "LEVEL" if level else "SPEECH", start),
            "call_id": call_id, "cid": cid, "track": role.lower(), "role": role,
            "kind": "LEVEL" if level else "SPEECH", "start_sample": start, "end_sample": end, "sample_rate": RATE_HZ,
            "rms_dbfs": rms if level else None, "peak_dbfs": round(rms + rng.uniform(3, 12), 2) if level else None,
            "speech_probability": None if level else round(rng.uniform(0.5, 1.0), 4),
            "detector": "level-meter:2" if level else "webrtcvad:3",
            "voiced_fraction": round(rng.random(), 4) if level else None,
        })  # fmt: skip
    return out


def open_store(settings: Settings) -> ClickHouseStore:
    """A fresh chDB store under ``settings.data_dir`` with our migrations applied."""
    store = ClickHouseStore.open(settings)
    apply_migrations(store, load_migrations(MIGRATIONS))
    return store


def count(store: ClickHouseStore) -> int:
    return int(store.query(f"SELECT count() AS n FROM {store.database}.speech_segments")[0]["n"])


def raw_insert(settings: Settings, records: list[dict[str, Any]]) -> float:
    """Rows/s of inserting the records' rows straight through the store, ``projector_batch_size`` at a time."""
    table, columns = TABLES[SPEECH_SEGMENT]
    partitions = settings.topic_partitions
    rows = [to_row(SPEECH_SEGMENT, r, i % partitions, i // partitions)[1] for i, r in enumerate(records)]
    store = open_store(settings)
    try:
        size = settings.projector_batch_size
        start = time.perf_counter()
        for first in range(0, len(rows), size):
            store.insert(table, rows[first : first + size], columns)
        elapsed = time.perf_counter() - start
        held = count(store)
    finally:
        store.close()
    if held != len(rows):
        raise StoreCeilingError(f"raw insert: the table holds {held} rows, not {len(rows)}")
    return len(rows) / elapsed


async def produce(settings: Settings, topic: str, records: list[dict[str, Any]]) -> float:
    """Produce the records as Avro, keyed by call id, with the gateway's producer settings; records/s."""
    codec = AvroCodec.default()
    values = [(r["call_id"].encode(), codec.encode(SPEECH_SEGMENT, r)) for r in records]
    producer = make_producer(str(settings.kafka_bootstrap), settings)
    await producer.start()
    try:
        start = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - start)
    finally:
        await stop_producer(producer, settings.produce_timeout_s)


class Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes when partitions are first assigned, then passes the call on to ``inner`` (the projector's)."""

    def __init__(self, inner: ConsumerRebalanceListener | None = None) -> None:
        self.inner = inner
        self.at: float | None = None  # perf_counter() s

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.inner is not None:
            await self.inner.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.at is None and assigned:
            self.at = time.perf_counter()
        if self.inner is not None:
            await self.inner.on_partitions_assigned(assigned)

    def first(self) -> float:
        """perf_counter() s of the first assignment."""
        if self.at is None:
            raise StoreCeilingError("the consumer was never assigned a partition")
        return self.at


async def consume_only(settings: Settings, topic: str, expected: int, timeout_s: float) -> float:
    """Records/s of fetching and Avro-decoding the topic, from partition assignment to the last record."""
    codec = AvroCodec.default()
    consumer = make_consumer(str(settings.kafka_bootstrap), settings.group(f"consume-only-{uuid.uuid4().hex[:6]}"))
    assigned = Assigned()
    consumer.subscribe([topic], listener=assigned)
    await consumer.start()
    decoded = 0
    try:
        async with asyncio.timeout(timeout_s):
            while decoded < expected:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for message in messages:
                        codec.decode(message.value)
                        decoded += 1
        return expected / (time.perf_counter() - assigned.first())
    except TimeoutError as exc:
        raise StoreCeilingError(f"consume only: {decoded} of {expected} records in {timeout_s:g} s") from exc
    finally:
        await consumer.stop()


async def projector(settings: Settings, topics: Topics, expected: int, timeout_s: float) -> dict[str, Any]:
    """Run our projector (wired as ``switchboard projector`` wires it) until the table holds ``expected`` rows."""
    bootstrap = str(settings.kafka_bootstrap)
    store = open_store(settings)
    consumer = make_consumer(bootstrap, settings.group(settings.projector_group))
    producer = make_producer(bootstrap, settings)
    await producer.start()
    projector_ = Projector(
        consumer,
        store,
        AvroCodec.default(),
        Batcher(settings.projector_batch_size, settings.projector_flush_ms),
        deadletter=(producer, topics.deadletter),
    )
    assigned = Assigned(projector_.listener())
    consumer.subscribe([topics.events, topics.speech, topics.transitions, topics.alerts], listener=assigned)
    stop = asyncio.Event()
    started = time.perf_counter()
    await consumer.start()
    task = asyncio.create_task(projector_.run(stop))
    try:
        held = await _until_held(store, expected, timeout_s, task)
        done = time.perf_counter()
        stop.set()
        await task
    finally:
        stop.set()
        await consumer.stop()
        await stop_producer(producer, settings.produce_timeout_s)
        store.close()
    if held != expected or projector_.dead_lettered:
        raise StoreCeilingError(f"projector: {held} rows of {expected}, {projector_.dead_lettered} dead-lettered")
    join = assigned.first()
    return {"rows_per_s": expected / (done - join), "join_s": join - started}


async def _until_held(store: ClickHouseStore, expected: int, timeout_s: float, task: asyncio.Task[None]) -> int:
    """Poll ``count()`` every 100 ms until it reaches ``expected`` (or the projector fails); the count reached."""
    held = 0
    try:
        async with asyncio.timeout(timeout_s):
            while held < expected:
                if task.done():
                    task.result()  # raises what stopped the projector
                    raise StoreCeilingError(f"projector: stopped with {held} of {expected} rows")
                await asyncio.sleep(0.1)
                held = await asyncio.to_thread(count, store)
    except TimeoutError as exc:
        raise StoreCeilingError(f"projector: the table holds {held} of {expected} rows after {timeout_s:g} s") from exc
    return held


def bench_settings(root: Path, name: str, bootstrap: str, prefix: str) -> Settings:
    """Our defaults (batch size, flush age, partitions), a fresh embedded chDB directory and this run's topics."""
    return Settings(
        data_dir=root / name,
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        clickhouse_url=None,
        clickhouse_database="switchboard",
    )


async def run(bootstrap: str, smoke: bool) -> dict[str, Any]:
    """Raw chDB insert, producing, consume only, and the projector over the same N records."""
    n = 2_000 if smoke else 200_000
    timeout_s = 120 + n / 200
    records = segments(n)
    root = Path(tempfile.mkdtemp(prefix="sb-store-ceiling-"))
    prefix = f"bench-{uuid.uuid4().hex[:10]}."
    try:
        raw = raw_insert(bench_settings(root, "raw", bootstrap, prefix), records)
        settings = bench_settings(root, "projector", bootstrap, prefix)
        topics = Topics.from_settings(settings)
        await ensure_topics(
            bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=settings.topic_replication
        )
        produced = await produce(settings, topics.speech, records)
        consumed = await consume_only(settings, topics.speech, n, timeout_s)
        projected = await projector(settings, topics, n, timeout_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    raw, consumed, ours = round(raw), round(consumed), round(projected["rows_per_s"])
    codec, sample = AvroCodec.default(), records[:1000]
    return {
        "rows": n,
        "batch_size": settings.projector_batch_size,
        "flush_ms": settings.projector_flush_ms,
        "partitions": settings.topic_partitions,
        "avro_bytes_per_record": round(sum(len(codec.encode(SPEECH_SEGMENT, r)) for r in sample) / len(sample)),
        "raw_insert_rows_per_s": raw,
        "produce_records_per_s": round(produced),
        "consume_only_rows_per_s": consumed,
        "projector_rows_per_s": ours,
        "projector_join_s": round(projected["join_s"], 2),
        "ratios": {
            "projector_over_raw_insert": round(ours / raw, 3),
            "projector_over_consume_only": round(ours / consumed, 3),
        },
    }


def markdown(result: dict[str, Any]) -> str:
    r = result["ratios"]
    rows = (
        ("raw chDB insert (ClickHouseStore.insert)", result["raw_insert_rows_per_s"]),
        ("consume + Avro decode only", result["consume_only_rows_per_s"]),
        ("projector (consume, decode, batch, insert, commit)", result["projector_rows_per_s"]),
    )
    lines = [
        "## Store ceiling",
        "",
        f"{result['rows']:,} SpeechSegment rows (two-track calls, LEVEL and SPEECH segments, "
        f"{result['avro_bytes_per_record']} bytes of Avro each), each case on a fresh embedded chDB directory "
        f"with our migrations. Raw insert: the projector's rows through `ClickHouseStore.insert` in batches of "
        f"{result['batch_size']:,} (the default `projector_batch_size`). Projector: our `Projector` in process "
        f"(batch {result['batch_size']:,}, flush {result['flush_ms']} ms, {result['partitions']} partitions) from "
        f"offset 0, timed from partition assignment until `count()` reaches N (group join, "
        f"{result['projector_join_s']} s, excluded). Consume only: the same consumer settings, Avro decode, no "
        f"insert. The records were produced first at {result['produce_records_per_s']:,} rec/s.",
        "",
        "| case | rows/s | µs/row |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {rate:,} | {1e6 / rate:.1f} |" for name, rate in rows]
    serial = 1e6 / result["raw_insert_rows_per_s"] + 1e6 / result["consume_only_rows_per_s"]
    lines += [
        "",
        f"Ratios: projector / raw insert {r['projector_over_raw_insert']:.2f}x; projector / consume only "
        f"{r['projector_over_consume_only']:.2f}x. Consume-and-decode plus insert, one after the other, would "
        f"take {serial:.1f} µs/row; the projector takes {1e6 / result['projector_rows_per_s']:.1f}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="2,000 rows instead of 200,000")
    args = parser.parse_args()
    bootstrap = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP")
    if not bootstrap:
        parser.error("set SWITCHBOARD_KAFKA_BOOTSTRAP to a Kafka broker")
    print(markdown(asyncio.run(run(bootstrap, args.smoke))))


if __name__ == "__main__":
    main()
