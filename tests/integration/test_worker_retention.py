"""A completed call's facts leave the worker's calls table (and its compacted changelog) after the
retention, in a transaction; a live call's state stays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.sink import RecordSink
from schemas import AUDIO_CHUNK, CALL_EVENT, CALL_METRICS, AvroCodec
from tests.factories import audio_chunk, call_event
from tests.harness import read_to_end
from tests.workers import WorkerProcess


async def _changelog(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes, bytes | None]]:
    """Every (key, value) of the changelog as a read_committed reader sees it; tombstones have value None."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[tuple[bytes, bytes | None]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                out += [(m.key, m.value) for m in batch]
        return out
    finally:
        await consumer.stop()


async def _send_call(settings: Settings, topics: Topics, call_id: str, end: bool) -> None:
    producer = make_producer(str(settings.kafka_bootstrap), settings)
    await producer.start()
    try:
        sink = RecordSink(producer, AvroCodec.default(), 5)
        await sink.send_many(topics.events, [(call_id, CALL_EVENT, call_event(call_id, 1, "CallStarted", 0))])
        chunks = [(call_id, AUDIO_CHUNK, audio_chunk(call_id, 1, seq, 3000.0)) for seq in range(10)]
        await sink.send_many(topics.audio, chunks)
        if end:
            ended = call_event(call_id, 1, "CallEnded", 9, reason="hangup")
            await sink.send_many(topics.events, [(call_id, CALL_EVENT, ended)])
    finally:
        await stop_producer(producer, 5)


async def test_a_completed_call_leaves_the_table_after_its_retention(settings: Settings, tmp_path: Path) -> None:
    topics = Topics.from_settings(settings)
    bootstrap = str(settings.kafka_bootstrap)
    worker = WorkerProcess(settings, tmp_path, SWITCHBOARD_WORKER_CALL_RETENTION_S="3")
    changelog = f"{settings.group(settings.worker_id)}-calls-changelog"
    await ensure_topics(bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=1)
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_for, "Worker ready")
        await _send_call(settings, topics, "done-1", end=True)
        await _send_call(settings, topics, "live-1", end=False)
        deadline = time.monotonic() + 90
        while True:
            finals = [r for r in await read_to_end(bootstrap, topics.speech)
                      if r.name == CALL_METRICS and r.record["final"]]  # fmt: skip
            entries = await _changelog(bootstrap, changelog, settings.topic_partitions)
            done = [value for key, value in entries if key == b'"done-1"']
            if done and done[-1] is None:
                break
            assert time.monotonic() < deadline, f"no tombstone for done-1: {len(done)} entries, finals {len(finals)}"
            await asyncio.sleep(1.0)
        worker.check_alive()
    finally:
        worker.stop()
    assert [r.record["call_id"] for r in finals] == ["done-1"]  # it completed before it was deleted ...
    assert all(value is not None for value in done[:-1]) and len(done) >= 2  # ... after its states
    live = [value for key, value in entries if key == b'"live-1"']
    assert live and all(value is not None for value in live)  # a live call keeps its state
