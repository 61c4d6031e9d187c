"""Test signals for the audio tests: espeak-ng speech, vowel-like harmonics, tones, noise, files."""

from __future__ import annotations

import functools
import io
import itertools
import subprocess
import tempfile
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from scipy import signal

from processors.audio.resample import resample

ESPEAK = "/usr/bin/espeak-ng"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Thank you for calling. Your call is important to us, please stay on the line.",
    "Hello, my account number is four five six seven, and I would like to speak to an agent.",
)

Int16 = npt.NDArray[np.int16]


@functools.cache
def speech(text: str, rate: int) -> Int16:
    """espeak-ng speaking ``text`` (22050 Hz), resampled to ``rate`` Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run([ESPEAK, "-w", str(path), text], check=True, capture_output=True)
        with wave.open(str(path)) as w:
            native = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
            native_rate = w.getframerate()
    return resample(native, native_rate, rate)


def vowel(f0: float, formants: tuple[tuple[float, float], ...], rate: int, seconds: float = 1.0) -> Int16:
    """A vowel-like signal: harmonics of ``f0`` shaped by (centre Hz, bandwidth Hz) formants, slow AM."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    for h in range(1, int(0.45 * rate / f0)):
        gain = sum(1.0 / (1.0 + ((h * f0 - centre) / width) ** 2) for centre, width in formants)
        x += gain * np.sin(2 * np.pi * h * f0 * t + 0.3 * h * h)
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    return np.round(x * 9000 / np.max(np.abs(x))).astype(np.int16)


VOWEL_A = ((700.0, 80.0), (1200.0, 90.0), (2600.0, 120.0))
VOWEL_I = ((300.0, 60.0), (2300.0, 100.0), (3000.0, 150.0))


def tones(freqs: tuple[float, ...], ms: float, rate: int, amplitude: float = 6000.0) -> npt.NDArray[np.float64]:
    """Sum of sines (each of ``amplitude``) lasting ``ms`` ms, as floats."""
    t = np.arange(round(ms * rate / 1000)) / rate
    return sum((amplitude * np.sin(2 * np.pi * f * t) for f in freqs), np.zeros_like(t))


def silence(ms: float, rate: int) -> npt.NDArray[np.float64]:
    return np.zeros(round(ms * rate / 1000))


def to_int16(x: npt.NDArray[np.float64]) -> Int16:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def add_noise(x: npt.NDArray[np.float64], signal_power: float, snr_db: float, seed: int = 0) -> npt.NDArray[np.float64]:
    """White Gaussian noise at ``snr_db`` below ``signal_power`` (mean square)."""
    rng = np.random.default_rng(seed)
    return x + rng.normal(0.0, np.sqrt(signal_power / 10 ** (snr_db / 10)), x.size)


def snr_db(reference: npt.NDArray[np.generic], test: npt.NDArray[np.generic]) -> float:
    ref, out = reference.astype(np.float64), test.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - out) ** 2)))


def best_lag(reference: Int16, test: Int16, max_lag: int) -> int:
    """The delay (samples, 0..max_lag) of ``test`` behind ``reference`` that correlates best."""
    n = min(reference.size, test.size) - max_lag
    scores = signal.correlate(test[: n + max_lag].astype(np.float64), reference[:n].astype(np.float64), "valid")
    return int(np.argmax(scores))


def splits(data_length: int, rng: np.random.Generator, cuts: int) -> list[tuple[int, int]]:
    """Random [start, end) pieces covering 0..data_length, including empty and 1-long pieces."""
    points = sorted([0, data_length, *rng.integers(0, data_length + 1, cuts).tolist()])
    return list(itertools.pairwise(points))


def wav_bytes(samples: Int16, rate: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV file (stdlib wave) of interleaved ``samples``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def encode_file(container: str, codec: str, samples: Int16, rate: int, sample_format: str) -> bytes:
    """Encode (frames, channels) int16 ``samples`` to a ``container`` file with PyAV's ``codec``."""
    frames, channels = samples.shape
    layout = "mono" if channels == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options={"strict": "experimental"})
        stream.format = sample_format
        size = stream.codec_context.frame_size or 1024
        for start in range(0, frames, size):
            block = samples[start : start + size]
            planar = sample_format.endswith("p")
            array = np.ascontiguousarray(block.T if planar else block.reshape(1, -1))
            if sample_format.startswith("flt"):
                array = (array / 32768.0).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(array, format=sample_format, layout=layout)
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()
