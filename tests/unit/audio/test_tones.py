"""Tone detectors: DTMF, beeps, ring-back, clipping — known answers, chunk invariance, state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from processors.audio import g711
from processors.audio.errors import AudioStateError
from processors.audio.tones import (
    DTMF_COLS_HZ,
    DTMF_ROWS_HZ,
    EUROPE,
    KEYPAD,
    NORTH_AMERICA,
    Beep,
    BeepDetector,
    ClipInterval,
    ClippingDetector,
    DtmfDetector,
    DtmfDigit,
    Ring,
    RingbackDetector,
)
from tests.unit.audio.signals import SENTENCES, add_noise, silence, speech, splits, to_int16, tones

RATE = 8000
ALL_DIGITS = "123A456B789C*0#D"


def feed(
    make: Callable[[], Any], x: np.ndarray, pieces: list[tuple[int, int]] | None = None, resume: bool = False
) -> list[Any]:
    """Run a detector over ``x`` (whole, or in ``pieces``; with ``resume``, through JSON state each time)."""
    detector = make()
    events = []
    for a, b in pieces or [(0, x.size)]:
        events += detector.push(x[a:b])
        if resume:
            detector = type(detector).from_state(RATE, json.loads(json.dumps(detector.to_state())))
    return events + detector.flush()


def assert_chunk_invariant(make: Callable[[], Any], x: np.ndarray, expected: list[Any]) -> None:
    for seed in range(3):
        pieces = splits(x.size, np.random.default_rng(seed), 40)
        assert feed(make, x, pieces) == expected
        assert feed(make, x, pieces, resume=True) == expected


# ---------------------------------------------------------------- DTMF


def key_tones(digit: str) -> tuple[float, float]:
    row = next(r for r, keys in enumerate(KEYPAD) if digit in keys)
    return DTMF_ROWS_HZ[row], DTMF_COLS_HZ[KEYPAD[row].index(digit)]


def dtmf(
    digits: str, on_ms: float = 60, off_ms: float = 60, amplitude: float = 6000.0
) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Key presses after 100 ms of silence; returns the float signal and (digit, start, end) truth."""
    parts, truth, position = [silence(100, RATE)], [], round(0.1 * RATE)
    for digit in digits:
        press = tones(key_tones(digit), on_ms, RATE, amplitude)
        truth.append((digit, position, position + press.size))
        parts += [press, silence(off_ms, RATE)]
        position += press.size + round(off_ms * RATE / 1000)
    return np.concatenate(parts), truth


def dtmf_detector() -> DtmfDetector:
    return DtmfDetector(RATE)


def assert_digits(found: list[DtmfDigit], truth: list[tuple[str, int, int]]) -> None:
    """Exactly the pressed digits, each placed within one 10 ms hop of the truth at both ends."""
    assert "".join(d.digit for d in found) == "".join(t[0] for t in truth)
    for digit, (_, start, end) in zip(found, truth, strict=True):
        assert abs(digit.start_sample - start) <= 80
        assert abs(digit.end_sample - end) <= 80


@pytest.mark.parametrize("snr_db", [None, 20.0, 10.0])
@pytest.mark.parametrize("law", [None, "ulaw", "alaw"])
def test_all_16_digits_in_noise_and_after_g711(snr_db: float | None, law: str | None) -> None:
    clean, truth = dtmf(ALL_DIGITS)
    x = clean if snr_db is None else add_noise(clean, 6000.0**2, snr_db)  # two tones: power 2 * A^2 / 2
    samples = to_int16(x)
    if law == "ulaw":
        samples = g711.ulaw_decode(g711.ulaw_encode(samples))
    elif law == "alaw":
        samples = g711.alaw_decode(g711.alaw_encode(samples))
    found = feed(dtmf_detector, samples)
    assert_digits(found, truth)
    assert_chunk_invariant(dtmf_detector, samples, found)


def test_clean_digits_are_placed_exactly_on_the_window_grid() -> None:
    x, _ = dtmf("19#", on_ms=100, off_ms=100)
    # A digit spans the windows (205 samples, every 80) that heard it. Tone "1" is [800, 1600):
    # the window at 720 holds 125 tone samples (61%, too few), the one at 1440 holds 160 (78%, enough).
    assert feed(dtmf_detector, to_int16(x)) == [
        DtmfDigit("1", 800, 1645),
        DtmfDigit("9", 2400, 3245),
        DtmfDigit("#", 4000, 4845),
    ]


@pytest.mark.parametrize(("on_ms", "count"), [(15, 0), (20, 0), (40, 5), (50, 5)])
def test_minimum_duration(on_ms: float, count: int) -> None:
    x, _ = dtmf("55555", on_ms=on_ms, off_ms=60)
    assert [d.digit for d in feed(dtmf_detector, to_int16(add_noise(x, 6000.0**2, 20.0)))] == ["5"] * count


def test_a_10_ms_dropout_does_not_split_a_digit_and_a_40_ms_pause_does() -> None:
    dropout = np.concatenate([tones(key_tones("7"), 80, RATE), silence(10, RATE), tones(key_tones("7"), 80, RATE)])
    pause = np.concatenate([tones(key_tones("7"), 80, RATE), silence(40, RATE), tones(key_tones("7"), 80, RATE)])
    assert [d.digit for d in feed(dtmf_detector, to_int16(dropout))] == ["7"]
    assert [d.digit for d in feed(dtmf_detector, to_int16(pause))] == ["7", "7"]


def test_digits_back_to_back_without_a_gap_are_both_reported() -> None:
    x = np.concatenate([silence(50, RATE), tones(key_tones("4"), 100, RATE), tones(key_tones("8"), 100, RATE)])
    assert [d.digit for d in feed(dtmf_detector, to_int16(x))] == ["4", "8"]


@pytest.mark.parametrize(("row_db", "col_db", "accepted"), [(0, 6, True), (3, 0, True), (0, 11, False), (7, 0, False)])
def test_twist_limits(row_db: float, col_db: float, accepted: bool) -> None:
    row, col = key_tones("6")
    x = tones((row,), 80, RATE, 3000 * 10 ** (row_db / 20)) + tones((col,), 80, RATE, 3000 * 10 ** (col_db / 20))
    found = feed(dtmf_detector, to_int16(np.concatenate([silence(50, RATE), x, silence(50, RATE)])))
    assert [d.digit for d in found] == (["6"] if accepted else [])


@pytest.mark.parametrize(
    "freqs", [(f,) for f in DTMF_ROWS_HZ + DTMF_COLS_HZ] + [(1000.0,), (697.0, 770.0), (1209.0, 1336.0)]
)
def test_single_tones_and_same_group_pairs_are_not_digits(freqs: tuple[float, ...]) -> None:
    assert feed(dtmf_detector, to_int16(tones(freqs, 500, RATE))) == []


@pytest.mark.parametrize("sentence", SENTENCES)
@pytest.mark.parametrize("gain", [1.0, 3.0])
def test_speech_has_no_digits(sentence: str, gain: float) -> None:
    assert feed(dtmf_detector, to_int16(speech(sentence, RATE) * gain)) == []


def test_digit_still_sounding_at_the_end_is_flushed() -> None:
    x = to_int16(np.concatenate([silence(100, RATE), tones(key_tones("0"), 200, RATE)]))
    detector = DtmfDetector(RATE)
    assert detector.push(x) == []
    assert detector.flush() == [DtmfDigit("0", 800, 2365)]  # the last whole window is [2160, 2365)


# ---------------------------------------------------------------- beeps


def beep_detector() -> BeepDetector:
    return BeepDetector(RATE)


def test_voicemail_greeting_then_beep() -> None:
    greeting = speech(SENTENCES[1], RATE).astype(np.float64)
    x = to_int16(np.concatenate([greeting, silence(300, RATE), tones((1000.0,), 400, RATE, 8000), silence(500, RATE)]))
    found = feed(beep_detector, x)
    start = greeting.size + 2400
    assert len(found) == 1
    assert abs(found[0].start_sample - start) <= 40  # within 5 ms
    assert abs(found[0].end_sample - (start + 3200)) <= 40
    assert found[0].frequency_hz == pytest.approx(1000.0, abs=5.0)
    assert_chunk_invariant(beep_detector, x, found)


@pytest.mark.parametrize(
    ("freq", "ms", "found"),
    [
        (800.0, 100, False),
        (800.0, 130, False),
        (800.0, 170, True),
        (450.0, 200, True),
        (1950.0, 300, True),
        (300.0, 500, False),
        (2500.0, 500, False),
    ],
)
def test_beep_band_and_minimum_length(freq: float, ms: float, found: bool) -> None:
    x = to_int16(np.concatenate([silence(100, RATE), tones((freq,), ms, RATE), silence(100, RATE)]))
    beeps = feed(beep_detector, x)
    assert len(beeps) == int(found)
    if found:
        assert beeps[0].frequency_hz == pytest.approx(freq, abs=5.0)
        assert abs((beeps[0].end_sample - beeps[0].start_sample) - round(ms * RATE / 1000)) <= 80


def test_beep_in_noise_is_found() -> None:
    x = np.concatenate([silence(100, RATE), tones((1400.0,), 250, RATE, 4000), silence(100, RATE)])
    found = feed(beep_detector, to_int16(add_noise(x, 4000.0**2 / 2, 20.0)))
    assert [(round(b.frequency_hz), abs(b.start_sample - 800) <= 40) for b in found] == [(1400, True)]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_speech_has_no_beeps(sentence: str) -> None:
    assert feed(beep_detector, speech(sentence, RATE)) == []


def test_noise_and_two_tone_chords_have_no_beeps() -> None:
    noise = to_int16(np.random.default_rng(0).normal(0, 3000, 3 * RATE))
    assert feed(beep_detector, noise) == []
    assert feed(beep_detector, to_int16(tones((600.0, 1500.0), 500, RATE))) == []


def test_a_sliding_tone_is_not_steady() -> None:
    t = np.arange(RATE) / RATE
    sweep = 6000 * np.sin(2 * np.pi * (500 * t + 400 * t * t))  # 500 -> 1300 Hz in 1 s
    assert feed(beep_detector, to_int16(sweep)) == []


# ---------------------------------------------------------------- ring-back


def ringback(cadence: Any, rings: int, snr_db: float | None = 20.0) -> np.ndarray:
    parts = [silence(500, RATE)]
    for n in range(rings):
        parts += [
            tones(cadence.freqs_hz, cadence.on_ms, RATE, 4000),
            silence(cadence.off_ms if n < rings - 1 else 3000, RATE),
        ]
    x = np.concatenate(parts)
    power = len(cadence.freqs_hz) * 4000.0**2 / 2
    return to_int16(x if snr_db is None else add_noise(x, power, snr_db))


def ring_detector() -> RingbackDetector:
    return RingbackDetector(RATE)


def test_north_american_rings_are_counted_exactly() -> None:
    x = ringback(NORTH_AMERICA, 3)
    found = feed(ring_detector, x)
    assert found == [
        Ring("NA", 1, 4000, 20000, None),
        Ring("NA", 2, 52000, 68000, 32000),
        Ring("NA", 3, 100000, 116000, 32000),
    ]
    assert_chunk_invariant(ring_detector, x, found)


def test_european_rings_are_counted_exactly() -> None:
    x = ringback(EUROPE, 4)
    found = feed(ring_detector, x)
    assert [(r.cadence, r.number, r.start_sample, r.end_sample) for r in found] == [
        ("EU", n + 1, 4000 + n * 40000, 12000 + n * 40000) for n in range(4)
    ]
    assert [r.off_samples for r in found] == [None, 32000, 32000, 32000]
    assert_chunk_invariant(ring_detector, x, found)


def test_ring_count_is_kept_in_the_detector() -> None:
    detector = RingbackDetector(RATE)
    detector.push(ringback(EUROPE, 2))
    detector.flush()
    assert detector.rings == {"EU": 2}


def test_rings_then_answer_with_speech() -> None:
    x = np.concatenate([ringback(NORTH_AMERICA, 2)[:-16000], speech(SENTENCES[2], RATE)])
    assert [(r.cadence, r.number) for r in feed(ring_detector, x)] == [("NA", 1), ("NA", 2)]


@pytest.mark.parametrize(
    "x",
    [
        tones((440.0, 480.0), 10_000, RATE, 4000),  # continuous: not a cadence
        tones((440.0, 480.0), 600, RATE, 4000),  # too short for NA
        tones((425.0,), 2000, RATE, 4000),  # too long for EU
        tones((440.0,), 2000, RATE, 4000),  # one NA tone only
        tones((350.0, 440.0), 2000, RATE, 4000),  # dial tone
        tones((480.0, 620.0), 2000, RATE, 4000),  # busy tone frequencies
    ],
    ids=["continuous", "short", "long-eu", "440-only", "dial-tone", "busy"],
)
def test_other_tones_are_not_rings(x: np.ndarray) -> None:
    assert feed(ring_detector, to_int16(np.concatenate([silence(300, RATE), x, silence(300, RATE)]))) == []


def test_speech_has_no_rings() -> None:
    assert feed(ring_detector, np.concatenate([speech(s, RATE) for s in SENTENCES])) == []


# ---------------------------------------------------------------- clipping


def clip_detector() -> ClippingDetector:
    return ClippingDetector(RATE)


def clipped_signal() -> np.ndarray:
    x = to_int16(tones((300.0,), 2500, RATE, 20_000))  # loud but never near full scale
    x[100:105] = 32767  # 5 clipped
    x[200:202] = -32768  # a 2-sample run: too short
    x[7990:8010] = -32500  # 20 clipped, across the boundary of the first interval: 10 + 10
    x[15000:15003] = 32124  # 3: mu-law's largest code counts as full scale
    x[16500:16540:2] = 32767  # isolated peaks: none
    x[19998:20000] = 32767  # 2 at the very end: too short
    return x


def test_clipped_samples_per_interval_are_exact() -> None:
    found = feed(clip_detector, clipped_signal())
    assert found == [ClipInterval(0, 8000, 15), ClipInterval(8000, 16000, 13), ClipInterval(16000, 20000, 0)]
    assert [c.ratio for c in found] == [15 / 8000, 13 / 8000, 0.0]
    assert_chunk_invariant(clip_detector, clipped_signal(), found)


def test_interval_waits_for_a_run_that_could_still_qualify() -> None:
    x = np.zeros(8000, np.int16)
    x[-2:] = 32767  # 2 samples at the interval's end: clipped only if the run goes on
    detector = ClippingDetector(RATE)
    assert detector.push(x) == []
    assert detector.push(np.array([32767, 0], np.int16)) == [ClipInterval(0, 8000, 2)]
    assert detector.flush() == [ClipInterval(8000, 8002, 1)]


def test_fully_clipped_square_wave() -> None:
    x = np.tile(np.array([32767] * 4 + [-32768] * 4, np.int16), 2000)
    assert feed(clip_detector, x) == [ClipInterval(0, 8000, 8000), ClipInterval(8000, 16000, 8000)]


# ---------------------------------------------------------------- state and inputs


def test_states_are_plain_json() -> None:
    x = to_int16(dtmf("12")[0])
    for detector in (DtmfDetector(RATE), BeepDetector(RATE), RingbackDetector(RATE), ClippingDetector(RATE)):
        detector.push(x[:1234])
        state = detector.to_state()
        assert json.loads(json.dumps(state)) == state


@pytest.mark.parametrize(
    ("cls", "state", "message"),
    [
        (DtmfDetector, {"windows": {"next": 0, "buf": ""}, "cand": "X"}, "'cand' must be a keypad character"),
        (DtmfDetector, {"windows": []}, "must be an object"),
        (
            BeepDetector,
            {"windows": {"next": 0, "buf": ""}, "run_count": 0, "run_first": "x"},
            "'run_first' must be a number",
        ),
        (
            RingbackDetector,
            {"windows": {"next": 0, "buf": ""}, "burst": {"cadence": "UK", "counts": {}, "last_end": {}}},
            "unknown cadence 'UK'",
        ),
        (ClippingDetector, {"position": "0"}, "'position' must be an int"),
    ],
)
def test_bad_states_are_refused(cls: Any, state: dict[str, object], message: str) -> None:
    with pytest.raises(AudioStateError, match=message):
        cls.from_state(RATE, state)


@pytest.mark.parametrize("make", [dtmf_detector, beep_detector, ring_detector, clip_detector])
def test_only_mono_int16_is_accepted(make: Callable[[], Any]) -> None:
    with pytest.raises(AudioStateError, match="1-D int16"):
        make().push(np.zeros(100, np.float32))


def test_detectors_scale_to_16_khz() -> None:
    rate = 16000
    x, _ = dtmf("0#")
    wide = np.repeat(to_int16(x), 2)  # 8 kHz -> 16 kHz by sample repetition (tones stay put)
    assert [d.digit for d in DtmfDetector(rate).push(wide) + DtmfDetector(rate).flush()] == ["0", "#"]
    beep = to_int16(np.concatenate([silence(100, rate), tones((1000.0,), 300, rate), silence(100, rate)]))
    detector = BeepDetector(rate)
    found = detector.push(beep) + detector.flush()
    assert [(round(b.frequency_hz), abs(b.start_sample - 1600) <= 80) for b in found] == [(1000, True)]
    assert isinstance(found[0], Beep)
