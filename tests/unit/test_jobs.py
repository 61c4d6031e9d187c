"""Jobs: the status table, and the determinism promise — a file and a stream of the same audio agree."""

from __future__ import annotations

import io
import json
import re
import wave
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from processors.audio.files import decode_file
from processors.jobs import TRANSITIONS, JobError, JobState, Status, results, run_file, transition
from processors.pipeline import CallPipeline, PipelineConfig
from processors.rules.model import RuleSetDef, parse_rule
from schemas import AUDIO_CHUNK, CALL_EVENT, CALL_METRICS
from tests.speech import RATE, Conversation, Utterance, build, chunks

ORIGIN = int(datetime(2025, 3, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
RULES = RuleSetDef(
    cid=3,
    version=1,
    rules=(
        parse_rule({"rule_id": "dead-air", "kind": "dead_air", "params": {"min_ms": 4000}}),
        parse_rule({"rule_id": "overtalk", "kind": "overtalk", "params": {"min_ms": 300}}),
    ),
)
SCRIPT = [
    Utterance("AGENT", 0.4, "Good morning, you are speaking with the billing team"),
    Utterance("CUSTOMER", 3.6, "Hello, I was charged twice for the same invoice"),
    Utterance("AGENT", 12.0, "I am sorry to hear that, let me check"),
    Utterance("CUSTOMER", 13.1, "It is invoice number four five six"),
]


# ---------------------------------------------------------------- status table


@pytest.mark.parametrize("before", [None, *Status])
@pytest.mark.parametrize("after", list(Status))
def test_every_status_pair(before: Status | None, after: Status) -> None:
    job = JobState(job_id=9, cid=3, status=before)
    if (before, after) in TRANSITIONS:
        assert job.step(after).status is after
    else:
        with pytest.raises(JobError, match=re.escape("job 9: cannot go from")):
            job.step(after)


def test_transition_record_and_state_round_trip() -> None:
    job = JobState(job_id=9, cid=3, status=Status.PENDING, mode="batch", metadata={"channels": "2"})
    assert transition(job, Status.PROCESSING, 1234) == {
        "job_id": 9,
        "cid": 3,
        "from_status": 0,
        "to_status": 1,
        "at": 1234,
        "reason": "processing",
        "metadata": {},
        "results": None,
    }
    assert JobState.from_dict(job.to_dict()) == job
    moved = job.step(Status.PROCESSING)
    assert moved.has_seen(0, 1) and not moved.has_seen(1, 2)
    assert JobState.from_dict(json.loads(json.dumps(moved.to_dict()))) == moved


# ---------------------------------------------------------------- file == stream


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    return build(SCRIPT, seconds=20.0, seed=5)


def wav_bytes(conv: Conversation) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(conv.stereo().astype("<i2").tobytes())
    return buffer.getvalue()


def streamed(conv: Conversation, call_id: str, sizes: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """The same audio as a live stereo LINEAR16 stream (one interleaved track, chunks of ``sizes`` frames)."""
    pipe = CallPipeline(call_id, PipelineConfig(), RULES)
    frames = np.stack((conv.agent, conv.customer), axis=1)
    event = {"call_id": call_id, "cid": 3, "source": "CRESTA", "raw": "", "attributes": {}}
    out = pipe.on_record(
        CALL_EVENT,
        {**event, "event_id": "s", "occurred_at": ORIGIN, "received_at": ORIGIN,
         "payload": ("io.switchboard.calls.CallStarted", {"answered": True})},
    )  # fmt: skip
    for seq, (start, block) in enumerate(chunks(np.arange(frames.shape[0]), sizes)):
        payload = frames[block].astype("<i2").tobytes()
        record = {
            "call_id": call_id,
            "cid": 3,
            "track": "stereo",
            "role": "UNSPECIFIED",
            "codec": "L16_LE",
            "sample_rate": RATE,
            "channels": 2,
            "sequence": seq,
            "start_sample": start,
            "media_timestamp_ms": None,
            "received_at": ORIGIN + start // 8,
            "payload": payload,
        }
        out += pipe.on_record(AUDIO_CHUNK, record)
    end = ORIGIN + frames.shape[0] // 8
    out += pipe.on_record(
        CALL_EVENT,
        {**event, "event_id": "e", "occurred_at": end, "received_at": end,
         "payload": ("io.switchboard.calls.CallEnded", {"reason": "hangup"})},
    )  # fmt: skip
    return out + pipe.finish()


def comparable(outputs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Everything but interim metrics, whose cadence follows the chunking by design."""
    return sorted(((n, r) for n, r in outputs if not (n == CALL_METRICS and not r["final"])), key=repr)


@pytest.mark.parametrize("sizes", [[160], [1600], [321, 7, 2000]])
def test_a_file_and_a_stream_of_the_same_audio_agree(conversation: Conversation, sizes: list[int]) -> None:
    decoded = decode_file(wav_bytes(conversation), name="call.wav")
    run = run_file("call-det", 3, decoded, {}, PipelineConfig(), RULES, ORIGIN)
    live = streamed(conversation, "call-det", sizes)
    assert comparable(run.outputs) == comparable(live)
    kinds = {r["rule_kind"] for n, r in run.outputs if n == "io.switchboard.alerts.Alert"}
    assert kinds == {"dead_air", "overtalk"}  # the comparison covered alerts, not only segments


def test_results_document(conversation: Conversation) -> None:
    decoded = decode_file(wav_bytes(conversation), name="call.wav")
    run = run_file("call-doc", 3, decoded, {}, PipelineConfig(), RULES, ORIGIN)
    doc = run.results
    assert doc["basic"]["totalduration"] == 20.0
    assert doc["basic"]["id"] == {"agent": 0, "customer": 1}
    assert doc["metrics"]["watermark_ms"] == 20_000
    assert doc["segments"] >= len(SCRIPT)
    assert {a["rule_id"] for a in doc["alerts"]} == {"dead-air", "overtalk"}
    assert doc["file"] == {"format": "wav", "sample_rate": RATE, "channels": 2}
    assert results(run.outputs, doc["signals"]) == {k: v for k, v in doc.items() if k != "file"}
    assert set(doc["signals"]) == {"beeps", "rings", "dtmf", "clipping", "levels"}
    assert set(doc["signals"]["levels"]) == {"agent", "customer"}
    assert doc["signals"]["levels"]["agent"]["mean_dbfs"] < 0


def test_agent_channel_can_be_the_second_one(conversation: Conversation) -> None:
    decoded = decode_file(wav_bytes(conversation), name="call.wav")
    straight = run_file("c", 3, decoded, {}, PipelineConfig(), RULES, ORIGIN).results
    swapped = run_file("c", 3, decoded, {"agentchannel": "1"}, PipelineConfig(), RULES, ORIGIN).results
    assert straight["metrics"]["talk_agent_ms"] == swapped["metrics"]["talk_customer_ms"]
    assert straight["metrics"]["talk_customer_ms"] == swapped["metrics"]["talk_agent_ms"]
