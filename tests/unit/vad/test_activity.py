"""Periodic level / voice-activity summaries: exact levels, interval boundaries, chunking, state."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from processors.audio import levels
from processors.audio.activity import ActivityMeter, ActivitySummary, level_from_sums
from processors.audio.levels import Level
from processors.audio.vad import VadError
from tests.unit.vad.signals import noise, random_splits


def run_meter(samples: np.ndarray, voiced: np.ndarray, cuts: list[int], meter: ActivityMeter) -> list[ActivitySummary]:
    out: list[ActivitySummary] = []
    for a, b in itertools.pairwise(cuts):
        out += meter.push(samples[a:b], voiced[a:b])
    return out + meter.flush()


def test_intervals_levels_and_voiced_fraction_are_exact() -> None:
    samples = np.concatenate((noise(1.0, 1000, seed=1), np.zeros(8000, np.int16), noise(0.5, 200, seed=2)))
    voiced = np.zeros(samples.size, dtype=bool)
    voiced[2000:6000] = True
    voiced[19_000:20_000] = True
    summaries = run_meter(samples, voiced, [0, samples.size], ActivityMeter(8000, 1000, start_sample=16_000))
    assert [(s.start_sample, s.end_sample, s.voiced_samples) for s in summaries] == [
        (16_000, 24_000, 4000),
        (24_000, 32_000, 0),
        (32_000, 36_000, 1000),  # the partial last interval, emitted by flush
    ]
    assert [s.voiced_fraction for s in summaries] == [0.5, 0.0, 0.25]
    assert summaries[0].level == levels.measure(samples[:8000])
    assert summaries[1].level == Level(None, None)  # digital silence
    assert summaries[2].level == levels.measure(samples[16_000:])


def test_level_from_sums_matches_levels_measure_bit_for_bit() -> None:
    for seed, rms in enumerate((3, 300, 9000, 40000)):
        x = noise(2.0, rms, seed)
        wide = x.astype(np.int64)
        assert level_from_sums(int(wide @ wide), int(np.abs(wide).max()), x.size) == levels.measure(x)
    full = np.full(80, -32768, dtype=np.int16)
    assert level_from_sums(80 * 32768**2, 32768, 80) == levels.measure(full) == Level(0.0, 0.0)
    assert level_from_sums(0, 0, 0) == Level(None, None)


def test_summaries_do_not_depend_on_chunking() -> None:
    samples = noise(30.0, 2000, seed=3, rate=16000)
    voiced = np.repeat(np.random.default_rng(4).random(samples.size // 512 + 1) > 0.5, 512)[: samples.size]
    expected = run_meter(samples, voiced, [0, samples.size], ActivityMeter(16000, 250))
    assert len(expected) == 120
    for seed in range(3):
        cuts = random_splits(samples.size, seed, largest=9000)
        assert run_meter(samples, voiced, cuts, ActivityMeter(16000, 250)) == expected


def test_state_round_trip_through_json_continues_exactly() -> None:
    samples = noise(10.0, 3000, seed=5)
    voiced = np.arange(samples.size) % 3 == 0
    expected = run_meter(samples, voiced, [0, samples.size], ActivityMeter(8000, 1000))
    got: list[ActivitySummary] = []
    meter = ActivityMeter(8000, 1000)
    cuts = random_splits(samples.size, seed=6, largest=5000)
    for a, b in itertools.pairwise(cuts):
        got += meter.push(samples[a:b], voiced[a:b])
        meter = ActivityMeter.from_state(json.loads(json.dumps(meter.state())))
    assert got + meter.flush() == expected


def test_state_is_plain_integers() -> None:
    meter = ActivityMeter(8000, 1000, start_sample=80)
    meter.push(np.array([3, -4, 0], dtype=np.int16), np.array([True, False, True]))
    assert meter.state() == {
        "sample_rate": 8000,
        "interval_ms": 1000,
        "start": 80,
        "count": 3,
        "sum_squares": 25,
        "peak": 4,
        "voiced": 2,
    }
    assert meter.cursor == 83


def test_bad_input_and_state_are_refused() -> None:
    with pytest.raises(VadError, match=r"interval of 0 ms is not a whole, positive number of samples"):
        ActivityMeter(8000, 0)
    with pytest.raises(VadError, match=r"interval of 1 ms is not a whole"):
        ActivityMeter(22050, 1)
    meter = ActivityMeter(8000)
    with pytest.raises(VadError, match=r"needs 1-D int16 samples and an equal voiced mask, got \(4,\)"):
        meter.push(np.zeros(4, np.int16), np.zeros(3, bool))
    with pytest.raises(VadError, match=r"malformed activity state: KeyError\('peak'\)"):
        ActivityMeter.from_state({k: v for k, v in meter.state().items() if k != "peak"})
    assert meter.flush() == []
