"""The whole per-call analysis on a scripted two-party call with known answers (no Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from infra.simulate.codecs import g722_encode
from processors.audio.g711 import ulaw_encode
from processors.audio.segmenter import SegmenterParams
from processors.audio.vad import VadConfig
from processors.pipeline import END_GRACE_MS, CallPipeline, PipelineConfig
from processors.rules.model import RuleSetDef, parse_rule
from processors.tracks import MediaConfig
from schemas import ALERT, AUDIO_CHUNK, CALL_EVENT, CALL_METRICS, PROSODY_INTERIM, SPEECH_SEGMENT, AvroCodec
from tests.speech import RATE, Conversation, Utterance, build, chunks

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
CALL = "call-pipe"
NS = "io.switchboard.calls."

SCRIPT = [
    Utterance("AGENT", 0.5, "Thank you for calling, how can I help you today"),
    Utterance("CUSTOMER", 3.5, "I would like to check the status of my order please"),
    # 3.5 s + ~3 s of speech, then nobody speaks until 19 s: dead air of about 12 s
    Utterance("AGENT", 19.0, "Let me look that up for you, one moment"),
    Utterance("CUSTOMER", 20.2, "It was placed last Tuesday and it has not arrived yet"),  # talks over the agent
    Utterance("AGENT", 26.0, "I can see it here, it shipped yesterday and will arrive on Friday"),
]
RULES = RuleSetDef(
    cid=1,
    version=1,
    rules=(
        parse_rule({"rule_id": "dead-air", "kind": "dead_air", "params": {"min_ms": 8000}}),
        parse_rule({"rule_id": "overtalk", "kind": "overtalk", "params": {"min_ms": 500}}),
        parse_rule({"rule_id": "interrupt", "kind": "interruptions", "params": {"count": 1, "window_ms": 60000}}),
    ),
)


@pytest.fixture(scope="module")
def call() -> Conversation:
    return build(SCRIPT, seconds=32.0)


def event(kind: str, at_s: float, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": f"{kind}-{at_s}",
        "call_id": CALL,
        "cid": 1,
        "source": "TELNYX",
        "occurred_at": T0 + timedelta(seconds=at_s),
        "received_at": T0 + timedelta(seconds=at_s),
        "payload": (NS + kind, payload),
        "raw": "",
        "attributes": {},
    }


def audio(track: str, sequence: int, start: int, block: Any) -> dict[str, Any]:
    return {
        "call_id": CALL,
        "cid": 1,
        "track": track,
        "role": "UNSPECIFIED",
        "codec": "PCMU",
        "sample_rate": RATE,
        "channels": 1,
        "sequence": sequence,
        "start_sample": start,
        "media_timestamp_ms": start // 8,
        "received_at": T0 + timedelta(seconds=start / RATE),
        "payload": ulaw_encode(block),
    }


def records(conv: Conversation, sizes: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """CallStarted, both tracks' chunks interleaved in media order, CallEnded."""
    out: list[tuple[str, dict[str, Any]]] = [(CALL_EVENT, event("CallStarted", 0))]
    inbound = chunks(conv.customer, sizes)
    outbound = chunks(conv.agent, sizes[::-1])
    merged = [(s, "inbound", i, b) for i, (s, b) in enumerate(inbound)]
    merged += [(s, "outbound", i, b) for i, (s, b) in enumerate(outbound)]
    for start, track, seq, block in sorted(merged, key=lambda m: (m[0], m[1])):
        out.append((AUDIO_CHUNK, audio(track, seq, start, block)))
    out.append((CALL_EVENT, event("CallEnded", conv.seconds, reason="hangup")))
    return out


def run(
    conv: Conversation, sizes: list[int], config: PipelineConfig | None = None, round_trip: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    config = config or PipelineConfig()
    pipe = CallPipeline(CALL, config, RULES)
    out: list[tuple[str, dict[str, Any]]] = []
    for name, record in records(conv, sizes):
        if round_trip:
            state = json.loads(json.dumps(pipe.to_state()))
            pipe = CallPipeline(CALL, config, RULES, state=state)
        out += pipe.on_record(name, record)
    assert not any(r.get("final") for n, r in out if n == CALL_METRICS)  # the end waits for late audio ...
    return out + pipe.finish()  # ... until told all audio is in


def of(outputs: list[tuple[str, dict[str, Any]]], name: str, **match: Any) -> list[dict[str, Any]]:
    return [r for n, r in outputs if n == name and all(r.get(k) == v for k, v in match.items())]


def test_segments_metrics_and_alerts_of_a_scripted_call(call: Conversation) -> None:
    out = run(call, [1600])
    codec = AvroCodec.default()
    for name, record in out:
        assert codec.decode(codec.encode(name, record)).name == name  # every output is a valid record

    for role in ("AGENT", "CUSTOMER"):
        speech = of(out, SPEECH_SEGMENT, kind="SPEECH", role=role)
        truth = call.truth[role]
        assert len(speech) >= len(truth)
        for start, end in truth:  # every utterance is covered by speech segments
            covering = [s for s in speech if s["start_sample"] < end and s["end_sample"] > start]
            assert covering, f"{role} utterance {start}-{end} not found in {speech}"
            assert abs(covering[0]["start_sample"] - start) <= 0.15 * RATE
            assert abs(covering[-1]["end_sample"] - end) <= 0.3 * RATE  # VAD hangover + detector lag
        levels = of(out, SPEECH_SEGMENT, kind="LEVEL", role=role)
        assert [lv["start_sample"] for lv in levels] == list(range(0, call.agent.size, RATE))

    final = of(out, CALL_METRICS, final=True)
    assert len(final) == 1
    metrics = final[0]
    assert metrics["watermark_ms"] == 32_000
    truth_ms = {r: sum(e - s for s, e in call.truth[r]) / 8 for r in ("AGENT", "CUSTOMER")}
    # each utterance may gain up to ~350 ms: 100 ms hangover at each end plus the detector's own lag
    assert metrics["talk_agent_ms"] == pytest.approx(truth_ms["AGENT"], abs=350 * 3)
    assert metrics["talk_customer_ms"] == pytest.approx(truth_ms["CUSTOMER"], abs=350 * 2)
    assert metrics["overtalk_ms"] > 500
    assert metrics["interruptions_customer"] == 1
    assert metrics["speaker_changes"] >= 3
    basic = json.loads(metrics["basic"])
    assert basic["totalduration"] == 32.0
    assert set(basic["vad"]) == {"agent", "customer", "overlap", "silence"}

    dead_air = of(out, ALERT, rule_id="dead-air")
    assert [a["status"] for a in dead_air] == ["RAISED", "CLEARED"]
    raised, cleared = dead_air
    silence_start_ms = call.truth["CUSTOMER"][0][1] / 8
    assert raised["start_ms"] == pytest.approx(silence_start_ms, abs=400)
    assert raised["end_ms"] == raised["start_ms"] + 8000
    assert cleared["end_ms"] == pytest.approx(19_000, abs=200)
    assert raised["detected_at"] == int(T0.timestamp() * 1000) + raised["end_ms"]
    interrupt = of(out, ALERT, rule_id="interrupt")
    assert len(interrupt) == 1 and interrupt[0]["details"]["by_role"] == "CUSTOMER"
    assert interrupt[0]["end_ms"] == pytest.approx(20_200, abs=300)
    assert of(out, ALERT, rule_id="overtalk", status="RAISED")
    assert metrics["alerts"] == len(of(out, ALERT, status="RAISED"))

    interims = of(out, PROSODY_INTERIM)
    assert {i["role"] for i in interims} == {"AGENT", "CUSTOMER"}
    assert all(i["end_ms"] - i["start_ms"] <= 3000 for i in interims)
    assert all(i["intensity"] is None or 0 <= i["intensity"] <= 10 for i in interims)


def final_view(out: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Everything except interim metrics (whose cadence follows the chunking by design)."""
    return [(n, r) for n, r in out if not (n == CALL_METRICS and not r["final"])]


@pytest.mark.parametrize("sizes", [[160], [4000], [37, 1601, 480, 3]])
def test_results_do_not_depend_on_the_chunking(call: Conversation, sizes: list[int]) -> None:
    reference = final_view(run(call, [1600]))
    assert sorted(final_view(run(call, sizes)), key=repr) == sorted(reference, key=repr)


def test_state_round_trips_after_every_record_change_nothing_with_silero(call: Conversation) -> None:
    config = PipelineConfig(media=MediaConfig(vad=VadConfig(engine="silero"), segmenter=SegmenterParams()))
    short = build(SCRIPT[:2], seconds=8.0)
    assert run(short, [1600], config, round_trip=True) == run(short, [1600], config)


def test_an_ended_call_waits_for_its_late_audio_then_completes_on_a_quiet_tick(call: Conversation) -> None:
    base = int(T0.timestamp() * 1000) + 40_000  # the worker's clock, after every chunk's receive time
    recs = records(call, [1600])
    end = recs.pop()  # CallEnded arrives (on its own topic) before the last two seconds of audio
    late, recs = recs[-20:], recs[:-20]
    pipe = CallPipeline(CALL, PipelineConfig(), RULES)
    for name, record in [*recs, end]:
        pipe.on_record(name, record, now_ms=base)
    assert pipe.on_tick(base + END_GRACE_MS - 1) == []  # still inside the grace period
    for name, record in late:
        out = pipe.on_record(name, record, now_ms=base + 3_000)
        assert not any(n == CALL_METRICS and r["final"] for n, r in out)
    assert pipe.on_tick(base + 3_000 + END_GRACE_MS - 1) == []  # the late audio restarted the grace period
    done = pipe.on_tick(base + 3_000 + END_GRACE_MS)
    final = [r for n, r in done if n == CALL_METRICS and r["final"]]
    assert len(final) == 1 and final[0]["watermark_ms"] == 32_000  # the late audio counted
    assert pipe.ended and pipe.on_tick(base + 60_000) == [] and pipe.finish() == []


def g722_records(conv: Conversation, round_bytes: int = 1600) -> list[tuple[str, dict[str, Any]]]:
    """The call as a Telnyx G.722 stream would give it: 16 kHz media, 200 ms (1,600-byte) chunks per track."""
    out: list[tuple[str, dict[str, Any]]] = [(CALL_EVENT, event("CallStarted", 0))]
    encoded = {"inbound": g722_encode(conv.customer), "outbound": g722_encode(conv.agent)}
    for seq, at in enumerate(range(0, len(encoded["inbound"]), round_bytes)):
        for track, payload in encoded.items():
            record = audio(track, seq, 2 * at, np.zeros(0, dtype=np.int16))
            record.update(codec="G722", sample_rate=16000, payload=payload[at : at + round_bytes])
            record["received_at"] = T0 + timedelta(seconds=at / RATE)
            out.append((AUDIO_CHUNK, record))
    out.append((CALL_EVENT, event("CallEnded", conv.seconds, reason="hangup")))
    return out


def test_a_g722_call_is_analysed_like_its_g711_twin_across_restarts(call: Conversation) -> None:
    reference = of(run(call, [1600]), CALL_METRICS, final=True)[0]
    pipe = CallPipeline(CALL, PipelineConfig(), RULES)
    out: list[tuple[str, dict[str, Any]]] = []
    for i, (name, record) in enumerate(g722_records(call)):
        if i in (37, 101, 250):  # worker restarts: the G.722 decoders re-prime from the saved state
            pipe = CallPipeline(CALL, PipelineConfig(), RULES, state=json.loads(json.dumps(pipe.to_state())))
        out += pipe.on_record(name, record)
    out += pipe.finish()
    metrics = of(out, CALL_METRICS, final=True)[0]
    assert metrics["watermark_ms"] == 32_000
    for key in ("talk_agent_ms", "talk_customer_ms", "silence_ms"):
        assert metrics[key] == pytest.approx(reference[key], abs=300), key
    assert [a["status"] for a in of(out, ALERT, rule_id="dead-air")] == ["RAISED", "CLEARED"]
    assert of(out, ALERT, rule_id="interrupt")[0]["details"]["by_role"] == "CUSTOMER"
    speech = of(out, SPEECH_SEGMENT, kind="SPEECH")
    assert {s["sample_rate"] for s in speech} == {16000}
