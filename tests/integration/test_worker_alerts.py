"""A two-track call that triggers every rule type, through the real broker and a real worker that is
killed (SIGKILL) mid-call and restarted: every alert arrives once, exactly as the pure pipeline
computes it, and no_media fires on the wall clock when the audio pauses."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from processors.rules.model import from_record, to_record
from producers.sink import RecordSink
from schemas import AUDIO_CHUNK, CALL_EVENT, CALL_METRICS, RULE_SET, AvroCodec
from tests.harness import read_to_end, read_topic
from tests.rules_call import CALL, END_S, PAUSE_AT_S, RULES, event, part, reference, tracks
from tests.speech import RATE
from tests.workers import WorkerProcess


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    # Silero's state resumes exactly (WebRTC's detector restarts fresh), so outputs after the crash can be
    # compared with an uninterrupted run sample for sample.
    process = WorkerProcess(settings, tmp_path, SWITCHBOARD_VAD_ENGINE="silero")
    try:
        yield process
    finally:
        process.stop()


async def test_every_rule_fires_once_across_a_worker_crash(settings: Settings, worker: WorkerProcess) -> None:
    bootstrap = str(settings.kafka_bootstrap)
    topics = Topics.from_settings(settings)
    await ensure_topics(bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=1)
    audio = tracks()
    origin = time.time_ns() // 1_000_000  # media time 0; audio is "received" as it is sent, faster than real time
    before_pause = [(CALL_EVENT, event("CallStarted", 0, origin, direction="INBOUND"))]
    media = part(audio, 0, PAUSE_AT_S, lambda seq: time.time_ns() // 1_000_000)
    before_pause += [r for r in media if r[1]["start_sample"] < 22 * RATE]
    before_pause.append((CALL_EVENT, event("CallHeld", 22_000, origin)))
    before_pause += [r for r in media if 22 * RATE <= r[1]["start_sample"] < 26 * RATE]
    before_pause.append((CALL_EVENT, event("CallResumed", 26_000, origin)))
    before_pause += [r for r in media if r[1]["start_sample"] >= 26 * RATE]
    crash_at = next(i for i, (_, r) in enumerate(before_pause) if r.get("start_sample") == 20 * RATE)

    producer = make_producer(bootstrap, settings)
    await producer.start()
    sink = RecordSink(producer, AvroCodec.default(), settings.produce_timeout_s)
    try:
        rule_record = to_record(from_record(RULES), updated_at_ms=origin)
        await sink.send(topics.rules, "1", RULE_SET, rule_record)
        worker.start()
        await asyncio.to_thread(worker.wait_for, "rules loaded")
        await sink.send_many(topics.events, [(CALL, n, r) for n, r in before_pause[:crash_at] if n == CALL_EVENT])
        await sink.send_many(topics.audio, [(CALL, n, r) for n, r in before_pause[:crash_at] if n == AUDIO_CHUNK])
        await read_topic(bootstrap, topics.alerts, 3, timeout_s=60, committed_only=True)  # dead air, monologue...
        worker.kill()
        worker.start()
        for name, record in before_pause[crash_at:]:
            await sink.send(topics.events if name == CALL_EVENT else topics.audio, CALL, name, record)
        await asyncio.to_thread(worker.wait_for, "rules loaded")

        # the audio pauses: no_media is raised on the wall clock within a few seconds
        deadline = time.monotonic() + 60
        while not any(a.record["rule_kind"] == "no_media" for a in await _all_alerts(bootstrap, topics.alerts)):
            assert time.monotonic() < deadline, f"no_media never raised\n{_problems(worker)}"
            await asyncio.sleep(0.5)
        now = time.time_ns() // 1_000_000
        after = part(audio, PAUSE_AT_S, END_S, lambda seq: now)
        after.append((CALL_EVENT, event("CallEnded", END_S * 1000, origin, reason="hangup")))
        for name, record in after:
            await sink.send(topics.events if name == CALL_EVENT else topics.audio, CALL, name, record)
    finally:
        await stop_producer(producer, settings.produce_timeout_s)

    want = reference(before_pause + after)
    await _wait_for_final_metrics(bootstrap, topics.speech)
    got = await _all_alerts(bootstrap, topics.alerts)
    summary = sorted((a.record["rule_id"], a.record["status"], a.record["start_ms"]) for a in got)
    expected = sorted((a["rule_id"], a["status"], a["start_ms"]) for a in want)
    counts = Counter(summary)
    assert counts.most_common(1)[0][1] == 1, f"duplicates: {counts}\n{_problems(worker)}"
    without_absence = [a.record for a in got if a.record["rule_kind"] != "no_media"]
    key = lambda a: (a["alert_id"], a["status"])  # noqa: E731
    assert sorted((a["rule_id"], a["status"], a["start_ms"]) for a in without_absence) == expected, summary
    for mine, theirs in zip(sorted(without_absence, key=key), sorted(want, key=key), strict=True):
        assert mine == theirs, {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
    assert {a["rule_kind"] for a in want} == {
        "dead_air", "overtalk", "interruptions", "monologue", "long_hold", "low_level", "clipping", "call_duration",
    }  # fmt: skip
    absence = [a.record for a in got if a.record["rule_kind"] == "no_media"]
    assert [a["status"] for a in absence] == ["RAISED", "CLEARED"]
    assert absence[0]["start_ms"] == PAUSE_AT_S * 1000
    assert worker.runs == 2


async def _wait_for_final_metrics(bootstrap: str, topic: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        records = await read_to_end(bootstrap, topic)
        if any(r.name == CALL_METRICS and r.record["final"] for r in records):
            return
        await asyncio.sleep(1)
    raise AssertionError("the worker never emitted the call's final metrics")


async def _all_alerts(bootstrap: str, topic: str) -> list[Any]:
    return await read_to_end(bootstrap, topic)


def _problems(worker: WorkerProcess) -> str:
    lines = []
    for run in range(1, worker.runs + 1):
        log = worker.logs / f"worker-{run}.log"
        text = log.read_text(errors="replace").splitlines()
        lines += [f"{run}: {line}" for line in text if "WARN" in line or "ERROR" in line]
    return "\n".join(lines[-80:])
