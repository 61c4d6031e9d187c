"""Smoothing rules on hand-made probability sequences; chunk invariance and resumability of the segmenter."""

from __future__ import annotations

import itertools
import json

import numpy as np
import numpy.typing as npt
import pytest

from processors.audio.errors import AudioError
from processors.audio.segmenter import Segment, Segmenter, SegmenterParams, ms_to_samples
from processors.audio.vad import VadError
from tests.unit.vad.signals import random_splits

RATE = 8000
FRAME = 80  # 10 ms frames: one character of a pattern below
LEVELS = {"#": 0.9, "+": 0.6, "~": 0.4, ".": 0.0}  # threshold 0.5, exit threshold 0.35: '~' is in between


def probs(pattern: str) -> npt.NDArray[np.float32]:
    return np.array([LEVELS[c] for c in pattern], dtype=np.float32)


def r4(probability: float) -> float:
    return round(probability, 4)


def spans(segments: list[Segment]) -> list[tuple[int, int, float]]:
    """(start, end, mean probability to 4 decimals): probabilities are float32 sums."""
    return [(s.start_sample, s.end_sample, r4(s.probability)) for s in segments]


def run(
    pattern: str, start: int = 0, hangover_ms: int = 0, max_segment_ms: int | None = None
) -> list[tuple[int, int, float]]:
    """Push the whole pattern, then flush; min speech 50 ms (5 frames), min silence 30 ms (3 frames)."""
    params = SegmenterParams(
        min_speech_ms=50, min_silence_ms=30, hangover_ms=hangover_ms, max_segment_ms=max_segment_ms
    )
    segmenter = Segmenter(params, RATE, FRAME, start)
    return spans(segmenter.push(probs(pattern), start) + segmenter.flush())


def test_ms_are_converted_to_samples_once_with_half_up_rounding() -> None:
    assert ms_to_samples(250, 8000) == 2000
    assert ms_to_samples(30, 16000) == 480
    assert ms_to_samples(1, 22050) == 22  # 22.05 -> 22
    assert ms_to_samples(3, 22050) == 66  # 66.15 -> 66


def test_min_speech_drops_short_blips_and_keeps_long_enough_runs() -> None:
    assert run("..####......") == []  # 40 ms < 50 ms
    assert run("..#####.....") == [(160, 560, r4(0.9))]  # exactly 50 ms is kept


def test_min_silence_bridges_shorter_gaps_and_splits_at_longer_ones() -> None:
    # a 20 ms gap is bridged: one segment, the gap's frames count in the mean probability
    assert run("#####..#####...") == [(0, 960, r4(0.9 * 10 / 12))]
    # a 30 ms gap (= min_silence) splits
    assert run("#####...#####...") == [(0, 400, r4(0.9)), (640, 1040, r4(0.9))]


def test_hangover_extends_both_sides_without_overlap_or_crossing_the_track_start() -> None:
    assert run("....#####......", hangover_ms=20) == [(160, 880, r4(0.9))]
    # the second segment's early start stops at the first one's extended end; the first stops at sample 0
    assert run("#####...#####.....", hangover_ms=20) == [
        (0, 560, r4(0.9)),
        (560, 1200, r4(0.9)),
    ]


def test_hysteresis_between_exit_and_entry_threshold() -> None:
    # '~' (0.4) neither opens a segment nor starts a silence run, however long
    assert run("~~~~~~~~~~") == []
    assert run("#####~~~~~~~~~~#####...") == [(0, 1600, r4((0.9 * 10 + 0.4 * 10) / 20))]
    # '+' (0.6) opens; a silence run that started at '.' is not reset by '~'
    assert run("++++++.~~.......") == [(0, 480, r4(0.6))]


def test_segment_offsets_count_from_the_track_start() -> None:
    assert run("..######....", start=48_000) == [(48_160, 48_640, r4(0.9))]
    assert run("######....", start=48_000, hangover_ms=20) == [(48_000, 48_640, r4(0.9))]


def test_flush_closes_the_open_segment_and_never_drops_the_tail() -> None:
    assert run("..#######") == [(160, 720, r4(0.9))]
    # a pending silence run shorter than min_silence: the segment ends where the run began
    assert run("#######..", hangover_ms=20) == [(0, 720, r4(0.9))]
    # too short even at the end of the stream: still a blip
    assert run("......###") == []


def test_flush_with_a_scored_partial_tail_frame_ends_at_the_stream_end() -> None:
    segmenter = Segmenter(SegmenterParams(min_speech_ms=50, min_silence_ms=30, hangover_ms=20), RATE, FRAME)
    assert segmenter.push(probs("..#####"), 0) == []
    assert spans(segmenter.flush(590, tail_probability=0.9)) == [(0, 590, r4(0.9))]
    assert segmenter.cursor == 590


def test_max_segment_splits_long_speech_and_continues_without_padding() -> None:
    segments = run("#" * 25 + "...", max_segment_ms=100, hangover_ms=20)
    assert segments == [
        (0, 800, r4(0.9)),
        (800, 1600, r4(0.9)),
        (1600, 2160, r4(0.9)),  # 5 frames < min_speech but a continuation; end padded
    ]
    # reaching the maximum during a pending silence run ends the segment at the run
    assert run("#########..###", max_segment_ms=100) == [(0, 720, r4(0.9))]


def test_probability_is_the_mean_over_the_raw_extent() -> None:
    pattern = "#+#+#+...."
    assert run(pattern) == [(0, 480, r4((0.9 * 3 + 0.6 * 3) / 6))]


def random_probabilities(frames: int, seed: int) -> npt.NDArray[np.float32]:
    """Runs of speech-like and silence-like probabilities with noise, so every rule fires."""
    rng = np.random.default_rng(seed)
    out: list[float] = []
    speech = False
    while len(out) < frames:
        length = int(rng.integers(1, 120))
        base = 0.8 if speech else 0.1
        out += list(np.clip(rng.normal(base, 0.25, length), 0.0, 1.0))
        speech = not speech
    return np.array(out[:frames], dtype=np.float32)


PARAMS = SegmenterParams(min_speech_ms=120, min_silence_ms=200, hangover_ms=60, max_segment_ms=3000)


def test_output_is_identical_for_any_chunking() -> None:
    p = random_probabilities(30_000, seed=5)
    whole = Segmenter(PARAMS, RATE, FRAME, 1000)
    expected = whole.push(p, 1000) + whole.flush()
    assert len(expected) > 100
    for seed in range(3):
        chunked = Segmenter(PARAMS, RATE, FRAME, 1000)
        got: list[Segment] = []
        cuts = random_splits(p.size, seed, largest=400)
        for a, b in itertools.pairwise(cuts):
            got += chunked.push(p[a:b], 1000 + a * FRAME)
        assert got + chunked.flush() == expected


def test_state_round_trip_through_json_at_random_points_gives_the_uninterrupted_result() -> None:
    p = random_probabilities(20_000, seed=9)
    whole = Segmenter(PARAMS, RATE, FRAME)
    expected = whole.push(p, 0) + whole.flush()
    segmenter = Segmenter(PARAMS, RATE, FRAME)
    got: list[Segment] = []
    cuts = random_splits(p.size, seed=2, largest=700)
    for a, b in itertools.pairwise(cuts):
        got += segmenter.push(p[a:b], a * FRAME)
        segmenter = Segmenter.from_state(json.loads(json.dumps(segmenter.state())))
    assert got + segmenter.flush() == expected


def test_state_is_plain_json_with_sample_offsets() -> None:
    segmenter = Segmenter(SegmenterParams(min_speech_ms=50, min_silence_ms=30, hangover_ms=0), RATE, FRAME, 80)
    segmenter.push(probs("######."), 80)
    assert segmenter.state() == {
        "params": {
            "threshold": 0.5,
            "neg_offset": 0.15,
            "min_speech_ms": 50,
            "min_silence_ms": 30,
            "hangover_ms": 0,
            "max_segment_ms": None,
        },
        "sample_rate": 8000,
        "frame_samples": 80,
        "cursor": 640,
        "last_end": 80,
        "open": {
            "start": 80,
            "continued": False,
            "silence_start": 560,
            "prob_sum": pytest.approx(0.9 * 6),
            "frames": 7,
            "voiced_sum": pytest.approx(0.9 * 6),
            "voiced_frames": 6,
        },
        "finished": False,
    }


def test_gaps_overlaps_and_pushes_after_flush_are_refused() -> None:
    segmenter = Segmenter(SegmenterParams(), RATE, FRAME)
    segmenter.push(probs("##"), 0)
    with pytest.raises(VadError, match=r"frames start at sample 80, expected 160"):
        segmenter.push(probs("#"), 80)
    with pytest.raises(VadError, match=r"flush at sample 170 does not end the last frame \(cursor 160\)"):
        segmenter.flush(170)
    with pytest.raises(VadError, match=r"flush at sample 240 does not end"):
        segmenter.flush(240, tail_probability=0.9)
    segmenter.flush()
    with pytest.raises(VadError, match=r"flushed at sample 160"):
        segmenter.push(probs("#"), 160)
    with pytest.raises(VadError, match=r"already flushed"):
        segmenter.flush()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 0.0}, r"threshold must be in \(0, 1\], got 0.0"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\], got 1.5"),
        ({"neg_offset": -0.1}, r"neg_offset must be in \[0, 1\), got -0.1"),
        ({"min_speech_ms": -1}, r"min_speech_ms must be >= 0 ms, got -1"),
        ({"hangover_ms": 400, "min_silence_ms": 300}, r"hangover_ms \(400\) must not exceed min_silence_ms \(300\)"),
        ({"max_segment_ms": 200}, r"max_segment_ms \(200\) must exceed"),
    ],
)
def test_bad_params_are_refused_naming_the_value(params: dict[str, float], message: str) -> None:
    with pytest.raises(VadError, match=message):
        SegmenterParams(**params)  # type: ignore[arg-type]


def test_malformed_state_is_refused() -> None:
    state = Segmenter(SegmenterParams(), RATE, FRAME).state()
    del state["cursor"]
    with pytest.raises(VadError, match="malformed segmenter state: KeyError"):
        Segmenter.from_state(state)
    assert issubclass(VadError, AudioError)


def test_exit_threshold_never_falls_below_001() -> None:
    assert SegmenterParams(threshold=0.1).neg_threshold == 0.01
    assert SegmenterParams(threshold=0.7).neg_threshold == pytest.approx(0.55)
