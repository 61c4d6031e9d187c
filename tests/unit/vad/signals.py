"""Test signals for the VAD tests: espeak-ng speech at 8 kHz, white noise, random chunkings."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

Samples = npt.NDArray[np.int16]
ESPEAK = "/usr/bin/espeak-ng"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank",
    "I would like to check the status of my order please",
)


def synthesize(text: str, path: Path) -> Samples:
    """espeak-ng speech (22050 Hz) resampled to 8 kHz int16."""
    subprocess.run([ESPEAK, "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22050, 1, 2)
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    resampled: npt.NDArray[np.float64] = resample_poly(raw.astype(np.float64), 160, 441)
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def speech_extent(samples: Samples, level: int = 300) -> tuple[int, int]:
    """[first, last + 1) sample whose magnitude exceeds ``level`` (about -40 dBFS): the spoken part."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > level)
    return int(loud[0]), int(loud[-1]) + 1


def noise(seconds: float, rms: float, seed: int, rate: int = 8000) -> Samples:
    """White Gaussian noise of the given RMS (int16 units)."""
    x = np.random.default_rng(seed).normal(0.0, rms, int(seconds * rate))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def random_splits(n: int, seed: int, largest: int = 3000) -> list[int]:
    """Cut points splitting n items into random chunks of 0..largest items (empty chunks included)."""
    rng = np.random.default_rng(seed)
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.integers(0, largest + 1))))
    return cuts
