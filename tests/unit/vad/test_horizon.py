"""The segmenter's horizon: what it reports as final never changes later (checked against the whole run)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from processors.audio.segmenter import Segment, Segmenter, SegmenterParams

FRAME = 80  # 10 ms at 8 kHz


def speech_mask(segments: list[Segment], length: int) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    for s in segments:
        mask[s.start_sample : s.end_sample] = True
    return mask


@pytest.mark.parametrize("seed", range(12))
def test_speech_before_the_horizon_is_final(seed: int) -> None:
    rng = random.Random(seed)
    params = SegmenterParams(threshold=0.5, min_speech_ms=100, min_silence_ms=200, hangover_ms=60)
    probabilities: list[float] = []
    while len(probabilities) < 3000:
        probabilities += [rng.choice([0.9, 0.1, 0.4])] * rng.randint(1, 40)
    segmenter = Segmenter(params, 8000, FRAME)
    closed: list[Segment] = []
    claims: list[tuple[int, np.ndarray]] = []
    open_claims = 0
    last_final = 0
    for i in range(0, len(probabilities), 7):
        block = np.array(probabilities[i : i + 7], dtype=np.float32)
        closed += segmenter.push(block, segmenter.cursor)
        final, since = segmenter.horizon()
        assert final >= last_final, "the horizon never moves back"
        last_final = final
        open_claims += since is not None
        known = closed + ([] if since is None else [Segment(since, final, 0.0)])
        claims.append((final, speech_mask(known, final)))
    closed += segmenter.flush()
    total = speech_mask(closed, segmenter.cursor)
    for final, claimed in claims:
        assert np.array_equal(claimed, total[:final]), f"claimed speech before {final} changed later"
    assert open_claims > 10, "the run exercised open segments reaching the horizon"
