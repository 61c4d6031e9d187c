"""The projector against the real broker and embedded ClickHouse: batching, replay, dead letters."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from api import queries
from infra.kafka_clients import make_consumer, make_producer, stop_producer
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from producers.sink import RecordSink
from projections.batch import Batcher
from projections.projector import Projector
from schemas import ALERT, CALL_EVENT, JOB_TRANSITION, SPEECH_SEGMENT, AvroCodec
from tests.factories import T0, call_event, level_segment

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))
CALLS = [f"call-{i}" for i in range(6)]
CHUNKS_PER_CALL = 4
# A known writer fingerprint followed by a body that is not a SpeechSegment.
CORRUPT = b"\xc3\x01" + AvroCodec.default().schema(SPEECH_SEGMENT).fingerprint + b"\xff\xff\xff"


JOB = 1_234_567_890_123
S = timedelta


def _transition(from_status: int | None, to_status: int, at_s: int, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "cid": 1,
        "from_status": from_status,
        "to_status": to_status,
        "at": T0 + S(at_s),
        "reason": reason,
        "metadata": extra.get("metadata", {}),
        "results": extra.get("results"),
    }


JOB_HISTORY = [
    _transition(None, 0, 0, "pending", metadata={"channels": "2", "agentId": "a-9", "mode": "batch"}),
    _transition(0, 1, 2, "processing"),
    _transition(1, 2, 40, "completed", results='{"basic": {"totalduration": 61.5}}'),
]


def _alert(alert_id: str, status: str, start: int, end: int) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "rule_id": "da",
        "call_id": "call-0",
        "cid": 1,
        "severity": "WARNING",
        "start_ms": start,
        "end_ms": end,
        "detected_at": T0 + S(milliseconds=end),
        "details": {"min_ms": "10000"},
        "status": status,
        "rule_kind": "dead_air",
    }


ALERTS = [_alert("occ-1", "RAISED", 10_000, 20_000), _alert("occ-1", "CLEARED", 10_000, 22_000)]
ALERTS.append(_alert("occ-2", "RAISED", 50_000, 60_000))


def _segments(call_id: str) -> list[dict[str, Any]]:
    return [level_segment(call_id, 1, seq, -30.0 + seq) for seq in range(CHUNKS_PER_CALL)]


async def _produce(settings: Settings, topics: Topics) -> None:
    producer = make_producer(str(settings.kafka_bootstrap), settings)
    await producer.start()
    try:
        sink = RecordSink(producer, AvroCodec.default(), 5)
        for call_id in CALLS:
            await sink.send_many(
                topics.events,
                [
                    (call_id, CALL_EVENT, call_event(call_id, 1, "CallStarted", 0)),
                    (call_id, CALL_EVENT, call_event(call_id, 1, "CallEnded", 9, reason="hangup")),
                ],
            )
            await sink.send_many(topics.speech, [(call_id, SPEECH_SEGMENT, s) for s in _segments(call_id)])
        await sink.send_many(topics.transitions, [(str(JOB), JOB_TRANSITION, t) for t in JOB_HISTORY])
        await sink.send_many(topics.alerts, [("call-0", ALERT, a) for a in ALERTS])
        await producer.send_and_wait(topics.speech, CORRUPT, key=b"call-0")
    finally:
        await stop_producer(producer, 5)


async def _project(settings: Settings, store: ClickHouseStore, topics: Topics, group: str) -> Projector:
    """Run a projector in consumer group ``group`` until it has consumed everything produced."""
    bootstrap = str(settings.kafka_bootstrap)
    consumer = make_consumer(bootstrap, group)
    producer = make_producer(bootstrap, settings)
    await producer.start()
    projector = Projector(
        consumer,
        store,
        AvroCodec.default(),
        Batcher(max_rows=5, max_age_ms=50),
        deadletter=(producer, topics.deadletter),
    )
    consumer.subscribe([topics.events, topics.speech, topics.transitions, topics.alerts], listener=projector.listener())
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop, poll_ms=50))
    expected = len(CALLS) * (2 + CHUNKS_PER_CALL) + len(JOB_HISTORY) + len(ALERTS)
    try:
        async with asyncio.timeout(60):
            while projector.rows_written < expected or projector.dead_lettered < 1:
                await asyncio.sleep(0.05)
        stop.set()
        await task
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        for tp in partitions:
            assert (await consumer.committed(tp) or 0) == ends[tp], f"{tp} not committed to its end"
    finally:
        stop.set()
        await consumer.stop()
        await stop_producer(producer, 5)
    return projector


def _views(store: ClickHouseStore) -> dict[str, Any]:
    db = store.database
    return {
        "events": store.query(f"SELECT count() AS n FROM {db}.call_events FINAL")[0]["n"],
        "segments": store.query(f"SELECT count() AS n FROM {db}.speech_segments FINAL")[0]["n"],
        "sessions": [queries.call_session(store, 1, c) for c in CALLS],
        "levels": [queries.call_segments(store, 1, c, "LEVEL", 100, 0) for c in CALLS],
        "job": queries.job(store, 1, JOB),
        "alerts": queries.alerts(store, 1),
    }


async def test_projects_dead_letters_and_survives_a_full_replay(settings: Settings, store: ClickHouseStore) -> None:
    topics = Topics.from_settings(settings)
    await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=3, replication=1)
    apply_migrations(store, load_migrations(MIGRATIONS))
    await _produce(settings, topics)

    first = await _project(settings, store, topics, settings.group("projector-a"))
    assert first.dead_lettered == 1
    views = _views(store)
    assert views["events"] == len(CALLS) * 2
    assert views["segments"] == len(CALLS) * CHUNKS_PER_CALL
    assert [s["state"] for s in views["sessions"] if s] == ["ENDED"] * len(CALLS)
    assert [len(levels) for levels in views["levels"]] == [CHUNKS_PER_CALL] * len(CALLS)
    job = views["job"]
    assert (job["status"], job["statusmsg"], job["transitions"]) == (2, "completed", 3)
    assert job["metadata"] == {"channels": "2", "agentId": "a-9", "mode": "batch"}
    assert job["results"] == '{"basic": {"totalduration": 61.5}}'
    assert (job["created_at"], job["started_at"], job["finished_at"]) == (T0, T0 + S(2), T0 + S(40))
    assert queries.job(store, 2, JOB) is None  # another tenant's job is invisible
    alerts = views["alerts"]
    assert [(a["alert_id"], a["status"], a["start_ms"], a["end_ms"]) for a in alerts] == [
        ("occ-2", "RAISED", 50_000, 60_000),
        ("occ-1", "CLEARED", 10_000, 22_000),  # the CLEARED record replaced the RAISED one
    ]
    assert queries.alerts(store, 1, status="RAISED", rule_kind="dead_air") == alerts[:1]
    assert queries.alerts(store, 1, call_id="call-9") == []
    assert queries.alerts(store, 2) == []

    # Every batch written a second time, as after a crash between insert and offset commit.
    await _project(settings, store, topics, settings.group("projector-b"))
    raw_rows = store.query(f"SELECT count() AS n FROM {store.database}.speech_segments")[0]["n"]
    assert raw_rows >= len(CALLS) * CHUNKS_PER_CALL  # duplicates physically present until merged ...
    assert _views(store) == views  # ... and invisible in every view

    # The corrupt record is in the dead-letter topic with its reason and origin.
    reader = make_consumer(str(settings.kafka_bootstrap), settings.group("dlq-reader"), topics.deadletter)
    await reader.start()
    try:
        fetched = await reader.getmany(timeout_ms=10_000)
        letters = [m for msgs in fetched.values() for m in msgs]
    finally:
        await reader.stop()
    assert len(letters) >= 1
    headers = dict(letters[0].headers)
    assert headers["stage"] == b"projector"
    assert headers["reason"].startswith(b"CorruptRecordError: ")
    assert headers["source"].startswith(f"{topics.speech}/".encode())
    assert letters[0].value == CORRUPT
