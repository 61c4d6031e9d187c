"""StreamResampler: exact chunk invariance, frequency response, agreement with scipy.signal.resample_poly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import signal

from processors.audio.errors import AudioStateError
from processors.audio.resample import StreamResampler, design, ratio, resample, to_int16
from tests.unit.audio.signals import SENTENCES, speech, splits

PAIRS = [(8000, 16000), (44100, 16000), (16000, 8000), (22050, 16000), (48000, 16000), (8000, 48000)]


def noise(rate: int, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 6000, int(rate * seconds)).clip(-32768, 32767).astype(np.int16)


def streamed(x: np.ndarray, from_hz: int, to_hz: int, pieces: list[tuple[int, int]]) -> np.ndarray:
    resampler = StreamResampler(from_hz, to_hz)
    return np.concatenate([*(resampler.push(x[a:b]) for a, b in pieces), resampler.flush()])


def whole(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    return streamed(x, from_hz, to_hz, [(0, x.size)])


@pytest.mark.parametrize(("from_hz", "to_hz"), PAIRS)
@pytest.mark.parametrize("seed", range(3))
def test_any_split_gives_exactly_the_same_samples(from_hz: int, to_hz: int, seed: int) -> None:
    x = noise(from_hz, seed=seed)
    reference = whole(x, from_hz, to_hz)
    pieces = splits(x.size, np.random.default_rng(seed), 50)
    split = streamed(x, from_hz, to_hz, pieces)
    assert split.dtype == np.float64
    assert np.array_equal(split, reference)  # exact, not approximate
    assert np.array_equal(to_int16(split), to_int16(reference))


@pytest.mark.parametrize(("from_hz", "to_hz"), [(8000, 16000), (44100, 16000)])
def test_tiny_chunks_give_exactly_the_same_samples(from_hz: int, to_hz: int) -> None:
    x = noise(from_hz, seconds=0.1)
    assert np.array_equal(streamed(x, from_hz, to_hz, [(i, i + 1) for i in range(x.size)]), whole(x, from_hz, to_hz))


@pytest.mark.parametrize(("from_hz", "to_hz"), PAIRS)
def test_resuming_from_json_state_gives_exactly_the_same_samples(from_hz: int, to_hz: int) -> None:
    x = noise(from_hz, seed=5)
    resampler = StreamResampler(from_hz, to_hz)
    out = []
    for a, b in splits(x.size, np.random.default_rng(9), 12):
        out.append(resampler.push(x[a:b]))
        resampler = StreamResampler.from_state(json.loads(json.dumps(resampler.to_state())))
    out.append(resampler.flush())
    assert np.array_equal(np.concatenate(out), whole(x, from_hz, to_hz))


@pytest.mark.parametrize(("from_hz", "to_hz"), PAIRS)
@pytest.mark.parametrize("n", [0, 1, 2, 3, 1000, 4411])
def test_output_length_is_ceil_of_the_rate_ratio(from_hz: int, to_hz: int, n: int) -> None:
    assert whole(noise(from_hz)[:n], from_hz, to_hz).size == math.ceil(n * to_hz / from_hz)


@pytest.mark.parametrize(("from_hz", "to_hz"), PAIRS)
def test_matches_scipy_resample_poly_with_the_same_filter(from_hz: int, to_hz: int) -> None:
    """Same sums as resample_poly over the whole signal, edges included."""
    x = noise(from_hz, seed=2)
    up, down = ratio(from_hz, to_hz)
    taps = design(up, down).taps
    reference = signal.resample_poly(x, up, down, window=taps / up)
    ours = whole(x, from_hz, to_hz)
    assert ours.size == reference.size
    if up & (up - 1) == 0:  # taps / up * up is exact for powers of two: bit-identical
        assert np.array_equal(ours, reference)
    assert np.max(np.abs(ours - reference)) < 1e-6


def test_agrees_with_scipy_default_filter_on_speech_in_the_passband() -> None:
    """Against resample_poly's own Kaiser filter (flat to ~7.5 kHz; ours to 6.8 kHz): below 6 kHz,
    where both are flat, the outputs agree to better than -50 dB away from the edges."""
    x = speech(SENTENCES[0], 22050)
    lowpass = signal.butter(8, 6000, fs=16000, output="sos")
    ours = signal.sosfiltfilt(lowpass, whole(x, 22050, 16000))
    reference = signal.sosfiltfilt(lowpass, signal.resample_poly(x.astype(np.float64), 320, 441))
    inner = slice(800, ours.size - 800)
    error = np.sqrt(np.mean((ours[inner] - reference[inner]) ** 2) / np.mean(reference[inner] ** 2))
    assert 20 * np.log10(error) < -50


def amplitude(y: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of the ``freq`` component of ``y`` (Hann-windowed DFT bin, exact frequency)."""
    t = np.arange(y.size) / rate
    w = np.hanning(y.size)
    return float(2 * abs(np.sum(y * w * np.exp(-2j * np.pi * freq * t))) / w.sum())


def tone(freq: float, rate: int, amplitude_: float = 10_000.0) -> np.ndarray:
    t = np.arange(rate) / rate
    return np.round(amplitude_ * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize(("from_hz", "to_hz"), PAIRS)
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.85])
def test_passband_tone_keeps_its_amplitude_within_0_1_db(from_hz: int, to_hz: int, fraction: float) -> None:
    freq = fraction * min(from_hz, to_hz) / 2
    x = tone(freq, from_hz)
    y = whole(x, from_hz, to_hz)[to_hz // 4 : 3 * to_hz // 4]
    reference = amplitude(x[from_hz // 4 : 3 * from_hz // 4].astype(np.float64), freq, from_hz)
    assert abs(20 * np.log10(amplitude(y, freq, to_hz) / reference)) < 0.1


@pytest.mark.parametrize(("from_hz", "to_hz"), [(44100, 16000), (16000, 8000), (48000, 16000), (22050, 16000)])
@pytest.mark.parametrize("fraction", [1.0, 1.05, 1.3, 1.9])
def test_tone_above_the_new_nyquist_is_attenuated_60_db(from_hz: int, to_hz: int, fraction: float) -> None:
    freq = fraction * to_hz / 2
    if freq >= from_hz / 2:
        freq = 0.99 * from_hz / 2
    y = whole(tone(freq + 7.0, from_hz), from_hz, to_hz)[to_hz // 4 : 3 * to_hz // 4]  # +7 Hz: off the grid
    rms_in = 10_000 / np.sqrt(2)
    assert 20 * np.log10(np.sqrt(np.mean(y**2)) / rms_in) <= -60


@pytest.mark.parametrize(("from_hz", "to_hz"), [(8000, 16000), (8000, 48000), (16000, 48000)])
def test_upsampling_images_are_attenuated_60_db(from_hz: int, to_hz: int) -> None:
    y = whole(tone(1000.0, from_hz), from_hz, to_hz)[to_hz // 4 : 3 * to_hz // 4]
    assert amplitude(y, 1000.0, to_hz) == pytest.approx(10_000, rel=0.01)
    assert 20 * np.log10(amplitude(y, from_hz - 1000.0, to_hz) / 10_000) <= -60


def test_equal_rates_are_the_identity() -> None:
    x = noise(16000)
    resampler = StreamResampler(16000, 16000)
    assert np.array_equal(resampler.push(x[:100]), x[:100].astype(np.float64))
    assert np.array_equal(resampler.push(x[100:]), x[100:].astype(np.float64))
    assert resampler.flush().size == 0
    assert np.array_equal(resample(x, 16000, 16000), x)


def test_resample_returns_rounded_int16() -> None:
    x = tone(440.0, 8000)
    y = resample(x, 8000, 16000)
    assert y.dtype == np.int16
    assert np.array_equal(y, to_int16(whole(x, 8000, 16000)))
    assert np.max(np.abs(y[::2][100:-100].astype(np.int32) - x[100:-100])) <= 4  # even outputs fall on inputs


def test_to_int16_rounds_half_to_even_and_clips() -> None:
    assert to_int16(np.array([0.5, 1.5, -0.5, 40000.0, -40000.0, 2.4999])).tolist() == [0, 2, 0, 32767, -32768, 2]


def test_push_after_flush_is_refused() -> None:
    resampler = StreamResampler(8000, 16000)
    resampler.flush()
    with pytest.raises(AudioStateError, match="8000 Hz -> 16000 Hz was flushed"):
        resampler.push(np.zeros(10, np.int16))


@pytest.mark.parametrize("bad", [np.zeros(10, np.float32), np.zeros((10, 2), np.int16), np.zeros(10, np.int32)])
def test_only_mono_int16_is_accepted(bad: np.ndarray) -> None:
    with pytest.raises(AudioStateError, match="1-D int16"):
        StreamResampler(8000, 16000).push(bad)


@pytest.mark.parametrize(("from_hz", "to_hz"), [(0, 16000), (8000, -1)])
def test_non_positive_rates_are_refused(from_hz: int, to_hz: int) -> None:
    with pytest.raises(AudioStateError, match="sample rates must be positive"):
        StreamResampler(from_hz, to_hz)


def test_bad_states_are_refused() -> None:
    resampler = StreamResampler(8000, 16000)
    resampler.push(noise(8000)[:1000])
    state = resampler.to_state()
    with pytest.raises(AudioStateError, match="'inputs' must be an int"):
        StreamResampler.from_state({**state, "inputs": "1000"})
    with pytest.raises(AudioStateError, match="too short"):
        StreamResampler.from_state({**state, "history": ""})
    with pytest.raises(AudioStateError, match="'finished' must be a bool"):
        StreamResampler.from_state({**state, "finished": None})
