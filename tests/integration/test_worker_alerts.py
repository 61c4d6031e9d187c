"""A two-track call that triggers every rule type, through the real broker and a real worker that is
killed (SIGKILL) mid-call and restarted: every alert arrives once, exactly as the pure pipeline
computes it, and no_media fires on the wall clock when the audio pauses."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from processors.app import pipeline_config
from processors.audio.g711 import ulaw_encode
from processors.pipeline import CallPipeline
from processors.rules.model import from_record, to_record
from producers.sink import RecordSink
from schemas import ALERT, AUDIO_CHUNK, CALL_EVENT, CALL_METRICS, RULE_SET, AvroCodec
from tests.harness import read_to_end, read_topic
from tests.speech import RATE, Utterance, build
from tests.workers import WorkerProcess

CALL = "call-rules-1"
NS = "io.switchboard.calls."
CHUNK = 1600  # 200 ms
PAUSE_AT_S = 36  # audio stops here (wall clock) until no_media fires, then resumes
END_S = 38

SCRIPT = [
    Utterance("AGENT", 0.5, "Thank you for calling, how can I help you today"),
    Utterance("CUSTOMER", 3.5, "I would like to check the status of my order please"),
    # nobody speaks from about 6 s to 13 s: dead air
    Utterance("AGENT", 13.0, "Let me look that up for you"),
    Utterance("AGENT", 14.9, "I can see the order right here in our system"),
    Utterance("AGENT", 17.3, "and it was shipped yesterday by express"),
    Utterance("CUSTOMER", 18.6, "Wait, which address did you send it to"),  # interrupts the agent's monologue
]
RULES = {
    "cid": 1,
    "version": 7,
    "rules": [
        {"rule_id": "dead-air", "kind": "dead_air", "params": {"min_ms": 5000}},
        {"rule_id": "overtalk", "kind": "overtalk", "params": {"min_ms": 500}},
        {"rule_id": "interrupt", "kind": "interruptions", "params": {"count": 1, "by_role": "CUSTOMER"}},
        {"rule_id": "monologue", "kind": "monologue", "params": {"min_ms": 4000, "role": "AGENT"}},
        {"rule_id": "hold", "kind": "long_hold", "params": {"min_ms": 3000}},
        {"rule_id": "no-media", "kind": "no_media", "params": {"min_ms": 2000}},
        {"rule_id": "quiet", "kind": "low_level", "params": {"max_dbfs": -32, "min_ms": 2000, "role": "CUSTOMER"}},
        {"rule_id": "clip", "kind": "clipping", "params": {"min_ratio": 0.05, "min_ms": 1500, "role": "AGENT"}},
        {"rule_id": "long-call", "kind": "call_duration", "params": {"max_ms": 30_000}},
    ],
}


def tracks() -> dict[str, np.ndarray]:
    conv = build(SCRIPT, seconds=END_S)
    agent, customer = conv.agent.astype(np.float64), conv.customer.astype(np.float64)
    quiet = build([Utterance("CUSTOMER", 0.0, "My name is John Smith and I live in Boston")], seconds=4.0)
    customer[27 * RATE : 31 * RATE] += quiet.customer.astype(np.float64) * 0.06  # about -40 dBFS speech
    loud = build([Utterance("AGENT", 0.0, "Sorry about that, let me check again")], seconds=3.0)
    agent[31 * RATE : 34 * RATE] += loud.agent.astype(np.float64) * 12  # driven into clipping
    # on hold from 22 s to 26 s: nothing on either track but the line's noise
    return {
        "outbound": np.clip(np.round(agent), -32768, 32767).astype(np.int16),
        "inbound": np.clip(np.round(customer), -32768, 32767).astype(np.int16),
    }


def event(kind: str, at_ms: int, origin_ms: int, **payload: Any) -> dict[str, Any]:
    when = datetime.fromtimestamp((origin_ms + at_ms) / 1000, UTC)
    return {
        "event_id": f"{CALL}-{kind}-{at_ms}",
        "call_id": CALL,
        "cid": 1,
        "source": "CRESTA",
        "occurred_at": when,
        "received_at": when,
        "payload": (NS + kind, payload),
        "raw": "",
        "attributes": {},
    }


def chunk(track: str, audio: np.ndarray, seq: int, received_ms: int) -> dict[str, Any]:
    start = seq * CHUNK
    return {
        "call_id": CALL,
        "cid": 1,
        "track": track,
        "role": "UNSPECIFIED",
        "codec": "PCMU",
        "sample_rate": RATE,
        "channels": 1,
        "sequence": seq,
        "start_sample": start,
        "media_timestamp_ms": start // 8,
        "received_at": received_ms,
        "payload": ulaw_encode(audio[start : start + CHUNK]),
    }


def part(audio: dict[str, np.ndarray], first_s: float, last_s: float, received: Any) -> list[tuple[str, dict]]:
    out = []
    for seq in range(int(first_s * RATE) // CHUNK, int(last_s * RATE) // CHUNK):
        for track in ("inbound", "outbound"):
            out.append((AUDIO_CHUNK, chunk(track, audio[track], seq, received(seq))))
    return out


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

    want = reference(before_pause + after, origin)
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


def reference(records: list[tuple[str, dict]], origin: int) -> list[dict[str, Any]]:
    """The alerts the pure pipeline derives from the same records (no wall-clock rule involved)."""
    settings = Settings(vad_engine="silero")
    pipe = CallPipeline(CALL, pipeline_config(settings), from_record(RULES))
    codec = AvroCodec.default()
    out = []
    for name, record in records:
        decoded = AvroCodec.default().decode(AvroCodec.default().encode(name, record)).record
        out += [codec.decode(codec.encode(n, r)).record for n, r in pipe.on_record(name, decoded) if n == ALERT]
    out += [codec.decode(codec.encode(n, r)).record for n, r in pipe.finish() if n == ALERT]
    return out


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
