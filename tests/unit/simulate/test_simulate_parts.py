"""The load generator's pure parts: encoders against audioop, planned conversations, schedule and options."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from infra.simulate import SimulateError
from infra.simulate.codecs import alaw_encode, encode, g722_encode, ulaw_encode
from infra.simulate.plan import build_plan
from infra.simulate.runner import Options, policy_document, schedule
from infra.simulate.speech import RATE_HZ, Voice
from infra.simulate.vendors import Target, _hold_marks, stereo
from processors.audio.g722 import G722Decoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
TARGET = Target("http://127.0.0.1:1", "k", 1, "sim.example")
CACHE = Path.home() / ".cache" / "switchboard" / "speech"


def test_g711_encoders_match_audioop_for_every_sample() -> None:
    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE.tobytes(), 2)
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE.tobytes(), 2)


def test_g722_is_one_byte_per_8khz_sample_and_decodes_back_to_the_tone() -> None:
    t = np.arange(RATE_HZ) / RATE_HZ
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    payload = g722_encode(tone)
    assert len(payload) == tone.size
    decoded = G722Decoder().decode(payload)
    spectrum = np.abs(np.fft.rfft(decoded[4000:12000].astype(np.float64)))
    assert round(float(np.argmax(spectrum)) * 16000 / 8000) == 440


def test_unknown_codec_is_refused_by_name() -> None:
    with pytest.raises(SimulateError, match="'OPUS'"):
        encode("OPUS", EVERY_SAMPLE)


def test_plan_of_a_long_cresta_call_holds_every_planned_section() -> None:
    plan = build_plan(Voice(CACHE), 240, with_hold=True, seed=1)
    assert plan.agent.size == plan.customer.size == 240 * RATE_HZ
    assert [e.kind for e in plan.expected] == ["overtalk", "dead_air", "long_hold", "monologue"]
    (hold,) = plan.holds
    assert hold[1] - hold[0] == 130.0
    dead = next(e for e in plan.expected if e.kind == "dead_air")
    span = slice(int(dead.start_s * RATE_HZ), int((dead.start_s + dead.seconds) * RATE_HZ))
    assert np.abs(plan.agent[span].astype(np.int32)).max() < 200  # only the noise floor
    assert np.abs(plan.customer[span].astype(np.int32)).max() < 200
    overtalk = next(e for e in plan.expected if e.kind == "overtalk")
    assert overtalk.seconds >= 3.0


def test_short_calls_plan_no_alert() -> None:
    plan = build_plan(Voice(CACHE), 8, with_hold=False)
    assert plan.expected == [] and plan.holds == []


def test_schedule_rotates_protocols_and_codecs_and_ramps() -> None:
    specs = schedule(Options(calls=5, duration_s=10, ramp_s=8, target=TARGET, run_id="r"))
    assert [(s.protocol, s.codec, s.start_s) for s in specs] == [
        ("telnyx", "PCMU", 0.0),
        ("cresta", "PCMU", 2.0),
        ("telnyx", "PCMA", 4.0),
        ("cresta", "PCMU", 6.0),
        ("telnyx", "G722", 8.0),
    ]
    assert specs[3].call_id == "sim-r-00003"


@pytest.mark.parametrize(
    ("protocols", "message"), [(("telnyx", "sip"), "'sip'"), (("mediaservice",), "carry no audio")]
)
def test_options_refuse_unknown_or_audio_less_protocols(protocols: tuple[str, ...], message: str) -> None:
    with pytest.raises(SimulateError, match=message):
        Options(calls=1, duration_s=10, ramp_s=0, target=TARGET, protocols=protocols)


def test_policy_routes_every_call_of_the_tenant() -> None:
    assert policy_document(7, "d.example")["new_call"] == {
        "default": {"action": "call", "destAddr": "sip:agents@d.example", "maxRingTime": 25}
    }


def test_hold_marks_and_stereo_interleaving() -> None:
    assert _hold_marks(((32.0, 40.5),)) == [(32000, "CALL_HOLD"), (40500, "CALL_UNHOLD")]
    assert stereo(b"ab", b"xy") == b"axby"
