"""The Oliver ``basic`` block and the detection / level tally."""

from __future__ import annotations

import json
import math
import random

import pytest

from processors.analytics.basic import basic_block, seconds
from processors.analytics.errors import InvalidInputError, NotFinalError, OutOfOrderError
from processors.analytics.sweep import Role
from processors.analytics.talk import CallEnd, HoldEnded, HoldStarted, Progress, Speech, TalkInput, fold
from processors.analytics.tally import (
    Detection,
    DetectionKind,
    LevelReading,
    SignalTally,
    add_detection,
    add_level,
    summary,
)

A, C = Role.AGENT, Role.CUSTOMER
BEEP, RING, DTMF, CLIP = DetectionKind.BEEP, DetectionKind.RINGBACK, DetectionKind.DTMF, DetectionKind.CLIPPING

# agent 0-10 s, customer 8-15 s, silence 15-20 s, hold 20-30 s, agent 30-35 s
CALL: list[TalkInput] = [
    HoldStarted(20_000),
    HoldEnded(30_000),
    Speech(A, 0, 10_000),
    Speech(C, 8_000, 15_000),
    Speech(A, 30_000, 35_000),
    Progress(C, 35_000),
    CallEnd(35_000),
]

DETECTIONS = [
    Detection(RING, 0, 2_000),
    Detection(RING, 4_000, 6_000),
    Detection(BEEP, 21_000, 21_250, A),
    Detection(DTMF, 12_000, 12_080, C, "4"),
    Detection(DTMF, 12_300, 12_380, C, "2"),
    Detection(CLIP, 9_000, 9_040, A),
    Detection(CLIP, 9_500, 9_560, A),
]


def tally_of(detections: list[Detection]) -> SignalTally:
    tally = SignalTally()
    for d in detections:
        tally = add_detection(tally, d)
    return tally


def test_basic_block_of_the_reference_call() -> None:
    state, _ = fold(CALL)
    block = basic_block(state, tally_of(DETECTIONS))
    assert block == {
        "totalduration": 35.0,
        "speakerchanges": 2,
        "numbeepfound": 1,
        "numringfound": 2,
        "id": {"agent": 0, "customer": 1},
        "vad": {"agent": 13.0, "customer": 5.0, "overlap": 2.0, "silence": 5.0},
    }
    vad = block["vad"]
    hold_without_speech = 10.0
    assert vad["agent"] + vad["customer"] + vad["overlap"] + vad["silence"] == 35.0 - hold_without_speech
    assert json.loads(json.dumps(block)) == block


def test_basic_block_rounds_to_the_ms_and_takes_a_channel_map() -> None:
    state, _ = fold([Speech(A, 0, 1_234), Speech(C, 1_000, 2_001), CallEnd(12_345)])
    block = basic_block(state, SignalTally(), {"agent": 1, "customer": 0})
    assert block["totalduration"] == 12.345
    assert block["id"] == {"agent": 1, "customer": 0}
    assert block["vad"] == {"agent": 1.0, "customer": 0.767, "overlap": 0.234, "silence": 10.344}
    assert block["numbeepfound"] == 0 and block["numringfound"] == 0 and block["speakerchanges"] == 1
    assert seconds(1) == 0.001


def test_basic_block_is_only_for_ended_calls() -> None:
    state, _ = fold(CALL[:-1])
    with pytest.raises(NotFinalError, match="joint watermark 35000 ms"):
        basic_block(state, SignalTally())


def test_detections_are_a_set_whatever_the_order_and_redelivery() -> None:
    expected = tally_of(DETECTIONS)
    shuffled = DETECTIONS * 2
    random.Random(7).shuffle(shuffled)
    assert tally_of(shuffled) == expected
    assert expected.count(RING) == 2 and expected.count(DTMF) == 2 and expected.count(CLIP) == 2
    assert SignalTally.from_dict(json.loads(json.dumps(expected.to_dict()))) == expected


def test_summary_gives_times_digits_clipping_and_levels() -> None:
    tally = tally_of(DETECTIONS)
    tally = add_level(tally, LevelReading(A, 0, 8_000, -20.0, -3.0))
    tally = add_level(tally, LevelReading(A, 8_000, 16_000, -30.0, -1.5))
    tally = add_level(tally, LevelReading(A, 16_000, 24_000, None, None))
    tally = add_level(tally, LevelReading(A, 8_000, 16_000, -30.0, -1.5))  # redelivered
    out = summary(tally)
    assert out["beeps"] == [{"st": 21.0, "et": 21.25}]
    assert out["rings"] == [{"st": 0.0, "et": 2.0}, {"st": 4.0, "et": 6.0}]
    assert out["dtmf"] == {"customer": "42"}
    assert out["clipping"] == {"agent": {"count": 2, "ms": 100}}
    mean = 10 * math.log10((8_000 * 10**-2.0 + 8_000 * 10**-3.0) / 24_000)
    assert out["levels"] == {"agent": {"mean_dbfs": pytest.approx(mean, abs=1e-9), "peak_dbfs": -1.5}}
    assert tally.levels[A].cursor_sample == 24_000 and tally.levels[C].samples == 0


def test_tally_refuses_bad_detections_and_overlapping_levels() -> None:
    with pytest.raises(InvalidInputError, match="DTMF detection at 5 ms has no single digit: '12'"):
        Detection(DTMF, 5, 10, C, "12")
    with pytest.raises(InvalidInputError, match=r"BEEP detection \[10, 5\) ms"):
        Detection(BEEP, 10, 5)
    with pytest.raises(ValueError, match="'HOWL' is not a valid DetectionKind"):
        DetectionKind("HOWL")
    tally = add_level(SignalTally(), LevelReading(A, 0, 800, -20.0, -6.0))
    with pytest.raises(OutOfOrderError, match=r"AGENT level reading \[400, 1200\) overlaps samples read up to 800"):
        add_level(tally, LevelReading(A, 400, 1_200, -20.0, -6.0))
    with pytest.raises(InvalidInputError, match=r"\[5, 5\) is empty"):
        add_level(tally, LevelReading(C, 5, 5, None, None))
