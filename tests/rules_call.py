"""A scripted two-track call that triggers every rule type, as records, and the alerts the pure pipeline
derives from them: the yardstick of the worker tests that run it through a real broker and worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from infra.settings import Settings
from processors.app import pipeline_config
from processors.audio.g711 import ulaw_encode
from processors.pipeline import CallPipeline
from processors.rules.model import from_record
from schemas import ALERT, AUDIO_CHUNK, AvroCodec
from tests.speech import RATE, Utterance, build

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


def event(kind: str, at_ms: int, origin_ms: int, call: str = CALL, **payload: Any) -> dict[str, Any]:
    when = datetime.fromtimestamp((origin_ms + at_ms) / 1000, UTC)
    return {
        "event_id": f"{call}-{kind}-{at_ms}",
        "call_id": call,
        "cid": 1,
        "source": "CRESTA",
        "occurred_at": when,
        "received_at": when,
        "payload": (NS + kind, payload),
        "raw": "",
        "attributes": {},
    }


def chunk(track: str, audio: np.ndarray, seq: int, received_ms: int, call: str = CALL) -> dict[str, Any]:
    start = seq * CHUNK
    return {
        "call_id": call,
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


def part(
    audio: dict[str, np.ndarray], first_s: float, last_s: float, received: Any, call: str = CALL
) -> list[tuple[str, dict]]:
    out = []
    for seq in range(int(first_s * RATE) // CHUNK, int(last_s * RATE) // CHUNK):
        for track in ("inbound", "outbound"):
            out.append((AUDIO_CHUNK, chunk(track, audio[track], seq, received(seq), call)))
    return out


def reference(records: list[tuple[str, dict]], call: str = CALL) -> list[dict[str, Any]]:
    """The alerts the pure pipeline derives from the same records (no wall-clock rule involved)."""
    settings = Settings(vad_engine="silero")
    pipe = CallPipeline(call, pipeline_config(settings), from_record(RULES))
    codec = AvroCodec.default()
    out = []
    for name, record in records:
        decoded = AvroCodec.default().decode(AvroCodec.default().encode(name, record)).record
        out += [codec.decode(codec.encode(n, r)).record for n, r in pipe.on_record(name, decoded) if n == ALERT]
    out += [codec.decode(codec.encode(n, r)).record for n, r in pipe.finish() if n == ALERT]
    return out
