"""A known set of records for the read API tests: three calls and four Oliver jobs of tenant 1, one call of tenant 2.

Every number the API tests assert follows from the records below.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from infra.kafka_clients import make_consumer, make_producer, stop_producer
from infra.settings import Settings
from infra.store import ClickHouseStore
from infra.topics import Topics
from producers.oliver import translate
from producers.oliver.models import Mode, ProcessParams, StreamParams
from producers.sink import RecordSink
from projections.batch import Batcher
from projections.projector import Projector
from schemas import ALERT, CALL_EVENT, CALL_METRICS, JOB_TRANSITION, PROSODY_INTERIM, SPEECH_SEGMENT, AvroCodec
from tests.factories import T0

DAY = timedelta(days=1)


def S(seconds: float) -> timedelta:
    """``seconds`` as a timedelta."""
    return timedelta(seconds=seconds)


T0_MS = int(T0.timestamp() * 1000)
Out = tuple[str, str, str, dict[str, Any]]  # (topic attribute, key, record type, record)


def event(cid: int, call_id: str, kind: str, at: timedelta, n: int, source: str = "TELNYX", **payload: Any) -> Out:
    attributes = payload.pop("attributes", {})
    record = {
        "event_id": f"{call_id}-{kind}-{n}",
        "call_id": call_id,
        "cid": cid,
        "source": source,
        "occurred_at": T0 + at,
        "received_at": T0 + at + timedelta(milliseconds=5),
        "payload": (f"io.switchboard.calls.{kind}", payload),
        "raw": "{}",
        "attributes": attributes,
    }
    return ("events", call_id, CALL_EVENT, record)


def started(cid: int, call_id: str, at: timedelta, agent: str, team: str, *, answered: bool = True) -> Out:
    participants = [{"role": "AGENT", "participant_id": agent}, {"role": "CUSTOMER", "participant_id": "c-7"}]
    return event(
        cid, call_id, "CallStarted", at, 0, from_number="+13122010094", to_number="+13122123456",
        direction="INBOUND", participants=participants, answered=answered,
        attributes={"agentTeam": team, "campaignId": "spring"},
    )  # fmt: skip


def segment(call_id: str, role: str, kind: str, start: int, end: int) -> Out:
    record = {
        "segment_id": f"{call_id}-{role}-{kind}-{start}", "call_id": call_id, "cid": 1, "track": role.lower(),
        "role": role, "kind": kind, "start_sample": start, "end_sample": end, "sample_rate": 8000,
        "rms_dbfs": -20.5 if kind == "LEVEL" else None, "peak_dbfs": -3.0 if kind == "LEVEL" else None,
        "speech_probability": 0.9 if kind == "SPEECH" else None, "detector": "webrtcvad:3", "voiced_fraction": None,
    }  # fmt: skip
    return ("speech", call_id, SPEECH_SEGMENT, record)


def metrics(cid: int, call_id: str, watermark: int, final: bool, agent_ms: int, customer_ms: int, **more: Any) -> Out:
    record = {
        "call_id": call_id, "cid": cid, "watermark_ms": watermark, "final": final, "talk_agent_ms": agent_ms,
        "talk_customer_ms": customer_ms, "silence_ms": more.get("silence_ms", 0), "overtalk_ms": 1200,
        "hold_ms": more.get("hold_ms", 0), "interruptions_agent": 2, "interruptions_customer": 1,
        "longest_monologue_agent_ms": 7000, "longest_monologue_customer_ms": 5000, "speaker_changes": 12,
        "talk_ratio": round(agent_ms / (agent_ms + customer_ms), 4), "beeps": 0, "rings": 1, "dtmf": "12#",
        "alerts": 2, "basic": more.get("basic", "{}"),
    }  # fmt: skip
    return ("speech", call_id, CALL_METRICS, record)


def interim(call_id: str, role: str, start: int, intensity: int | None, rate: str | None) -> Out:
    record = {
        "call_id": call_id, "cid": 1, "role": role, "start_ms": start, "end_ms": start + 3000,
        "intensity": intensity, "vocal_variety": None if intensity is None else 4, "speaking_rate": rate,
    }  # fmt: skip
    return ("speech", call_id, PROSODY_INTERIM, record)


def alert(cid: int, call_id: str, alert_id: str, kind: str, status: str, start: int, end: int, at: timedelta) -> Out:
    record = {
        "alert_id": alert_id, "rule_id": kind[:2], "call_id": call_id, "cid": cid, "severity": "WARNING",
        "start_ms": start, "end_ms": end, "detected_at": T0 + at, "details": {"min_ms": "10000"}, "status": status,
        "rule_kind": kind,
    }  # fmt: skip
    return ("alerts", call_id, ALERT, record)


VAD = {"agent": 21.0, "customer": 17.0, "overlap": 1.2, "silence": 9.0}
BASIC = {"totalduration": 61.5, "speakerchanges": 12, "numbeepfound": 0, "numringfound": 1, "vad": VAD}
RESULTS_77 = {"basic": BASIC, "metrics": {"talk_agent_ms": 21000}, "segments": 3, "alerts": []}
RESULTS_80 = {"basic": {**BASIC, "totalduration": 90.0}, "metrics": {}, "segments": 0, "alerts": []}
PARAMS_77 = ProcessParams.from_query(
    [("channels", "2"), ("calldirection", "1"), ("agentId", "a-9"), ("campaignId", "spring"), ("name", "call-77")]
)
PARAMS_80 = StreamParams.from_query([("channels", "1"), ("calldirection", "2"), ("agentId", "a-9"), ("ANI", "+1555")])
AUDIO_77 = {"duration": "61.5", "sample_rate": "8000", "channels": "2", "format": "wav", "codec": "pcm_s16le",
            "uri": "file:///blobs/1/77.wav"}  # fmt: skip
PARAMS_79 = ProcessParams.from_query([("channels", "2"), ("calldirection", "1"), ("agentId", "a-3")])
AUDIO_79 = {**AUDIO_77, "uri": "file:///blobs/1/79.wav"}


def created_record(pid: int) -> dict[str, Any]:
    """The process record the gateway answered when job ``pid`` was created."""
    if pid == 77:
        return translate.process_record(77, 1, T0_MS, PARAMS_77, Mode.BATCH, duration_s=61.5, uri=AUDIO_77["uri"])
    if pid == 79:
        return translate.process_record(
            79, 1, T0_MS + 5000, PARAMS_79, Mode.BATCH, duration_s=61.5, uri=AUDIO_79["uri"]
        )
    at = T0_MS + (10_000 if pid == 80 else 20_000)
    return translate.process_record(pid, 1, at, PARAMS_80, Mode.STREAM, duration_s=0.0, uri="")


def step(pid: int, before: int, after: int, at_s: int, reason: str, results: dict[str, Any] | None = None) -> Out:
    record = {
        "job_id": pid, "cid": 1, "from_status": before, "to_status": after, "at": T0_MS + at_s * 1000,
        "reason": reason, "metadata": {}, "results": None if results is None else json.dumps(results),
    }  # fmt: skip
    return ("transitions", str(pid), JOB_TRANSITION, record)


def queued(pid: int, at_s: int, metadata: dict[str, str]) -> Out:
    return ("transitions", str(pid), JOB_TRANSITION, translate.queued_transition(pid, 1, T0_MS + at_s * 1000, metadata))


FINAL_BASIC = '{"totalduration": 61.5}'
RECORDS: list[Out] = [
    # call-a (tenant 1): rings, answered (another source), held twice (the second hold re-announced), ended.
    started(1, "call-a", S(0), "a-9", "blue", answered=False),
    event(
        1, "call-a", "CallAnswered", S(3), 0, "MEDIASERVICE", participants=[{"role": "AGENT", "participant_id": "a-9"}]
    ),
    event(1, "call-a", "StreamStarted", S(3), 0, stream_id="s-1", codec="PCMU", sample_rate=8000),
    event(1, "call-a", "CallHeld", S(20), 0),
    event(1, "call-a", "CallResumed", S(30), 0),
    event(1, "call-a", "CallHeld", S(40), 1),
    event(1, "call-a", "CallHeld", S(41), 2),
    event(1, "call-a", "CallResumed", S(45), 1),
    event(1, "call-a", "CallEnded", S(60), 0, reason="hangup", duration_ms=60_000),
    segment("call-a", "AGENT", "SPEECH", 0, 8000),
    segment("call-a", "CUSTOMER", "SPEECH", 8000, 24000),
    segment("call-a", "AGENT", "LEVEL", 0, 8000),
    metrics(
        1, "call-a", 60_000, True, 21_000, 17_000, silence_ms=9000, hold_ms=15_000, basic='{"totalduration": 61.5}'
    ),
    metrics(1, "call-a", 10_000, False, 4_000, 3_000),  # an older interim arriving late changes nothing
    interim("call-a", "AGENT", 0, 5, "fast"),
    interim("call-a", "CUSTOMER", 0, None, None),
    alert(1, "call-a", "occ-1", "dead_air", "RAISED", 10_000, 20_000, S(20)),
    alert(1, "call-a", "occ-1", "dead_air", "CLEARED", 10_000, 22_000, S(22)),
    alert(1, "call-a", "occ-2", "overtalk", "RAISED", 50_000, 51_000, S(50)),
    # call-b (tenant 1): the next day, another team, no hold.
    started(1, "call-b", DAY + S(100), "a-2", "red"),
    event(1, "call-b", "CallEnded", DAY + S(160), 0, reason="hangup"),
    metrics(1, "call-b", 60_000, True, 10_000, 30_000),
    alert(1, "call-b", "occ-3", "dead_air", "RAISED", 5_000, 15_000, DAY + S(130)),
    # call-c (tenant 1): still active.
    started(1, "call-c", S(200), "a-9", "blue"),
    # call-a of tenant 2: same call id, other data.
    started(2, "call-a", S(0), "z-1", "green"),
    event(2, "call-a", "CallEnded", S(30), 0),
    alert(2, "call-a", "occ-9", "dead_air", "RAISED", 0, 10_000, S(10)),
    started(2, "call-d", S(5), "z-2", "green"),  # held and never resumed
    event(2, "call-d", "CallHeld", S(10), 0),
    # Jobs of tenant 1: 77 batch completed, 79 batch aborted, 80 stream completed, 78 stream pending.
    queued(77, 0, translate.batch_metadata(PARAMS_77, AUDIO_77)),
    step(77, 0, 1, 2, "processing"),
    step(77, 1, 2, 40, "completed", RESULTS_77),
    queued(79, 5, translate.batch_metadata(PARAMS_79, AUDIO_79)),
    step(79, 0, -2, 6, "aborted"),
    queued(80, 10, translate.stream_metadata(PARAMS_80)),
    step(80, 0, 1, 12, "processing"),
    step(80, 1, 2, 100, "completed", RESULTS_80),
    queued(78, 20, translate.stream_metadata(PARAMS_80)),
]


async def produce(settings: Settings, records: list[Out] = RECORDS) -> None:
    """Send ``records`` to their topics (acknowledged)."""
    topics = Topics.from_settings(settings)
    producer = make_producer(str(settings.kafka_bootstrap), settings)
    await producer.start()
    try:
        sink = RecordSink(producer, AvroCodec.default(), 5)
        for topic, key, name, record in records:
            await sink.send(getattr(topics, topic), key, name, record)
    finally:
        await stop_producer(producer, 5)


async def project(settings: Settings, store: ClickHouseStore, group: str, expected: int = len(RECORDS)) -> Projector:
    """Run a projector in consumer group ``group`` until it has written ``expected`` rows, then stop it."""
    topics = Topics.from_settings(settings)
    consumer = make_consumer(str(settings.kafka_bootstrap), group)
    projector = Projector(consumer, store, AvroCodec.default(), Batcher(max_rows=7, max_age_ms=50))
    consumer.subscribe([topics.events, topics.speech, topics.transitions, topics.alerts], listener=projector.listener())
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop, poll_ms=50))
    try:
        async with asyncio.timeout(60):
            while projector.rows_written < expected:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await consumer.stop()
    return projector
