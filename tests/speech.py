"""Scripted two-party conversations from espeak-ng speech, with the true timeline they were built from.

A script lists utterances (role, start second, text); the builder synthesises each text once
(espeak-ng, resampled to 8 kHz), places it on its role's track over a faint noise floor, and
records where the voice really is (samples above about -40 dBFS), so tests can check segments,
metrics and alerts against known answers.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

Samples = npt.NDArray[np.int16]
RATE = 8000
ESPEAK = "/usr/bin/espeak-ng"


@functools.lru_cache(maxsize=64)
def say(text: str, words_per_minute: int = 175) -> Samples:
    """``text`` spoken by espeak-ng, int16 mono at 8 kHz, leading/trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run([ESPEAK, "-s", str(words_per_minute), "-w", str(path), text], check=True, capture_output=True)
        with wave.open(str(path)) as wav:
            rate = wav.getframerate()
            raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    resampled = resample_poly(raw.astype(np.float64), RATE // 50, rate // 50) if rate != RATE else raw
    audio = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
    return audio[int(loud[0]) : int(loud[-1]) + 1]


@dataclass(frozen=True)
class Utterance:
    role: str  # AGENT or CUSTOMER
    start_s: float
    text: str


@dataclass(frozen=True)
class Conversation:
    """The two tracks (int16, 8 kHz, equal length) and where each role's voice truly is (sample ranges)."""

    agent: Samples
    customer: Samples
    truth: dict[str, list[tuple[int, int]]]

    @property
    def seconds(self) -> float:
        return self.agent.size / RATE

    def stereo(self) -> Samples:
        """Interleaved agent/customer samples (channel 0 agent, channel 1 customer)."""
        return np.stack((self.agent, self.customer), axis=1).reshape(-1)


def build(script: list[Utterance], seconds: float, noise_rms: float = 20.0, seed: int = 1) -> Conversation:
    n = int(seconds * RATE)
    rng = np.random.default_rng(seed)
    tracks = {r: rng.normal(0.0, noise_rms, n) for r in ("AGENT", "CUSTOMER")}
    truth: dict[str, list[tuple[int, int]]] = {"AGENT": [], "CUSTOMER": []}
    for u in script:
        voice = say(u.text).astype(np.float64)
        start = int(u.start_s * RATE)
        end = min(n, start + voice.size)
        tracks[u.role][start:end] += voice[: end - start]
        truth[u.role].append((start, end))
    agent, customer = (np.clip(np.round(tracks[r]), -32768, 32767).astype(np.int16) for r in ("AGENT", "CUSTOMER"))
    return Conversation(agent, customer, truth)


def chunks(samples: Samples, sizes: list[int]) -> list[tuple[int, Samples]]:
    """(start sample, block) cutting ``samples`` at the given block sizes, repeated to the end."""
    out, start, i = [], 0, 0
    while start < samples.size:
        size = sizes[i % len(sizes)]
        out.append((start, samples[start : start + size]))
        start += size
        i += 1
    return out
