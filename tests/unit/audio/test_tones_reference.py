"""Tone detectors against a slow, straightforward per-window reference, and state from earlier versions.

The reference measures every window on its own (textbook Goertzel recurrence, one FFT per window,
int64 energies), decides in plain Python and runs each decision rule over the whole signal at once.
The detectors measure whole chunks at once (matrix product against a rounded cos/sin basis, batched
FFTs), so their numbers differ from the reference's by ~1e-9 (relative). A decision could only
differ when its quantity lies that close to its threshold, so every comparison the reference makes
goes through ``clear``, which fails the test if the two sides lie within DELTA (1e-6, relative) of
each other: equal events are then not luck, and a corpus that came that close would be reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from processors.audio.tones import (
    DTMF_COLS_HZ,
    DTMF_ROWS_HZ,
    EUROPE,
    FULL_SCALE,
    KEYPAD,
    NORTH_AMERICA,
    Beep,
    BeepDetector,
    BeepParams,
    DtmfDetector,
    DtmfDigit,
    DtmfParams,
    Ring,
    RingbackDetector,
    RingParams,
    ToneBank,
    exact_scale_bits,
    goertzel,
    samples_for,
)
from tests.unit.audio.signals import SENTENCES, add_noise, silence, speech, splits, to_int16, tones

RATE = 8000
DELTA = 1e-6
Detector = DtmfDetector | BeepDetector | RingbackDetector
DTMF, BEEP, RING = DtmfParams(), BeepParams(), RingParams()  # the detectors' defaults


def clear(value: float, threshold: float) -> bool:
    """``value >= threshold``, failing when the two lie within DELTA (relative) of each other."""
    assert abs(value - threshold) > DELTA * max(abs(value), abs(threshold)), f"{value} is at threshold {threshold}"
    return value >= threshold


def frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Every whole window of ``x``: window k is x[k * hop : k * hop + size]."""
    return sliding_window_view(x, size)[::hop] if x.size >= size else np.zeros((0, size), x.dtype)


def goertzel_reference(windows: np.ndarray, freqs_hz: tuple[float, ...], rate: int) -> np.ndarray:
    """Textbook Goertzel: s[n] = x[n] + 2 cos(w) s[n-1] - s[n-2], power s1^2 + s2^2 - 2 cos(w) s1 s2."""
    coef = 2.0 * np.cos(2.0 * np.pi * np.asarray(freqs_hz) / rate)
    s1 = s2 = np.zeros((windows.shape[0], len(freqs_hz)))
    for column in windows.T.astype(np.float64):
        s1, s2 = column[:, None] + coef * s1 - s2, s1
    powers: np.ndarray = s1 * s1 + s2 * s2 - coef * s1 * s2
    return powers


def energy_reference(window: np.ndarray) -> float:
    return float(np.sum(window.astype(np.int64) ** 2))


# ---------------------------------------------------------------- reference decisions


def dtmf_labels(x: np.ndarray, p: DtmfParams) -> list[str | None]:
    size, hop = samples_for(p.window_ms, RATE), samples_for(p.hop_ms, RATE)
    windows = frames(x, size, hop)
    min_energy = size * (FULL_SCALE * 10 ** (p.min_level_dbfs / 20)) ** 2
    ratio, normal, reverse = (
        10 ** (p.peak_ratio_db / 10),
        10 ** (p.max_normal_twist_db / 10),
        10 ** (p.max_reverse_twist_db / 10),
    )
    labels: list[str | None] = []
    for window, power in zip(windows, goertzel_reference(windows, DTMF_ROWS_HZ + DTMF_COLS_HZ, RATE), strict=True):
        total = energy_reference(window)
        low, high = sorted(power[:4].tolist()), sorted(power[4:].tolist())
        row, col = low[-1], high[-1]
        ok = (
            clear(total, min_energy)
            and clear(2.0 * (row + col), p.tone_fraction * size * total)
            and clear(row, ratio * low[-2])
            and clear(col, ratio * high[-2])
            and clear(row * normal, col)
            and clear(col * reverse, row)
        )
        labels.append(KEYPAD[int(np.argmax(power[:4]))][int(np.argmax(power[4:]))] if ok else None)
    return labels


def dtmf_reference(x: np.ndarray, p: DtmfParams = DTMF) -> list[DtmfDigit]:
    """A digit starts after ``min_windows`` equal labels and ends after ``end_windows`` windows without it."""
    size, hop = samples_for(p.window_ms, RATE), samples_for(p.hop_ms, RATE)
    labels = dtmf_labels(x, p)
    digits, active, run_start, last_hit, misses = [], None, 0, 0, 0
    for k, label in enumerate(labels):
        if k == 0 or label != labels[k - 1]:
            run_start = k
        if active is not None:
            last_hit, misses = (k, 0) if label == active[0] else (last_hit, misses + 1)
            if misses >= p.end_windows:
                digits.append(DtmfDigit(active[0], active[1] * hop, last_hit * hop + size))
                active = None
        if active is None and label is not None and k - run_start + 1 >= p.min_windows:
            active, last_hit, misses = (label, run_start), k, 0
    if active is not None:
        digits.append(DtmfDigit(active[0], active[1] * hop, last_hit * hop + size))
    return digits


def beep_frequencies(x: np.ndarray, p: BeepParams) -> list[float | None]:
    size, hop = samples_for(p.window_ms, RATE), samples_for(p.hop_ms, RATE)
    taper, bins = np.hanning(size), np.fft.rfftfreq(size, 1.0 / RATE)
    band = [k for k in range(2, bins.size - 2) if p.min_hz <= bins[k] <= p.max_hz]
    min_power = size / 2.0 * float(np.sum(taper**2)) * (FULL_SCALE * 10 ** (p.min_level_dbfs / 20)) ** 2
    found: list[float | None] = []
    for window in frames(x, size, hop):
        spectrum = np.abs(np.fft.rfft(window.astype(np.float64) * taper)) ** 2
        total = float(spectrum.sum())
        k = max(band, key=lambda b: (spectrum[b], -b))  # the first of equal peaks
        if not (clear(total, min_power) and clear(float(spectrum[k - 2 : k + 3].sum()), p.tonality * total)):
            found.append(None)
            continue
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-300)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
        found.append(float(bins[k] + shift * (bins[1] - bins[0])))
    return found


def beep_reference(x: np.ndarray, p: BeepParams = BEEP) -> list[Beep]:
    """Runs of tonal windows within ``max_drift_hz`` of the run's first one, kept when long enough."""
    size, hop = samples_for(p.window_ms, RATE), samples_for(p.hop_ms, RATE)
    runs: list[tuple[int, list[float]]] = []  # (first window, frequencies)
    for k, freq in enumerate(beep_frequencies(x, p)):
        if freq is None:
            runs.append((k, []))
        elif runs and runs[-1][1] and clear(p.max_drift_hz, abs(freq - runs[-1][1][0])):
            runs[-1][1].append(freq)
        else:
            runs.append((k, [freq]))
    beeps = []
    for start, freqs in runs:
        if len(freqs) * hop >= samples_for(p.min_ms, RATE):
            mean = sum(freqs) / len(freqs)
            assert abs(mean * 10 % 1 - 0.5) > DELTA, f"mean {mean} Hz is at a rounding boundary"
            begin = start * hop + (size - hop) // 2
            beeps.append(Beep(begin, begin + len(freqs) * hop, round(mean, 1)))
    return beeps


def ring_labels(x: np.ndarray, p: RingParams) -> list[str | None]:
    size = samples_for(p.block_ms, RATE)
    freqs = tuple(sorted({f for c in p.cadences for f in c.freqs_hz}))
    blocks = frames(x, size, size)
    min_energy = size * (FULL_SCALE * 10 ** (p.min_level_dbfs / 20)) ** 2
    labels: list[str | None] = []
    for block, power in zip(blocks, goertzel_reference(blocks, freqs, RATE), strict=True):
        total = energy_reference(block)
        share = {f: 2.0 * s / (size * max(total, 1.0)) for f, s in zip(freqs, power.tolist(), strict=True)}
        loud = clear(total, min_energy)
        held = [
            c.name
            for c in p.cadences
            if loud
            and clear(sum(share[f] for f in c.freqs_hz), p.tone_fraction)
            and clear(min(share[f] for f in c.freqs_hz), p.min_share)
            and not any(clear(share[f], p.min_share) for f in freqs if f not in c.freqs_hz)
        ]
        labels.append(held[0] if len(held) == 1 else None)
    return labels


def ring_reference(x: np.ndarray, p: RingParams = RING) -> list[Ring]:
    """Bursts of equal block labels whose length is within ``tolerance`` of the cadence's on time."""
    size = samples_for(p.block_ms, RATE)
    labels = ring_labels(x, p)
    rings: list[Ring] = []
    start = 0
    for k in range(1, len(labels) + 1):
        if k < len(labels) and labels[k] == labels[start]:
            continue
        cadence = next((c for c in p.cadences if c.name == labels[start]), None)
        on = samples_for(cadence.on_ms, RATE) if cadence else 0
        if cadence and abs((k - start) * size - on) <= p.tolerance * on:
            before = [r for r in rings if r.cadence == cadence.name]
            off = start * size - before[-1].end_sample if before else None
            rings.append(Ring(cadence.name, len(before) + 1, start * size, k * size, off))
        start = k
    return rings


# ---------------------------------------------------------------- corpus


def key(digit: str) -> tuple[float, float]:
    row = next(r for r, keys in enumerate(KEYPAD) if digit in keys)
    return DTMF_ROWS_HZ[row], DTMF_COLS_HZ[KEYPAD[row].index(digit)]


def corpus() -> np.ndarray:
    """~40 s at 8 kHz: digits, beeps, ring-back, speech (also overdriven), noise, clipping, a sweep."""
    parts: list[np.ndarray] = [silence(300, RATE)]
    for n, digit in enumerate("123A456B789C*0#D"):
        amplitude = 6000.0 * 10 ** (-(n % 4) * 6 / 20)
        parts += [tones(key(digit), 60 + 10 * (n % 3), RATE, amplitude), silence(60, RATE)]
    for on_ms in (15, 20, 25, 40):
        parts += [tones(key("5"), on_ms, RATE, 3000), silence(60, RATE)]
    row, col = key("6")
    for row_db, col_db in ((0, 6), (3, 0), (0, 11), (7, 0)):
        pair = tones((row,), 80, RATE, 3000 * 10 ** (row_db / 20)) + tones((col,), 80, RATE, 3000 * 10 ** (col_db / 20))
        parts += [pair, silence(50, RATE)]
    for freq, ms, amplitude in ((450.0, 200, 6000), (800.0, 130, 6000), (800.0, 170, 3000), (1000.0, 400, 8000)):
        parts += [tones((freq,), ms, RATE, amplitude), silence(150, RATE)]
    for freq in (1400.0, 1950.0, 2500.0, 300.0):
        parts += [tones((freq,), 300, RATE, 4000), silence(150, RATE)]
    for cadence in (NORTH_AMERICA, EUROPE, NORTH_AMERICA):
        parts += [tones(cadence.freqs_hz, cadence.on_ms, RATE, 4000), silence(1000, RATE)] * 2
    for freqs, ms in (((440.0, 480.0), 600), ((350.0, 440.0), 2000), ((440.0,), 2000), ((425.0, 480.0), 1000)):
        parts += [tones(freqs, ms, RATE, 4000), silence(300, RATE)]  # not rings: short, dial tone, mixtures
    parts += [speech(SENTENCES[0], RATE).astype(np.float64), speech(SENTENCES[2], RATE) * 3.0]
    parts += [np.random.default_rng(1).normal(0.0, 3000.0, RATE), silence(200, RATE)]
    parts += [np.tile([32767.0] * 4 + [-32768.0] * 4, 300), tones((1000.0,), 300, RATE, 60000.0)]
    t = np.arange(RATE) / RATE
    parts += [6000 * np.sin(2 * np.pi * (500 * t + 400 * t * t)), silence(300, RATE)]
    x = np.concatenate(parts)
    return to_int16(add_noise(x, 6000.0**2, 45.0, seed=3))


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return corpus()


def streamed(make: Callable[[], Detector], x: np.ndarray, seed: int, resume: bool) -> list[Any]:
    """Events of a detector fed random pieces of ``x`` (with ``resume``: through JSON state each time)."""
    detector = make()
    events: list[Any] = []
    for a, b in splits(x.size, np.random.default_rng(seed), 300):
        events += detector.push(x[a:b])
        if resume:
            detector = type(detector).from_state(RATE, json.loads(json.dumps(detector.to_state())))
    return events + detector.flush()


# ---------------------------------------------------------------- equivalence


def test_the_corpus_has_events_of_every_kind(signal: np.ndarray) -> None:
    digits = [d.digit for d in dtmf_reference(signal)]
    assert "".join(digits) == "123A456B789C*0#D" + "55" + "66"
    beeps = [round(b.frequency_hz) for b in beep_reference(signal)]
    # the beeps (800 Hz for 130 ms is too short), each ring-back burst (440 + 480 Hz share one main lobe,
    # 425 Hz), 440 Hz alone and the overdriven 1 kHz tone; not the 2.5 kHz and 300 Hz tones, the short NA
    # burst, the dial tone or 425 + 480 Hz
    assert beeps == [450, 800, 1000, 1400, 1950, 452, 452, 425, 425, 452, 452, 452, 440, 1000]
    assert [(r.cadence, r.number) for r in ring_reference(signal)] == [
        ("NA", 1),
        ("NA", 2),
        ("EU", 1),
        ("EU", 2),
        ("NA", 3),
        ("NA", 4),
    ]
    assert np.count_nonzero(np.abs(signal.astype(np.int32)) >= 32700) > 2000  # clipped stretches


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("resume", [False, True])
def test_dtmf_matches_the_per_window_goertzel_reference(signal: np.ndarray, seed: int, resume: bool) -> None:
    assert streamed(lambda: DtmfDetector(RATE), signal, seed, resume) == dtmf_reference(signal)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("resume", [False, True])
def test_beeps_match_the_per_window_fft_reference(signal: np.ndarray, seed: int, resume: bool) -> None:
    assert streamed(lambda: BeepDetector(RATE), signal, seed, resume) == beep_reference(signal)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("resume", [False, True])
def test_rings_match_the_per_block_goertzel_reference(signal: np.ndarray, seed: int, resume: bool) -> None:
    assert streamed(lambda: RingbackDetector(RATE), signal, seed, resume) == ring_reference(signal)


def test_window_decisions_match_the_reference_window_by_window(signal: np.ndarray) -> None:
    dtmf, beep, ring = DtmfDetector(RATE), BeepDetector(RATE), RingbackDetector(RATE)
    assert dtmf.classify(frames(signal, 205, 80)) == dtmf_labels(signal, DTMF)
    assert ring.classify(frames(signal, 800, 800)) == ring_labels(signal, RING)
    expected = beep_frequencies(signal, BEEP)
    found = beep.frequencies(frames(signal, 256, 80))
    assert [f is None for f in found] == [f is None for f in expected]
    assert [f for f in found if f is not None] == pytest.approx([f for f in expected if f is not None], abs=1e-9)


def test_a_window_gets_identical_numbers_in_any_batch(signal: np.ndarray) -> None:
    windows = frames(signal, 256, 80)[:600]
    beep = BeepDetector(RATE)
    whole = beep.frequencies(windows)
    assert [beep.frequencies(windows[k : k + 1])[0] for k in range(600)] == whole  # bit for bit
    bank = ToneBank(205, DTMF_ROWS_HZ + DTMF_COLS_HZ, RATE)
    x = frames(signal, 205, 80)[:600].astype(np.float64)
    powers = bank.powers(x)
    for a, b in ((0, 1), (5, 6), (7, 9), (10, 27), (100, 357), (599, 600)):
        assert np.array_equal(bank.powers(np.ascontiguousarray(x[a:b])), powers[a:b])


@pytest.mark.parametrize(("size", "rate"), [(205, 8000), (800, 8000), (410, 16000), (4800, 48000)])
def test_tone_bank_sums_are_exact(size: int, rate: int) -> None:
    bank = ToneBank(size, (425.0, 697.0, 1633.0), rate)
    unit = 2 ** exact_scale_bits(size)
    basis = [[int(v * unit) for v in column] for column in bank.basis.T.tolist()]  # integers: v * unit is exact
    assert [[v / unit for v in column] for column in basis] == bank.basis.T.tolist()
    rng = np.random.default_rng(size)
    worst = np.where(bank.basis[:, 0] < 0, 32767, -32768)  # the largest products, all of one sign
    x = np.vstack([worst, rng.integers(-32768, 32768, (5, size))])
    parts = (x.astype(np.float64) @ bank.basis) * unit
    exact = [[sum(a * b for a, b in zip(row, column, strict=True)) for column in basis] for row in x.tolist()]
    assert parts.tolist() == exact  # Python ints: the float64 products and sums lost nothing


def test_goertzel_powers_match_the_recurrence() -> None:
    x = to_int16(add_noise(tones((697.0, 1336.0), 500, RATE), 1e6, 10.0))
    windows = frames(x, 205, 80)
    freqs = DTMF_ROWS_HZ + DTMF_COLS_HZ
    expected = goertzel_reference(windows, freqs, RATE)
    assert goertzel(windows, freqs, RATE) == pytest.approx(expected, rel=1e-7, abs=1e-3 * expected.max())


# ---------------------------------------------------------------- state written by the row-by-row version


def key_presses() -> np.ndarray:
    return to_int16(
        np.concatenate([silence(100, RATE), *(x for d in "19" for x in (tones(key(d), 100, RATE), silence(100, RATE)))])
    )


DTMF_STATE_AT_1200 = {  # DtmfDetector(8000) after key_presses()[:1200], captured from the lfilter version
    "windows": {
        "next": 13,
        "buf": "sgq5Co8Bhv3HBhcXnB7FEX305dgH0hflRgWIHXogjRFrAPT6wgHUCG4DvvAY3n/cBPJOEygrTCrJEuf1Z+Zo6kn4jADr+4rxCPCK"
        "/+sY/ingI5QHYOY51TrdkvV9C4MRSQlDAIQCWA9+GfwSaPoY3vXR89/J/+IcziXQGKkDPve1+Y0CnQPj9grlvd447kMNcChxLRoZ"
        "vPn44yHjyPERAAQCjvnf85X8ChILJcEkDg1B697Um9de7zUKxBZOEdoEGQDbB9ASHBJ3/2bkEtRF3Nf5QRpFKd8ffgiQ9WnyHvu1"
        "Acj7puwI4yjsMQfvI4IuwR7Z/q7jE92T6pT9gQa8AYP5jvuUC54eeiN5EQ7xqdaW0+roDgccGvcY6wq6/0ABFAsgDx8DNOsy2Hba"
        "FfT4FZ4qFyZxDv31cOwe89X9+/4=",
    },
    "cand": "1",
    "cand_start": 10,
    "cand_len": 3,
    "active": "1",
    "active_start": 10,
    "last_hit": 12,
    "misses": 0,
}

BEEP_STATE_AT_2000 = {  # BeepDetector(8000) after a_beep()[:2000], captured from the per-window FFT version
    "windows": {
        "next": 22,
        "buf": "AAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn"
        "6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAf"
        "GRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kA"
        "ABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfp"
        "wODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8Z"
        "FgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAAGRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4OfpAAAZFkAfGRYAAOfpwODn6QAA"
        "GRZAHxkWAADn6cDg5+kAABkWQB8ZFgAA5+nA4Ofp",
    },
    "run_start": 9,
    "run_count": 13,
    "run_first": 999.8180751293895,
    "run_sum": 12999.818063231582,
}


def a_beep() -> np.ndarray:
    return to_int16(np.concatenate([silence(100, RATE), tones((1000.0,), 400, RATE, 8000), silence(200, RATE)]))


def two_rings() -> np.ndarray:
    on = tones(NORTH_AMERICA.freqs_hz, 2000, RATE, 4000)
    return to_int16(np.concatenate([silence(500, RATE), on, silence(4000, RATE), on, silence(3000, RATE)]))


RING_STATE_AT_60000 = {  # RingbackDetector(8000) after two_rings()[:60000], from the per-block lfilter version
    "windows": {"next": 75, "buf": ""},
    "burst": {"cadence": "NA", "start": 65, "blocks": 10, "counts": {"NA": 1}, "last_end": {"NA": 20000}},
}


def test_dtmf_state_from_the_previous_version_resumes() -> None:
    x = key_presses()
    detector = DtmfDetector.from_state(RATE, DTMF_STATE_AT_1200)
    assert detector.push(x[1200:]) + detector.flush() == [DtmfDigit("1", 800, 1645), DtmfDigit("9", 2400, 3245)]
    fresh = DtmfDetector(RATE)
    assert fresh.push(x[:1200]) == []
    assert fresh.to_state() == DTMF_STATE_AT_1200


def test_beep_state_from_the_previous_version_resumes() -> None:
    x = a_beep()
    detector = BeepDetector.from_state(RATE, BEEP_STATE_AT_2000)
    assert detector.push(x[2000:]) + detector.flush() == [Beep(808, 4008, 1000.0)]
    fresh = BeepDetector(RATE)
    assert fresh.push(x[:2000]) == []
    state = fresh.to_state()
    assert {k: v for k, v in state.items() if k not in ("run_first", "run_sum")} == {
        k: v for k, v in BEEP_STATE_AT_2000.items() if k not in ("run_first", "run_sum")
    }
    # FFT and log may round differently on another CPU: the running sums agree to far below 0.1 Hz
    assert (state["run_first"], state["run_sum"]) == pytest.approx((999.8180751293895, 12999.818063231582), rel=1e-12)


def test_ring_state_from_the_previous_version_resumes() -> None:
    x = two_rings()
    detector = RingbackDetector.from_state(RATE, RING_STATE_AT_60000)
    assert detector.push(x[60000:]) + detector.flush() == [Ring("NA", 2, 52000, 68000, 32000)]
    assert detector.rings == {"NA": 2}
    fresh = RingbackDetector(RATE)
    assert fresh.push(x[:60000]) == [Ring("NA", 1, 4000, 20000, None)]
    assert fresh.to_state() == RING_STATE_AT_60000
