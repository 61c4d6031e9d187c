"""Speech-like audio from espeak-ng, synthesised once per text and cached on disk as 8 kHz int16 (.npy)."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from infra.simulate import SimulateError

RATE_HZ = 8000
ESPEAK = "/usr/bin/espeak-ng"
Samples = npt.NDArray[np.int16]


class Voice:
    """espeak-ng text-to-speech with a cache directory (``~/.cache/switchboard/speech`` by default)."""

    def __init__(self, cache_dir: Path, espeak: str = ESPEAK) -> None:
        self.cache_dir = cache_dir
        self.espeak = espeak
        self._memory: dict[tuple[str, str, int], Samples] = {}

    def say(self, text: str, voice: str = "en-us", words_per_minute: int = 170) -> Samples:
        """``text`` as int16 samples at 8 kHz, leading and trailing silence trimmed."""
        key = (text, voice, words_per_minute)
        if key not in self._memory:
            self._memory[key] = self._cached(text, voice, words_per_minute)
        return self._memory[key]

    def _cached(self, text: str, voice: str, words_per_minute: int) -> Samples:
        digest = hashlib.sha256(f"{voice}|{words_per_minute}|{text}".encode()).hexdigest()[:24]
        path = self.cache_dir / f"{digest}.npy"
        if path.exists():
            return np.asarray(np.load(path), dtype=np.int16)
        audio = self._synthesise(text, voice, words_per_minute)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp.npy")
        np.save(partial, audio)
        partial.replace(path)
        return audio

    def _synthesise(self, text: str, voice: str, words_per_minute: int) -> Samples:
        with tempfile.TemporaryDirectory() as tmp:
            wav_path = Path(tmp) / "say.wav"
            argv = [self.espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(wav_path), text]
            try:
                subprocess.run(argv, check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise SimulateError(f"{self.espeak} could not synthesise {text!r}: {exc}") from exc
            with wave.open(str(wav_path)) as wav:
                rate = wav.getframerate()
                raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        divisor = np.gcd(rate, RATE_HZ)
        resampled = resample_poly(raw.astype(np.float64), RATE_HZ // divisor, rate // divisor)
        audio = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
        loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
        if loud.size == 0:
            raise SimulateError(f"espeak-ng produced silence for {text!r}")
        trimmed: Samples = audio[int(loud[0]) : int(loud[-1]) + 1]
        return trimmed
