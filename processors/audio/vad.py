"""Voice activity detection engines behind one interface: WebRTC VAD and Silero VAD (ONNX).

An engine instance belongs to ONE track and carries that track's detector state; ``state()``
returns it as a JSON-able dict and ``restore()`` puts it back (a worker restart builds a fresh
engine from the configuration and restores the table's state into it). Engines see whole frames of
``frame_samples`` int16 mono samples at ``sample_rate`` Hz and return one speech probability per
frame; smoothing into segments is the segmenter's job (processors/audio/segmenter.py).

Resume behaviour:

* **Silero** state is explicit: the recurrent state (2, 1, 128) float32 and the last ``context``
  samples of the previous window (int16). ``restore`` reproduces an uninterrupted run exactly.
  The ONNX ``InferenceSession`` is stateless and shared by every track of the process
  (``shared_silero_model``); it runs with 1 intra-op and 1 inter-op thread so that many tracks on
  a few cores do not oversubscribe the CPU (a 32 ms window is far too small to gain from threads)
  and so that results are deterministic.
  Model file: ``silero_vad.onnx`` from the package's data dir (float32, opset 16, what the package
  itself loads for ONNX): one graph for 8 and 16 kHz with inputs ``input`` (1, context + window),
  ``state`` (2, 1, 128) and ``sr`` (int64). The other ONNX files there are 16 kHz only
  (``silero_vad_half.onnx`` has no ``sr`` input and its probabilities differ from this model's by up
  to 0.7 on a test sentence; ``silero_vad_16k_op15.onnx``), so they cannot serve 8 kHz telephony.
* **WebRTC** keeps adaptive noise/speech models and hangover counters inside its C object, which
  cannot be read or written. ``state()`` therefore holds only the configuration and ``restore``
  starts a fresh detector: decisions right after a restart may differ from an uninterrupted run
  until the fresh detector's adaptation catches up (tests/unit/vad/test_engines.py measures it).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime
import webrtcvad

from processors.audio.errors import AudioError

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
JsonDict = dict[str, Any]

WEBRTC_RATES_HZ = (8000, 16000, 32000, 48000)
WEBRTC_FRAME_MS = (10, 20, 30)
WEBRTC_MODES = (0, 1, 2, 3)
SILERO_WINDOW_SAMPLES = {8000: 256, 16000: 512}  # 32 ms at either rate
SILERO_CONTEXT_SAMPLES = {8000: 32, 16000: 64}  # tail of the previous window prepended to each window
SILERO_STATE_SHAPE = (2, 1, 128)
SILERO_MODEL_FILE = "silero_vad.onnx"  # opset 16, float32, 8 and 16 kHz (the package's default ONNX model)
_SILERO_INPUTS = {"input", "state", "sr"}


class VadError(AudioError):
    """Bad engine configuration, frame shape or restored state; the message names the value."""


class VadEngine(Protocol):
    """Per-track detector: frames of int16 samples in, one speech probability per frame out."""

    @property
    def name(self) -> str:
        """Detector and setting, e.g. ``webrtcvad:2`` or ``silero:v6``."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate of the input, Hz."""
        ...

    @property
    def frame_samples(self) -> int:
        """Fixed frame size, samples at ``sample_rate``."""
        ...

    @property
    def graded(self) -> bool:
        """True if probabilities are graded (threshold matters), False for 0/1 decisions."""
        ...

    def process(self, frames: Int16Array) -> Float32Array:
        """k * frame_samples consecutive samples -> k per-frame speech probabilities in [0, 1]."""
        ...

    def state(self) -> JsonDict:
        """The track's detector state as a JSON-able dict."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a ``state()`` taken earlier (same configuration)."""
        ...


def as_frames(samples: Int16Array, frame_samples: int) -> Int16Array:
    """Check 1-D int16 of a whole number of frames; return it shaped (frames, frame_samples)."""
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise VadError(f"VAD input must be 1-D int16 mono, got {samples.dtype} with shape {samples.shape}")
    if samples.size % frame_samples:
        raise VadError(f"VAD input of {samples.size} samples is not a whole number of {frame_samples}-sample frames")
    return samples.reshape(-1, frame_samples)


def _expect(state: Mapping[str, Any], key: str, value: object) -> None:
    if state.get(key) != value:
        raise VadError(f"cannot restore VAD state: {key}={state.get(key)!r}, this engine has {key}={value!r}")


# ---------------------------------------------------------------- WebRTC


class _WebRtcDetector(Protocol):
    def is_speech(self, buf: bytes, sample_rate: int) -> bool: ...


def _new_webrtc(mode: int) -> _WebRtcDetector:
    detector: _WebRtcDetector = webrtcvad.Vad(mode)
    return detector


class WebRtcVad:
    """WebRTC VAD (webrtcvad-wheels): 0/1 decisions per 10/20/30 ms frame; mode 0 (lenient) - 3 (strict)."""

    graded = False

    def __init__(self, mode: int = 2, sample_rate: int = 8000, frame_ms: int = 30) -> None:
        if mode not in WEBRTC_MODES:
            raise VadError(f"webrtcvad mode must be one of {WEBRTC_MODES}, got {mode!r}")
        if sample_rate not in WEBRTC_RATES_HZ:
            raise VadError(f"webrtcvad sample rate must be one of {WEBRTC_RATES_HZ} Hz, got {sample_rate!r}")
        if frame_ms not in WEBRTC_FRAME_MS:
            raise VadError(f"webrtcvad frame must be one of {WEBRTC_FRAME_MS} ms, got {frame_ms!r}")
        self.mode = mode
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self._detector = _new_webrtc(mode)

    @property
    def name(self) -> str:
        return f"webrtcvad:{self.mode}"

    def process(self, frames: Int16Array) -> Float32Array:
        blocks = as_frames(frames, self.frame_samples)
        decisions = [self._detector.is_speech(block.tobytes(), self.sample_rate) for block in blocks]
        return np.asarray(decisions, dtype=np.float32).reshape(len(blocks))

    def state(self) -> JsonDict:
        """Only the configuration: the C detector's adaptive state cannot be serialised."""
        return {"engine": "webrtcvad", "mode": self.mode, "sample_rate": self.sample_rate, "frame_ms": self.frame_ms}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Check the configuration and start a fresh detector (see the module doc)."""
        for key, value in self.state().items():
            _expect(state, key, value)
        self._detector = _new_webrtc(self.mode)


# ---------------------------------------------------------------- Silero


def silero_model_path(file_name: str = SILERO_MODEL_FILE) -> Path:
    """Path of an ONNX model shipped in the silero-vad package, found without importing it (it imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VadError("the silero-vad package is not installed (needed for its ONNX model)")
    path = Path(spec.submodule_search_locations[0]) / "data" / file_name
    if not path.is_file():
        raise VadError(f"silero-vad model file not found: {path}")
    return path


def silero_version() -> str:
    """Model generation from the installed silero-vad distribution's major version, e.g. ``v6``."""
    return "v" + importlib.metadata.version("silero-vad").split(".")[0]


class SileroModel:
    """The stateless ONNX session of Silero VAD; share one per process, keep per-track state outside."""

    def __init__(self, path: Path, version: str) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors (Fail, InvalidGraph, ...)
            raise VadError(f"cannot load Silero ONNX model {path}: {exc}") from exc
        inputs = {str(i.name) for i in self._session.get_inputs()}
        if inputs != _SILERO_INPUTS:
            raise VadError(f"Silero model {path} has inputs {sorted(inputs)}, expected {sorted(_SILERO_INPUTS)}")
        self.version = version

    def run(self, window: Float32Array, state: Float32Array, sample_rate: int) -> tuple[float, Float32Array]:
        """One step: window (1, context + window samples) in [-1, 1] -> (probability, next state)."""
        feeds = {"input": window, "state": state, "sr": np.array(sample_rate, dtype=np.int64)}
        output, next_state = self._session.run(None, feeds)
        return float(output[0, 0]), np.asarray(next_state, dtype=np.float32)


@functools.cache
def shared_silero_model() -> SileroModel:
    """The process-wide Silero session, loaded on first use (never at import time)."""
    return SileroModel(silero_model_path(), silero_version())


class SileroVad:
    """Silero VAD through onnxruntime: graded probabilities per 32 ms window (256 @ 8 kHz, 512 @ 16 kHz)."""

    graded = True

    def __init__(self, model: SileroModel, sample_rate: int = 8000) -> None:
        if sample_rate not in SILERO_WINDOW_SAMPLES:
            raise VadError(f"Silero sample rate must be one of {tuple(SILERO_WINDOW_SAMPLES)} Hz, got {sample_rate!r}")
        self._model = model
        self.sample_rate = sample_rate
        self.frame_samples = SILERO_WINDOW_SAMPLES[sample_rate]
        self._context_samples = SILERO_CONTEXT_SAMPLES[sample_rate]
        self._state = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(self._context_samples, dtype=np.int16)

    @property
    def name(self) -> str:
        return f"silero:{self._model.version}"

    def process(self, frames: Int16Array) -> Float32Array:
        count = len(as_frames(frames, self.frame_samples))
        # window i = the context (last samples of window i-1) + frame i: consecutive slices of one array
        signal = np.concatenate((self._context, frames)).astype(np.float32) / np.float32(32768.0)
        size = self._context_samples + self.frame_samples
        out = np.empty(count, dtype=np.float32)
        for i in range(count):
            window = signal[i * self.frame_samples : i * self.frame_samples + size].reshape(1, size)
            out[i], self._state = self._model.run(window, self._state, self.sample_rate)
        if count:
            self._context = frames[-self._context_samples :].copy()
        return out

    def state(self) -> JsonDict:
        """Recurrent state (float32, exact as floats) and context samples (int16) as lists."""
        return {
            "engine": "silero",
            "sample_rate": self.sample_rate,
            "state": [float(v) for v in self._state.ravel()],
            "context": [int(v) for v in self._context],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        _expect(state, "engine", "silero")
        _expect(state, "sample_rate", self.sample_rate)
        recurrent = np.asarray(state.get("state"), dtype=np.float32)
        context = np.asarray(state.get("context"), dtype=np.int16)
        if recurrent.size != int(np.prod(SILERO_STATE_SHAPE)) or context.shape != (self._context_samples,):
            raise VadError(
                f"cannot restore Silero state: {recurrent.size} state values and {context.size} context samples, "
                f"expected {int(np.prod(SILERO_STATE_SHAPE))} and {self._context_samples}"
            )
        self._state = recurrent.reshape(SILERO_STATE_SHAPE)
        self._context = context


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class VadConfig:
    """Which engine a track uses: ``webrtc`` (mode 0-3, frame 10/20/30 ms) or ``silero``; rate in Hz."""

    engine: Literal["webrtc", "silero"] = "webrtc"
    mode: int = 2
    sample_rate: int = 8000
    frame_ms: int = 30

    def __post_init__(self) -> None:
        if self.engine not in ("webrtc", "silero"):
            raise VadError(f"unknown VAD engine {self.engine!r}; expected 'webrtc' or 'silero'")


def make_engine(config: VadConfig, silero: SileroModel | None = None) -> VadEngine:
    """A fresh per-track engine; Silero uses ``silero`` or else the process-wide shared model."""
    if config.engine == "silero":
        return SileroVad(silero or shared_silero_model(), config.sample_rate)
    return WebRtcVad(config.mode, config.sample_rate, config.frame_ms)
