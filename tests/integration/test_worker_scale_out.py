"""Scaling out: a second worker joins the group in the middle of six live calls. The group rebalances
at once (no worker waits out a session timeout), the partitions are split between the two, each
recovers its calls from the changelog, the rest of every call arrives while the group rebalances,
and every call completes with its alerts exactly as the pure pipeline computes them from the same
records, each once."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from processors.rules.model import from_record, to_record
from producers.sink import RecordSink
from schemas import CALL_EVENT, CALL_METRICS, RULE_SET, AvroCodec
from tests.harness import read_to_end, read_topic
from tests.rules_call import END_S, RULES, event, part, reference, tracks
from tests.workers import WorkerProcess

# The second worker starts once every call is this far in (its hold from 22 s to 26 s is over): what arrives
# during the rebalance is audio and the call's end, whose outcome does not depend on how the events and
# audio partitions interleave. (Across a rebalance the two partitions can be fetched separately, and a hold
# event processed after audio sent later than it is applied from the audio position reached, see
# processors/scheduling.py; that would move a hold boundary by up to a chunk.)
SPLIT_S = 28


def partition_of(call_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives this key (as the gateway's producer does)."""
    return (murmur2(call_id.encode()) & 0x7FFFFFFF) % partitions


def spread_calls(partitions: int, per_partition: int = 2) -> list[str]:
    """Call ids covering every partition, ``per_partition`` each: whichever way the partitions are
    split, both workers own calls."""
    calls: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(c) < per_partition for c in calls.values()):
        call_id = f"call-scale-{n}"
        bucket = calls[partition_of(call_id, partitions)]
        if len(bucket) < per_partition:
            bucket.append(call_id)
        n += 1
    return [c for bucket in calls.values() for c in bucket]


def call_records(call_id: str, audio: dict[str, Any], origin: int) -> list[tuple[str, dict[str, Any]]]:
    """The call as the gateway would have produced it: events between the audio they fall between."""
    media = part(audio, 0, END_S, lambda seq: origin + seq * 200, call_id)
    out = [(CALL_EVENT, event("CallStarted", 0, origin, call_id, direction="INBOUND"))]
    for name, record in media:
        at_ms = record["start_sample"] // 8
        if at_ms == 22_000 and record["track"] == "inbound":
            out.append((CALL_EVENT, event("CallHeld", 22_000, origin, call_id)))
        if at_ms == 26_000 and record["track"] == "inbound":
            out.append((CALL_EVENT, event("CallResumed", 26_000, origin, call_id)))
        out.append((name, record))
    out.append((CALL_EVENT, event("CallEnded", END_S * 1000, origin, call_id, reason="hangup")))
    return out


def media_ms(record: dict[str, Any], origin: int) -> int:
    if "start_sample" in record:
        return int(record["start_sample"]) // 8
    return int(record["occurred_at"].timestamp() * 1000) - origin


def assigned_audio_partitions(log: Path, topic: str) -> set[int]:
    """The partitions of ``topic`` a worker's log says it was newly assigned (Faust's assignment table)."""
    found: set[int] = set()
    for match in re.finditer(re.escape(topic) + r"\s*\|\s*\{([^}]*)\}", log.read_text(errors="replace")):
        for part_ in match.group(1).split(","):
            lo, _, hi = part_.strip().partition("-")
            found |= set(range(int(lo), int(hi or lo) + 1))
    return found


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Silero resumes exactly from saved state, so a call that changes hands can be compared sample for sample
    first = WorkerProcess(settings, tmp_path / "a", SWITCHBOARD_VAD_ENGINE="silero")
    second = WorkerProcess(
        settings, tmp_path / "b", SWITCHBOARD_VAD_ENGINE="silero", SWITCHBOARD_DATA_DIR=str(tmp_path / "b" / "data")
    )
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


async def send_in_order(sink: RecordSink, topics: Topics, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Send (call id, name, record) in this order: runs for one topic together, each run acked before the next."""
    for is_event, run in groupby(items, key=lambda item: item[1] == CALL_EVENT):
        await sink.send_many(topics.events if is_event else topics.audio, list(run))


async def test_a_second_worker_takes_over_half_the_calls_mid_call(
    settings: Settings, workers: tuple[WorkerProcess, WorkerProcess]
) -> None:
    first, second = workers
    bootstrap = str(settings.kafka_bootstrap)
    topics = Topics.from_settings(settings)
    await ensure_topics(bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=1)
    calls = spread_calls(settings.topic_partitions)
    audio = tracks()
    origin = time.time_ns() // 1_000_000
    records = {call: call_records(call, audio, origin) for call in calls}
    # all calls advance together, as live: ordered by media time, then by call
    timeline = sorted(
        ((media_ms(r, origin), i, call, name, r) for call in calls for i, (name, r) in enumerate(records[call])),
        key=lambda item: (item[0], item[2], item[1]),
    )
    before = [(call, name, r) for at, _, call, name, r in timeline if at < SPLIT_S * 1000]
    after = [(call, name, r) for at, _, call, name, r in timeline if at >= SPLIT_S * 1000]

    producer = make_producer(bootstrap, settings)
    await producer.start()
    sink = RecordSink(producer, AvroCodec.default(), settings.produce_timeout_s)
    try:
        await sink.send(topics.rules, "1", RULE_SET, to_record(from_record(RULES), updated_at_ms=origin))
        first.start()
        await asyncio.to_thread(first.wait_for, "rules loaded")
        await send_in_order(sink, topics, before)
        # every call's dead air (6.2 s to 11.2 s) is out: the first worker has processed them all up to there
        await read_topic(bootstrap, topics.alerts, 2 * len(calls), timeout_s=90, committed_only=True)
        second.start()
        await send_in_order(sink, topics, after)  # arrives while the group rebalances
        await asyncio.to_thread(second.wait_for, "Worker ready")
    finally:
        await stop_producer(producer, settings.produce_timeout_s)

    await _wait_for_final_metrics(bootstrap, topics.speech, set(calls))
    owned_by_second = assigned_audio_partitions(second.log, topics.audio)
    assert owned_by_second and owned_by_second != set(range(settings.topic_partitions)), owned_by_second
    assert {partition_of(c, settings.topic_partitions) for c in calls} == set(range(settings.topic_partitions))

    assert "wait_empty" not in first.log.read_text(errors="replace")  # the rebalance did not hang on a record

    got = [a.record for a in await read_to_end(bootstrap, topics.alerts) if a.record["rule_kind"] != "no_media"]
    key = lambda a: (a["alert_id"], a["status"])  # noqa: E731
    counts = Counter(key(a) for a in got)
    assert max(counts.values()) == 1, [(a["call_id"], a["rule_id"], a["status"]) for a in got if counts[key(a)] > 1]
    for call in calls:
        mine = {key(a): a for a in got if a["call_id"] == call}
        theirs = {key(a): a for a in reference(records[call], call)}
        assert sorted(mine) == sorted(theirs), call
        for k, t in theirs.items():
            m = mine[k]
            assert m == t, {f: (m[f], t[f]) for f in m if m[f] != t[f]}
    assert first.runs == 1 and second.runs == 1


async def _wait_for_final_metrics(bootstrap: str, topic: str, calls: set[str]) -> None:
    deadline = time.monotonic() + 120
    done: set[str] = set()
    while time.monotonic() < deadline:
        records = await read_to_end(bootstrap, topic)
        done = {r.record["call_id"] for r in records if r.name == CALL_METRICS and r.record["final"]}
        if done >= calls:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"no final metrics for {sorted(calls - done)}")
