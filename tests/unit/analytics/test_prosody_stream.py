"""Streaming prosody: frame features as samples arrive give the whole-window measures exactly; small and old states."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from processors.analytics.errors import IllegalTransitionError, InvalidInputError
from processors.analytics.measures import (
    ACTIVE_FLOOR_DBFS,
    ACTIVE_RANGE_DB,
    FRAME_FEATURES,
    Measures,
    frame_features,
    framing_at,
    measure_frames,
    measure_window,
)
from processors.analytics.pitch import f0_track
from processors.analytics.prosody import ProsodyState, WindowResult, feed, flush
from processors.analytics.sweep import Role
from tests.unit.audio.signals import SENTENCES, VOWEL_A, VOWEL_I, add_noise, silence, speech, to_int16, tones, vowel

Samples = npt.NDArray[np.int16]
RATES = (8000, 16000)


def at_dbfs(x: Samples, dbfs: float) -> Samples:
    """``x`` scaled so its RMS is ``dbfs`` re a full-scale square wave."""
    f = x.astype(np.float64)
    return to_int16(f * 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(f * f)))


def talk(rate: int) -> Samples:
    """The three espeak sentences with pauses (about 10 s)."""
    pause = to_int16(silence(700, rate))
    return np.concatenate([part for text in SENTENCES for part in (speech(text, rate), pause)])


def masked(rate: int) -> Samples:
    """A loud vowel, then a vowel 40 dB quieter: above the floor but outside the window's 30 dB range."""
    loud = at_dbfs(vowel(120.0, VOWEL_A, rate, 1.2), -8.0)
    quiet = at_dbfs(vowel(210.0, VOWEL_I, rate, 2.5), -48.0)
    return np.concatenate([loud, quiet, loud[: rate // 2]])


def near_floor(rate: int) -> Samples:
    """A vowel rising through the activity floor (-62 to -44 dBFS in 4 s) over noise at -75 dBFS."""
    noise = add_noise(np.zeros(4 * rate), 32768.0**2 * 10 ** (-75 / 10), 0.0, seed=rate)
    gain = np.geomspace(10 ** (-7 / 20), 10 ** (11 / 20), 4 * rate)
    rise = at_dbfs(vowel(150.0, VOWEL_A, rate, 4.0), -55.0).astype(np.float64) * gain
    return to_int16(noise + rise)


def mixed(rate: int) -> Samples:
    """Silence, white noise, a chord, digital silence and speech over 6 s, then a last window shorter than a span."""
    noise = to_int16(add_noise(np.zeros(rate), 1e6, 0.0, seed=7))
    chord = to_int16(tones((440.0, 660.0), 1500, rate, 3000.0))
    parts = [
        to_int16(silence(800, rate)),
        noise,
        chord,
        np.zeros(rate // 3, dtype=np.int16),
        speech(SENTENCES[2], rate),
    ]
    x = np.zeros(6 * rate + framing_at(rate).span // 2, dtype=np.int16)
    joined = np.concatenate(parts)[: x.size]
    x[: joined.size] = joined
    return x


SIGNALS: dict[str, Callable[[int], Samples]] = {
    "talk": talk,
    "masked": masked,
    "near_floor": near_floor,
    "mixed": mixed,
}


def whole_window_reference(x: Samples, rate: int, origin: int) -> list[WindowResult]:
    """Every 3 s window of ``x`` (the last one shorter) measured at once by ``measure_window``."""
    size = 3 * rate
    return [
        WindowResult(
            Role.CUSTOMER, origin + a, origin + min(a + size, x.size), rate, measure_window(x[a : a + size], rate)
        )
        for a in range(0, x.size, size)
    ]


def chunk_sizes(rng: random.Random, rate: int) -> Callable[[], int]:
    """Chunk sizes from empty and single samples through hops and frame spans to several windows."""
    span, hop = framing_at(rate).span, rate // 100
    choices = (0, 1, 2, hop - 1, hop, hop + 1, span - 1, span, span + 1, rate // 10, 3 * rate - 1, 7 * rate + 3)
    return lambda: rng.choice(choices) if rng.random() < 0.4 else rng.randint(1, rate // 2)


def streamed(x: Samples, rate: int, origin: int, seed: int) -> list[WindowResult]:
    """``x`` fed in random chunks, the state going through JSON after some of them."""
    rng = random.Random(seed)
    size = chunk_sizes(rng, rate)
    state, got, at = ProsodyState(Role.CUSTOMER, rate, origin_sample=origin), [], 0
    while at < x.size:
        n = size()
        state, results = feed(state, x[at : at + n])
        got += results
        at += n
        assert state.cursor_sample == origin + min(at, x.size)
        if rng.random() < 0.5:
            state = ProsodyState.from_dict(json.loads(json.dumps(state.to_dict())))
    state, results = flush(state)
    return got + results


# ---------------------------------------------------------------- the premise


@pytest.mark.parametrize("rate", RATES)
def test_yin_of_a_frame_depends_only_on_its_own_samples(rate: int) -> None:
    framing, hop = framing_at(rate), rate // 100
    x = np.concatenate([talk(rate)[: 2 * rate], masked(rate)[:rate]]).astype(np.float64)
    starts = np.arange(0, x.size - framing.span + 1, hop, dtype=np.int64)
    f0_all, ap_all = f0_track(x, starts, framing)
    assert np.count_nonzero(~np.isnan(f0_all)) > 50  # the signal has pitch to compare
    rng = np.random.default_rng(rate)
    for _ in range(40):  # any batch, any position of the frame in the batch and in the buffer
        a = int(rng.integers(0, starts.size))
        b = int(rng.integers(a + 1, starts.size + 1))
        shift = int(rng.integers(0, 500))
        f0, ap = f0_track(np.concatenate([np.zeros(shift), x]), starts[a:b] + shift, framing)
        assert np.array_equal(f0, f0_all[a:b], equal_nan=True) and np.array_equal(ap, ap_all[a:b])
    for i in range(0, starts.size, 7):
        alone = x[starts[i] : starts[i] + framing.span]
        f0, ap = f0_track(alone, np.zeros(1, dtype=np.int64), framing)
        assert np.array_equal(f0, f0_all[i : i + 1], equal_nan=True) and ap[0] == ap_all[i]


@pytest.mark.parametrize("rate", RATES)
def test_frames_above_the_floor_but_outside_the_range_are_computed_then_gated(rate: int) -> None:
    window = masked(rate)[: 3 * rate]
    features = frame_features(window, rate)
    level = 10 * np.log10(np.maximum(features["power"], 1e-10) / 32768.0**2)
    outside = (level >= ACTIVE_FLOOR_DBFS) & (level < level.max() - ACTIVE_RANGE_DB)
    assert np.count_nonzero(outside & ~np.isnan(features["f0"])) > 50  # quiet vowel frames with an f0
    m = measure_frames(features)
    assert m == measure_window(window, rate)
    assert m.speech_ms == np.count_nonzero(level >= level.max() - ACTIVE_RANGE_DB) * 10
    assert m.pitch_std_semitones is not None and m.pitch_std_semitones < 0.5  # the quiet 210 Hz vowel is left out


# ---------------------------------------------------------------- identical results for any chunking


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_streamed_windows_equal_whole_window_measures_for_any_chunking(name: str, rate: int) -> None:
    x = SIGNALS[name](rate)
    origin = 1234
    reference = whole_window_reference(x, rate, origin)
    assert len(reference) >= 2 and any(r.measures.active_dbfs is not None for r in reference)
    for seed in range(4):
        assert streamed(x, rate, origin, seed) == reference


def test_a_last_window_shorter_than_a_frame_span_has_no_frames() -> None:
    x = mixed(8000)
    state, _ = feed(ProsodyState(Role.AGENT, 8000), x)
    state, (last,) = flush(state)
    assert (last.start_sample, last.end_sample) == (48_000, x.size)
    assert last.measures == Measures(0, None, None, None) == measure_window(x[48_000:], 8000)
    assert state.frames == b"" and len(state.tail) == 2 * (x.size - 48_000)


# ---------------------------------------------------------------- state


@pytest.mark.parametrize("rate", RATES)
def test_state_stays_under_12_kb_and_keeps_less_than_a_span_of_samples(rate: int) -> None:
    x = np.concatenate([talk(rate), talk(rate)])[: 20 * rate]
    span, hop = framing_at(rate).span, rate // 100
    state, sizes = ProsodyState(Role.AGENT, rate), []
    for at in range(0, x.size, rate // 10):  # 100 ms records, as the worker gets them
        state, _ = feed(state, x[at : at + rate // 10])
        sizes.append(len(json.dumps(state.to_dict())))
        fill = state.window_fill
        assert len(state.frames) == max(0, (fill - span) // hop + 1) * FRAME_FEATURES.itemsize
        assert len(state.tail) < 2 * span
    fullest, _ = feed(ProsodyState(Role.AGENT, rate), x[: 3 * rate - 1])  # the largest state: one sample short
    assert len(fullest.frames) == ((3 * rate - span) // hop + 1) * FRAME_FEATURES.itemsize
    assert max(sizes) <= len(json.dumps(fullest.to_dict())) < 12_000


def test_round_trip_mid_window_gives_the_same_state_and_results() -> None:
    x = talk(16000)
    whole, reference = feed(ProsodyState(Role.AGENT, 16000), x)
    reference += flush(whole)[1]
    for cut in (1, 747, 748, 907, 20_000, 48_000, 50_001):
        state, first = feed(ProsodyState(Role.AGENT, 16000), x[:cut])
        data = json.loads(json.dumps(state.to_dict()))
        assert set(data) == {"role", "sample_rate_hz", "origin_sample", "windows_done", "frames", "tail", "flushed"}
        resumed = ProsodyState.from_dict(data)
        assert resumed == state
        resumed, rest = feed(resumed, x[cut:])
        assert [*first, *rest, *flush(resumed)[1]] == reference


def old_format(role: Role, rate: int, origin: int, x: Samples, cut: int, flushed: bool = False) -> dict[str, object]:
    """The state the previous implementation stored after ``x[:cut]``: the partial window's samples, base64."""
    done = cut // (3 * rate)
    partial = x[done * 3 * rate : cut].astype("<i2").tobytes()
    return {
        "role": role.value,
        "sample_rate_hz": rate,
        "origin_sample": origin,
        "windows_done": done,
        "partial": base64.b64encode(partial).decode("ascii"),
        "flushed": flushed,
    }


@pytest.mark.parametrize("rate", RATES)
def test_an_old_format_state_resumes_as_if_never_stopped(rate: int) -> None:
    x = talk(rate)
    whole, reference = feed(ProsodyState(Role.CUSTOMER, rate, origin_sample=77), x)
    reference += flush(whole)[1]
    for cut in (0, 1, rate // 10, framing_at(rate).span, 3 * rate, 3 * rate + 4321, 8 * rate - 3):
        direct, before = feed(ProsodyState(Role.CUSTOMER, rate, origin_sample=77), x[:cut])
        state = ProsodyState.from_dict(json.loads(json.dumps(old_format(Role.CUSTOMER, rate, 77, x, cut))))
        assert state == direct and state.cursor_sample == 77 + cut
        state, after = feed(state, x[cut:])
        assert [*before, *after, *flush(state)[1]] == reference


def test_an_old_format_flushed_state_stays_flushed() -> None:
    x = talk(8000)
    state = ProsodyState.from_dict(old_format(Role.AGENT, 8000, 0, x, 30_000, flushed=True))
    assert state.flushed and state.cursor_sample == 30_000
    assert flush(state) == (state, [])
    with pytest.raises(IllegalTransitionError, match="AGENT prosody was flushed at sample 30000"):
        feed(state, x[:10])


def test_corrupt_states_are_refused_naming_the_value() -> None:
    good = ProsodyState(Role.AGENT, 8000).to_dict()
    with pytest.raises(InvalidInputError, match="frames of 16 bytes are not whole records"):
        ProsodyState.from_dict({**good, "frames": base64.b64encode(bytes(16)).decode()})
    with pytest.raises(InvalidInputError, match="tail of 750 bytes is not under 375 int16 samples"):
        ProsodyState.from_dict({**good, "tail": base64.b64encode(bytes(750)).decode()})
    with pytest.raises(InvalidInputError, match="tail of 3 bytes"):
        ProsodyState.from_dict({**good, "tail": base64.b64encode(bytes(3)).decode()})
    with pytest.raises(InvalidInputError, match="frames and tail cover 24080 samples, over a window"):
        ProsodyState.from_dict({**good, "frames": base64.b64encode(bytes(301 * 17)).decode()})
    with pytest.raises(InvalidInputError, match="field 'frames' is not base64"):
        ProsodyState.from_dict({**good, "frames": "not base64!"})
    with pytest.raises(InvalidInputError, match="field 'partial' is not base64"):
        ProsodyState.from_dict({**good, "partial": 12})
    old = {**good, "partial": base64.b64encode(bytes(48_000)).decode()}
    with pytest.raises(InvalidInputError, match="partial window of 48000 bytes is not under 24000 int16 samples"):
        ProsodyState.from_dict(old)
