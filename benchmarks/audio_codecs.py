"""Audio decoding, resampling and tone-detection throughput, side by side with the references, in one run.

Run: .venv/bin/python benchmarks/audio_codecs.py
Input: 60 s of espeak-ng speech per case (espeak-ng is a prerequisite, as for the tests).
Prints a markdown table: time per 60 s of audio (best of 5), the reference's time, ours/reference,
and how many times faster than real time ours runs. "200 ms chunks" rows feed the streaming
classes record by record, as the worker does (the gateway aggregates audio to ~200 ms records).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import g711 as g711_bench  # benchmarks/g711.py: its best-of timer and its audioop import
import numpy as np
import numpy.typing as npt
from scipy import signal

from processors.audio import g711, g722
from processors.audio.resample import StreamResampler, resample
from processors.audio.stream import TrackDecoder
from processors.audio.tones import BeepDetector, ClippingDetector, DtmfDetector, RingbackDetector

SECONDS = 60
Int16 = npt.NDArray[np.int16]
TEXT = "Thank you for calling. Your call is important to us, please stay on the line for the next agent."


@dataclass(frozen=True)
class Case:
    name: str
    ours: Callable[[], object]
    reference: Callable[[], object] | None = None
    reference_name: str = ""


def speech(rate: int) -> Int16:
    """SECONDS of espeak-ng speech (one sentence, looped) at ``rate`` Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(path), TEXT], check=True, capture_output=True)
        with wave.open(str(path)) as w:
            native = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
            native_rate = w.getframerate()
    looped: Int16 = np.resize(resample(native, native_rate, rate), SECONDS * rate)
    return looped


class Streaming(Protocol):
    """A streaming resampler or detector: push blocks, then flush."""

    def push(self, samples: Int16) -> object: ...

    def flush(self) -> object: ...


def blocks(samples: Int16, size: int) -> list[Int16]:
    return [samples[i : i + size] for i in range(0, samples.size, size)]


def records(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def stream(make: Callable[[], Streaming], pieces: list[Int16]) -> Callable[[], None]:
    def run() -> None:
        processor = make()
        for piece in pieces:
            processor.push(piece)
        processor.flush()

    return run


def track(codec: str, rate: int, payloads: list[bytes]) -> Callable[[], None]:
    def run() -> None:
        decoder = TrackDecoder(codec, rate)
        for payload in payloads:
            decoder.decode(payload)
        decoder.finish()

    return run


def cases() -> list[Case]:
    audioop = g711_bench.audioop  # imported there with its DeprecationWarning silenced
    s8, s16, s44 = speech(8000), speech(16000), speech(44100)
    ulaw, alaw, g722_bytes = g711.ulaw_encode(s8), g711.alaw_encode(s8), g722.encode(s16)
    s8_blocks, s44_blocks = blocks(s8, 1600), blocks(s44, 8820)  # 200 ms
    up_2x, down_44 = (lambda: signal.resample_poly(s8, 2, 1)), (lambda: signal.resample_poly(s44, 160, 441))
    return [
        Case("G.711 mu-law decode", lambda: g711.ulaw_decode(ulaw), lambda: audioop.ulaw2lin(ulaw, 2), "audioop"),
        Case("G.711 A-law decode", lambda: g711.alaw_decode(alaw), lambda: audioop.alaw2lin(alaw, 2), "audioop"),
        Case("PCMU TrackDecoder, 200 ms records", track("PCMU", 8000, records(ulaw, 1600))),
        Case("G.722 decode (PyAV), whole", lambda: g722.decode(g722_bytes)),
        Case("G.722 TrackDecoder, 200 ms records", track("G722", 16000, records(g722_bytes, 1600))),
        Case("resample 8k->16k, whole", stream(lambda: StreamResampler(8000, 16000), [s8]), up_2x, "resample_poly"),
        Case(
            "resample 8k->16k, 200 ms chunks",
            stream(lambda: StreamResampler(8000, 16000), s8_blocks),
            up_2x,
            "resample_poly",
        ),
        Case(
            "resample 44.1k->16k, whole", stream(lambda: StreamResampler(44100, 16000), [s44]), down_44, "resample_poly"
        ),
        Case(
            "resample 44.1k->16k, 200 ms chunks",
            stream(lambda: StreamResampler(44100, 16000), s44_blocks),
            down_44,
            "resample_poly",
        ),
        Case("DTMF (Goertzel), 8 kHz, whole", stream(lambda: DtmfDetector(8000), [s8])),
        Case("DTMF (Goertzel), 8 kHz, 200 ms chunks", stream(lambda: DtmfDetector(8000), s8_blocks)),
        Case("beep detector, 8 kHz, 200 ms chunks", stream(lambda: BeepDetector(8000), s8_blocks)),
        Case("ring-back detector, 8 kHz, 200 ms chunks", stream(lambda: RingbackDetector(8000), s8_blocks)),
        Case("clipping detector, 8 kHz, 200 ms chunks", stream(lambda: ClippingDetector(8000), s8_blocks)),
    ]


def main() -> None:
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; {SECONDS} s of audio per case, best of 5\n")
    print("| case | switchboard | reference | ours / reference | x real time |")
    print("|---|---:|---:|---:|---:|")
    for case in cases():
        ours = g711_bench._best(case.ours, repeat=5, number=1)
        row = f"| {case.name} | {ours * 1e3:.2f} ms"
        if case.reference is not None:
            reference = g711_bench._best(case.reference, repeat=5, number=1)
            row += f" | {reference * 1e3:.2f} ms ({case.reference_name}) | {ours / reference:.2f}x"
        else:
            row += " | - | -"
        print(f"{row} | {SECONDS / ours:,.0f}x |")


if __name__ == "__main__":
    main()
