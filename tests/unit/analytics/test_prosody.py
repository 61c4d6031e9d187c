"""Prosody per 3 s window: pitch accuracy, intensity, vocal variety, speaking rate, chunk invariance, layout."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import resample_poly

from processors.analytics.errors import IllegalTransitionError, InvalidInputError
from processors.analytics.measures import measure_window
from processors.analytics.pitch import Framing, f0_track
from processors.analytics.prosody import (
    RATE_CLASSES,
    ProsodyState,
    WindowResult,
    feed,
    flush,
    intensity_score,
    oliver_interim,
    rate_class,
    variety_score,
)
from processors.analytics.sweep import Role

Samples = npt.NDArray[np.int16]
ESPEAK = "/usr/bin/espeak-ng"
TEXT = (
    "The quick brown fox jumps over the lazy dog. I would like to check the balance of my account please, "
    "and then talk about the delivery. Could you also tell me when the next invoice will arrive?"
)
RANKS = {name: i for i, (_, name) in enumerate(RATE_CLASSES)}


def harmonic(f0_hz: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]], rate: int, seconds: float) -> Samples:
    """A vowel-like harmonic complex (8 harmonics, -3 dB each) with instantaneous f0 ``f0_hz(t)``, peak 8000."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0_hz(t), t.shape)) / rate
    x = sum(0.7**k * np.sin(k * phase + k) for k in range(1, 9))
    out: Samples = np.round(x / np.max(np.abs(x)) * 8000).astype(np.int16)
    return out


def constant(f0: float) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    return lambda t: np.full(t.shape, f0)


def tone_at(dbfs: float, rate: int, seconds: float = 3.0) -> Samples:
    """1 kHz sine whose RMS is ``dbfs`` re a full-scale square wave (so peak = dbfs + 3.01 dB)."""
    amplitude = 32768 * np.sqrt(2) * 10 ** (dbfs / 20)
    t = np.arange(int(rate * seconds)) / rate
    out: Samples = np.round(amplitude * np.sin(2 * np.pi * 1000 * t)).clip(-32768, 32767).astype(np.int16)
    return out


def syllable_train(rate_hz: float, sample_rate: int) -> Samples:
    """3 s of a 130 Hz vowel amplitude-modulated by sin^2: ``rate_hz`` syllables per second."""
    t = np.arange(3 * sample_rate) / sample_rate
    out: Samples = np.round(harmonic(constant(130.0), sample_rate, 3.0) * np.sin(np.pi * rate_hz * t) ** 2).astype(
        np.int16
    )
    return out


def espeak(tmp: Path, words_per_minute: int, sample_rate: int) -> Samples:
    path = tmp / f"speech-{words_per_minute}.wav"
    subprocess.run([ESPEAK, "-s", str(words_per_minute), "-w", str(path), TEXT], check=True)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 22050 and w.getsampwidth() == 2 and w.getnchannels() == 1
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    out: Samples = np.round(resample_poly(x, sample_rate // 50, 441)).clip(-32768, 32767).astype(np.int16)
    return out


def windows(samples: Samples, rate: int) -> list[WindowResult]:
    _state, results = feed(ProsodyState(Role.AGENT, rate), samples)
    return results


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Samples]:
    tmp = tmp_path_factory.mktemp("espeak")
    return {(wpm, rate): espeak(tmp, wpm, rate) for wpm in (80, 175, 260) for rate in (8000, 16000)}


# ---------------------------------------------------------------- pitch


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("f0", [60.0, 85.0, 110.0, 163.0, 230.0, 320.0, 400.0])
def test_pitch_of_harmonic_signals_within_two_percent(rate: int, f0: float) -> None:
    framing = Framing.at(rate)
    x = harmonic(constant(f0), rate, 0.5).astype(np.float64)
    starts = np.arange(0, x.size - framing.span, rate // 100, dtype=np.int64)
    track, aperiodicity = f0_track(x, starts, framing)
    assert not np.isnan(track).any()
    assert np.max(np.abs(track / f0 - 1)) < 0.02
    assert np.max(aperiodicity) < 0.1


def test_noise_has_no_pitch_and_high_aperiodicity() -> None:
    framing = Framing.at(8000)
    x = np.random.default_rng(3).normal(0, 3000, 8000)
    track, aperiodicity = f0_track(x, np.arange(0, 7000, 80, dtype=np.int64), framing)
    assert np.isnan(track).all()
    assert np.min(aperiodicity) > 0.35


def test_frames_must_fit() -> None:
    framing = Framing.at(8000)
    with pytest.raises(InvalidInputError, match=f"frame at sample 100 needs {framing.span} samples, x has 300"):
        f0_track(np.zeros(300), np.array([0, 100], dtype=np.int64), framing)


# ---------------------------------------------------------------- intensity


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize(
    ("dbfs", "score"),
    [(-60.0, None), (-49.0, 0), (-46.0, 1), (-34.0, 4), (-26.0, 6), (-18.0, 8), (-14.0, 9), (-6.0, 10)],
)
def test_intensity_of_tones_at_known_levels(rate: int, dbfs: float, score: int | None) -> None:
    (result,) = windows(tone_at(dbfs, rate), rate)
    if score is None:  # below the activity floor: no speech, no intensity
        assert result.measures.active_dbfs is None and "intensity" not in result.outputs()
        return
    assert result.measures.active_dbfs == pytest.approx(dbfs, abs=0.05)  # int16 rounding of quiet tones
    assert result.outputs()["intensity"] == score


def test_intensity_is_monotone_in_level() -> None:
    nominal = list(range(-50, -2, 2))  # a sine above -3 dBFS RMS would clip
    measured = [measure_window(tone_at(db, 8000), 8000).active_dbfs for db in nominal]
    values = [v for v in measured if v is not None]
    assert values == pytest.approx(nominal, abs=0.05)
    assert all(a < b for a, b in itertools.pairwise(values))
    scores = [intensity_score(v) for v in values]
    assert scores == sorted(scores) and scores[0] == 0 and scores[-1] == 10


def test_scores_map_linearly_round_half_up_and_clip() -> None:
    assert [intensity_score(v) for v in (-80.0, -50.0, -48.0, -30.0, -10.0, 5.0)] == [0, 0, 1, 5, 10, 10]
    assert [variety_score(v) for v in (0.0, 0.19, 0.2, 2.0, 4.0, 9.0)] == [0, 0, 1, 5, 10, 10]
    assert [rate_class(v) for v in (0.0, 2.49, 2.5, 3.5, 4.49, 4.5, 5.5, 9.0)] == [
        "very slow",
        "very slow",
        "slow",
        "normal",
        "normal",
        "fast",
        "very fast",
        "very fast",
    ]


def test_too_little_speech_is_omitted_not_faked() -> None:
    x = np.zeros(24_000, dtype=np.int16)
    x[:3_200] = harmonic(constant(150.0), 8000, 0.4)  # 400 ms of a vowel: less than the 500 ms needed
    (result,) = windows(x, 8000)
    assert result.measures.active_dbfs is None and result.measures.syllable_rate is None
    assert result.outputs() == {}
    (silent,) = windows(np.zeros(24_000, dtype=np.int16), 8000)
    assert silent.measures.speech_ms == 0 and silent.outputs() == {}


# ---------------------------------------------------------------- vocal variety


@pytest.mark.parametrize("rate", [8000, 16000])
def test_vocal_variety_constant_pitch_glide_and_speech(rate: int, speech: dict[tuple[int, int], Samples]) -> None:
    (flat,) = windows(harmonic(constant(140.0), rate, 3.0), rate)
    assert flat.measures.pitch_std_semitones is not None and flat.measures.pitch_std_semitones < 0.05
    assert flat.outputs()["vocal_variety"] == 0
    (glide,) = windows(harmonic(lambda t: 100.0 * 2 ** (t / 3.0), rate, 3.0), rate)  # one octave in 3 s
    # a linear sweep over 12 semitones has a standard deviation of 12 / sqrt(12) = 3.46 semitones
    assert glide.measures.pitch_std_semitones == pytest.approx(12 / np.sqrt(12), abs=0.1)
    assert glide.outputs()["vocal_variety"] == 9
    voiced = [w.outputs()["vocal_variety"] for w in windows(speech[(175, rate)], rate)]
    assert voiced and all(isinstance(v, int) and 1 <= v <= 7 for v in voiced)


# ---------------------------------------------------------------- speaking rate


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize(("syllables", "label"), [(2, "very slow"), (4, "normal"), (6, "very fast")])
def test_speaking_rate_of_syllable_trains(rate: int, syllables: int, label: str) -> None:
    (result,) = windows(syllable_train(syllables, rate), rate)
    assert result.measures.syllable_rate == pytest.approx(syllables, abs=0.15)
    assert result.outputs()["speaking_rate"] == label


@pytest.mark.parametrize("rate", [8000, 16000])
def test_speaking_rate_of_slow_and_fast_speech(rate: int, speech: dict[tuple[int, int], Samples]) -> None:
    def full_window_ranks(wpm: int) -> list[int]:
        results = windows(speech[(wpm, rate)], rate)
        return [RANKS[str(w.outputs()["speaking_rate"])] for w in results]

    slow, fast = full_window_ranks(80), full_window_ranks(260)
    assert len(slow) >= 4 and len(fast) >= 2
    assert max(slow) < min(fast)  # every window of 80 wpm is classified slower than every one of 260 wpm
    assert max(slow) <= RANKS["slow"] and min(fast) >= RANKS["fast"]


# ---------------------------------------------------------------- streaming, state, layout


def test_chunk_invariance_with_random_splits_and_state_round_trips(speech: dict[tuple[int, int], Samples]) -> None:
    x = speech[(175, 8000)]
    whole_state, whole = feed(ProsodyState(Role.CUSTOMER, 8000, origin_sample=400), x)
    _, tail = flush(whole_state)
    reference = [*whole, *tail]
    rng = random.Random(5)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, x.size), 12))
        state, got = ProsodyState(Role.CUSTOMER, 8000, origin_sample=400), []
        for a, b in zip([0, *cuts], [*cuts, x.size], strict=True):
            state, results = feed(state, x[a:b])
            got += results
            state = ProsodyState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, results = flush(state)
        assert [*got, *results] == reference
    assert [(w.start_sample, w.end_sample) for w in reference[:2]] == [(400, 24_400), (24_400, 48_400)]
    assert reference[-1].end_sample == 400 + x.size and reference[-1].st == (400 + 24_000 * len(whole)) / 8000


def test_flush_ends_the_track() -> None:
    state, results = feed(ProsodyState(Role.AGENT, 16000), tone_at(-18.0, 16000, 4.0))
    assert [(r.st, r.et) for r in results] == [(0.0, 3.0)]
    state, tail = flush(state)
    assert [(r.st, r.et) for r in tail] == [(3.0, 4.0)]
    assert tail[0].outputs() == {"intensity": 8, "vocal_variety": 0}  # a steady tone: no syllable rate under 1 s
    assert flush(state) == (state, [])
    with pytest.raises(IllegalTransitionError, match="AGENT prosody was flushed at sample 64000"):
        feed(state, np.zeros(10, dtype=np.int16))


def test_refused_inputs() -> None:
    with pytest.raises(InvalidInputError, match="not 44100 Hz"):
        ProsodyState(Role.AGENT, 44100)
    with pytest.raises(InvalidInputError, match="got float64 with shape"):
        feed(ProsodyState(Role.AGENT, 8000), np.zeros(10))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"shape \(5, 2\)"):
        feed(ProsodyState(Role.AGENT, 8000), np.zeros((5, 2), dtype=np.int16))


def test_oliver_interim_layout() -> None:
    (agent,) = windows(syllable_train(4, 8000), 8000)
    _, (customer,) = feed(ProsodyState(Role.CUSTOMER, 8000), np.zeros(24_000, dtype=np.int16))
    m = agent.measures
    assert m.active_dbfs is not None and m.pitch_std_semitones is not None
    assert oliver_interim([customer, agent]) == {
        "st": 0.0,
        "et": 3.0,
        "agent": {
            "intensity": intensity_score(m.active_dbfs),
            "vocal_variety": 0,
            "speaking_rate": "normal",
        },
    }
    later = WindowResult(Role.CUSTOMER, 24_000, 48_000, 8000, customer.measures)
    with pytest.raises(InvalidInputError, match="different spans"):
        oliver_interim([agent, later])
    with pytest.raises(InvalidInputError, match="at least one"):
        oliver_interim([])
