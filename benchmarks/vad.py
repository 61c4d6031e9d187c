"""VAD speed and quality: WebRTC VAD and Silero (ONNX) called directly vs Switchboard's TrackVad stage.

Run: /tmp/venv/bin/python benchmarks/vad.py  (needs /usr/bin/espeak-ng; about a minute on 2 cores)

(a) Speed, 8 kHz mono: the bare detector loop (webrtcvad.Vad.is_speech on prepared 30 ms frames;
    the Silero ONNX session fed prepared windows) vs TrackVad (engine + partial-frame buffer +
    segmenter + 1 s activity meter) fed 20 ms and 200 ms chunks. Best of 3; x real time.
(b) Quality: espeak-ng sentences (several voices) with random pauses make a ~60 s track at 8 kHz,
    normalised to -26 dBFS active speech level. Ground truth per 10 ms frame comes from the clean
    signal: frame RMS above -50 dBFS, gaps under 200 ms (inter-word pauses, stop closures) filled.
    Noise (white, pink, 6-talker babble) is added at 20/10/5/0 dB SNR (active speech level vs noise
    RMS), then the mix goes through a G.711 mu-law round trip. Each detector setting runs through
    TrackVad with the default SegmenterParams (min speech 250 ms, min silence 300 ms, hangover
    100 ms) - "smoothed" - and, for reference, raw per-frame decisions at the same threshold.
    Frame-level precision / recall / F1 at 10 ms (a 10 ms frame counts as detected if its centre
    sample is inside a segment / a voiced engine frame).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
import webrtcvad
from scipy.signal import resample_poly

from processors.audio import g711
from processors.audio.segmenter import SegmenterParams, TrackVad
from processors.audio.vad import VadConfig, make_engine, shared_silero_model, silero_model_path

RATE = 8000
GT_FRAME = 80  # 10 ms
Samples = npt.NDArray[np.int16]
Mask = npt.NDArray[np.bool_]
SENTENCES = (
    "Thank you for calling customer support, my name is Alex",
    "I would like to check the status of my order please",
    "Can you confirm the last four digits of the card on the account",
    "The delivery was scheduled for Tuesday but nothing arrived",
    "Let me put you on a brief hold while I look into that",
    "I have refunded the shipping fee to your original payment method",
    "Is there anything else I can help you with today",
    "No that is all, thank you very much for your help",
    "Your reference number is seven four two nine one",
    "We are sorry for the inconvenience this has caused",
    "Please stay on the line to answer a short survey about this call",
    "Could you spell your surname for me please",
)
VOICES = ("en-us", "en-gb", "en-us+f2", "en-gb+m3", "en-us+f4", "en-gb-scotland")
SILERO_16K = VadConfig("silero", sample_rate=16000)
SETTINGS: tuple[tuple[VadConfig, float], ...] = (
    *((VadConfig("webrtc", mode), 0.5) for mode in range(4)),
    *((VadConfig("silero"), threshold) for threshold in (0.3, 0.5, 0.7)),
)


def espeak(text: str, voice: str, speed: int, directory: Path) -> Samples:
    """espeak-ng speech at 8 kHz int16 (synthesised at 22050 Hz)."""
    path = directory / "speech.wav"
    subprocess.run(["/usr/bin/espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    with wave.open(str(path)) as wav:
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float64)
    return to_int16(resample_poly(raw, 160, 441))


def to_int16(x: npt.NDArray[np.float64]) -> Samples:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def frame_rms_db(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    frames = x[: x.size // GT_FRAME * GT_FRAME].reshape(-1, GT_FRAME)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-3) / 32768.0), dtype=np.float64)


def fill_gaps(mask: Mask, frames: int) -> Mask:
    """Set runs of False shorter than ``frames`` that lie between two True frames."""
    out = mask.copy()
    on = np.flatnonzero(mask)
    for a, b in zip(on[:-1].tolist(), on[1:].tolist(), strict=True):
        if 1 < b - a <= frames:
            out[a:b] = True
    return out


@dataclass
class Track:
    clean: npt.NDArray[np.float64]  # speech at -26 dBFS active level
    truth: Mask  # per 10 ms frame
    speech_power: float


def build_track(directory: Path, rng: np.random.Generator) -> Track:
    parts = [np.zeros(int(rng.uniform(0.3, 1.0) * RATE))]
    for i, text in enumerate(SENTENCES):
        parts.append(espeak(text, VOICES[i % len(VOICES)], int(rng.integers(150, 185)), directory).astype(np.float64))
        parts.append(np.zeros(int(rng.uniform(0.4, 2.5) * RATE)))
    clean = np.concatenate(parts)
    db = frame_rms_db(clean)
    truth = fill_gaps(db > -50.0, 20)
    active = clean[: truth.size * GT_FRAME].reshape(-1, GT_FRAME)[truth]
    gain = 10 ** (-26 / 20) * 32768 / np.sqrt(np.mean(active * active))
    clean *= gain
    return Track(clean, truth, float(np.mean((active * gain) ** 2)))


def pink(n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    spectrum = np.fft.rfft(rng.normal(size=n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    return np.asarray(np.fft.irfft(spectrum, n), dtype=np.float64)


def babble(n: int, directory: Path, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Six talkers reading the sentences back to back, each from a random offset, summed."""
    out = np.zeros(n)
    for talker in range(6):
        voice = VOICES[talker]
        speech = np.concatenate([espeak(t, voice, 175, directory).astype(np.float64) for t in SENTENCES[talker::2]])
        stream = np.tile(speech, n // speech.size + 2)
        start = int(rng.integers(0, speech.size))
        out += stream[start : start + n]
    return out


def mix(track: Track, noise: npt.NDArray[np.float64] | None, snr_db: float) -> Samples:
    """Speech + noise at ``snr_db``, then a G.711 mu-law round trip."""
    signal = track.clean.copy()
    if noise is not None:
        noise_power = float(np.mean(noise * noise))
        signal += noise * np.sqrt(track.speech_power / noise_power / 10 ** (snr_db / 10))
    return g711.ulaw_decode(g711.ulaw_encode(to_int16(signal)))


def detected_frames(samples: Samples, config: VadConfig, threshold: float) -> tuple[Mask, Mask]:
    """(smoothed, raw) detections per 10 ms frame via TrackVad."""
    track = TrackVad(make_engine(config), SegmenterParams(threshold=threshold), activity_ms=None)
    segments = track.push(samples).segments + track.flush().segments
    centres = np.arange(samples.size // GT_FRAME) * GT_FRAME + GT_FRAME // 2
    smoothed = np.zeros(centres.size, dtype=bool)
    for s in segments:
        smoothed |= (centres >= s.start_sample) & (centres < s.end_sample)
    engine = make_engine(config)
    whole = samples.size // engine.frame_samples * engine.frame_samples
    voiced = engine.process(samples[:whole]) >= threshold
    index = np.minimum(centres // engine.frame_samples, voiced.size - 1)
    return smoothed, voiced[index]


def prf(detected: Mask, truth: Mask) -> tuple[float, float, float]:
    n = min(detected.size, truth.size)
    d, t = detected[:n], truth[:n]
    tp = float(np.sum(d & t))
    precision = tp / max(float(np.sum(d)), 1.0)
    recall = tp / max(float(np.sum(t)), 1.0)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-9)


def label(config: VadConfig, threshold: float) -> str:
    return f"webrtc mode {config.mode}" if config.engine == "webrtc" else f"silero t={threshold}"


def quality() -> None:
    rng = np.random.default_rng(2026)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        track = build_track(directory, rng)
        n = track.clean.size
        noises = {"white": rng.normal(size=n), "pink": pink(n, rng), "babble": babble(n, directory, rng)}
    print(f"\n## Quality: {n / RATE:.1f} s track, {track.truth.mean():.0%} speech frames (10 ms), G.711 mu-law\n")
    conditions = [("clean", None, np.inf)] + [
        (name, noise, snr) for name, noise in noises.items() for snr in (20.0, 10.0, 5.0, 0.0)
    ]
    results: dict[tuple[str, str], tuple[tuple[float, float, float], tuple[float, float, float]]] = {}
    for name, noise, snr in conditions:
        samples = mix(track, noise, snr)
        for config, threshold in SETTINGS:
            smoothed, raw = detected_frames(samples, config, threshold)
            results[(label(config, threshold), f"{name} {snr:g}")] = (prf(smoothed, track.truth), prf(raw, track.truth))
    columns = [f"{name} {snr:g}" for name, _, snr in conditions]
    for which, title in ((0, "smoothed segments (TrackVad): P / R / F1"), (1, "raw frame decisions: F1")):
        print(f"### {title}\n")
        print("| setting | " + " | ".join(c.replace(" inf", "") for c in columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for config, threshold in SETTINGS:
            row = label(config, threshold)
            cells = [results[(row, c)][which] for c in columns]
            text = [f"{p:.2f}/{r:.2f}/{f:.2f}" if which == 0 else f"{f:.2f}" for p, r, f in cells]
            print(f"| {row} | " + " | ".join(text) + " |")
        print()


# ---------------------------------------------------------------- speed


def best(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_track(config: VadConfig, samples: Samples, chunk: int) -> None:
    track = TrackVad(make_engine(config), SegmenterParams())
    for at in range(0, samples.size, chunk):
        track.push(samples[at : at + chunk])
    track.flush()


def webrtc_direct(samples: Samples) -> Callable[[], object]:
    frames = [samples[i : i + 240].tobytes() for i in range(0, samples.size - 239, 240)]

    def run() -> object:
        detector = webrtcvad.Vad(2)
        return [detector.is_speech(f, RATE) for f in frames]

    return run


def silero_direct(samples: Samples, rate: int) -> Callable[[], object]:
    window, context = (256, 32) if rate == 8000 else (512, 64)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(silero_model_path()), options, providers=["CPUExecutionProvider"])
    x = samples.astype(np.float32) / 32768.0
    inputs = [x[i - context : i + window].reshape(1, -1) for i in range(context, x.size - window, window)]
    sr = np.array(rate, dtype=np.int64)

    def run() -> object:
        state = np.zeros((2, 1, 128), dtype=np.float32)
        for item in inputs:
            _, state = session.run(None, {"input": item, "state": state, "sr": sr})
        return state

    return run


def speed(samples: Samples) -> None:
    seconds = samples.size / RATE
    wide = to_int16(resample_poly(samples.astype(np.float64), 2, 1))  # the same audio at 16 kHz
    print(f"\n## Speed: {seconds:.0f} s of audio, best of 5, x real time (higher is faster)\n")
    print("| case | time | x real time | TrackVad / direct |")
    print("|---|---|---|---|")
    cases = [
        ("webrtcvad mode 2, 30 ms frames, direct", webrtc_direct(samples), True),
        ("TrackVad webrtc:2, 20 ms chunks", lambda: run_track(VadConfig(), samples, 160), False),
        ("TrackVad webrtc:2, 200 ms chunks", lambda: run_track(VadConfig(), samples, 1600), False),
        ("silero 8 kHz, 256-sample windows, direct", silero_direct(samples, 8000), True),
        ("TrackVad silero 8 kHz, 20 ms chunks", lambda: run_track(VadConfig("silero"), samples, 160), False),
        ("TrackVad silero 8 kHz, 200 ms chunks", lambda: run_track(VadConfig("silero"), samples, 1600), False),
        ("silero 16 kHz, 512-sample windows, direct", silero_direct(wide, 16000), True),
        ("TrackVad silero 16 kHz, 200 ms chunks", lambda: run_track(SILERO_16K, wide, 3200), False),
    ]
    baseline = 0.0  # the latest direct case; TrackVad rows compare against it
    for name, fn, direct in cases:
        elapsed = best(fn)
        baseline = elapsed if direct else baseline
        ratio = "" if direct else f"{elapsed / baseline:.2f}x"
        print(f"| {name} | {elapsed * 1e3:.1f} ms | {seconds / elapsed:,.0f}x | {ratio} |")


def main() -> None:
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}")
    shared_silero_model()  # load once, outside the timings
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        speech = np.concatenate([espeak(t, "en-us", 170, Path(tmp)) for t in SENTENCES])
    reps = int(np.ceil(60 * RATE / speech.size))
    clean = np.tile(speech.astype(np.float64), reps)[: 60 * RATE]
    speed(to_int16(clean + rng.normal(0, 100, clean.size)))
    quality()


if __name__ == "__main__":
    main()
