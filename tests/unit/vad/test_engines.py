"""VAD engines on synthetic signals: frames, probabilities, state, configuration and the Silero model file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from processors.audio.vad import (
    SILERO_CONTEXT_SAMPLES,
    SileroModel,
    SileroVad,
    VadConfig,
    VadError,
    WebRtcVad,
    as_frames,
    make_engine,
    shared_silero_model,
    silero_model_path,
    silero_version,
)
from tests.unit.vad.signals import noise

SILENCE = np.zeros(16000, dtype=np.int16)


def whole_frames(samples: np.ndarray, frame: int) -> np.ndarray:
    return samples[: samples.size // frame * frame]


@pytest.mark.parametrize(("rate", "frame_ms", "frame"), [(8000, 10, 80), (16000, 20, 320), (48000, 30, 1440)])
def test_webrtc_frame_size_and_name(rate: int, frame_ms: int, frame: int) -> None:
    engine = WebRtcVad(mode=3, sample_rate=rate, frame_ms=frame_ms)
    assert (engine.frame_samples, engine.sample_rate, engine.name, engine.graded) == (frame, rate, "webrtcvad:3", False)


@pytest.mark.parametrize(("rate", "frame"), [(8000, 256), (16000, 512)])
def test_silero_frame_size_and_name(silero: SileroModel, rate: int, frame: int) -> None:
    engine = SileroVad(silero, rate)
    assert (engine.frame_samples, engine.sample_rate, engine.graded) == (frame, rate, True)
    assert engine.name == f"silero:{silero_version()}"
    assert engine.name.startswith("silero:v")


def test_digital_silence_is_never_speech(silero: SileroModel) -> None:
    for engine in [WebRtcVad(mode, 8000, 30) for mode in range(4)] + [SileroVad(silero, 8000)]:
        p = engine.process(whole_frames(SILENCE, engine.frame_samples))
        assert p.dtype == np.float32
        assert p.shape == (SILENCE.size // engine.frame_samples,)
        assert float(p.max()) < 0.1, engine.name


def test_webrtc_decisions_are_zero_or_one_and_silero_probabilities_graded(
    silero: SileroModel, sentences: list[np.ndarray]
) -> None:
    speech = sentences[0]
    webrtc = WebRtcVad(2, 8000, 30).process(whole_frames(speech, 240))
    assert set(webrtc.tolist()) == {0.0, 1.0}
    graded = SileroVad(silero, 8000).process(whole_frames(speech, 256))
    assert 0.0 <= float(graded.min()) < 0.2 and 0.95 < float(graded.max()) <= 1.0
    assert len(set(graded.tolist())) > 50


def test_speech_frames_are_mostly_voiced(silero: SileroModel, sentences: list[np.ndarray]) -> None:
    for speech in sentences:
        for engine in (WebRtcVad(3, 8000, 30), SileroVad(silero, 8000)):
            p = engine.process(whole_frames(speech, engine.frame_samples))
            assert float(np.mean(p >= 0.5)) > 0.8, engine.name


def test_low_level_white_noise_is_mostly_not_speech(silero: SileroModel) -> None:
    hiss = noise(5.0, rms=300, seed=1)  # -40.8 dBFS
    p = SileroVad(silero, 8000).process(whole_frames(hiss, 256))
    assert float(p.max()) < 0.3
    # a fresh WebRTC detector flags its first few frames (start-up transient), then nothing
    d = WebRtcVad(3, 8000, 30).process(whole_frames(hiss, 240))
    assert int(d.sum()) <= 4 and not d[10:].any()


def test_silero_resume_from_json_state_is_exact(silero: SileroModel, sentences: list[np.ndarray]) -> None:
    speech = whole_frames(np.concatenate(sentences), 256)
    expected = SileroVad(silero, 8000).process(speech)
    for cut in (256, 256 * 37, 256 * 160):
        first = SileroVad(silero, 8000)
        head = first.process(speech[:cut])
        resumed = SileroVad(silero, 8000)
        resumed.restore(json.loads(json.dumps(first.state())))
        assert np.array_equal(np.concatenate((head, resumed.process(speech[cut:]))), expected)


def test_silero_state_holds_the_recurrent_state_and_the_previous_windows_tail(silero: SileroModel) -> None:
    engine = SileroVad(silero, 16000)
    ramp = np.arange(1024, dtype=np.int16)
    engine.process(ramp)
    state = engine.state()
    assert state["engine"] == "silero" and state["sample_rate"] == 16000
    assert state["context"] == list(range(1024 - SILERO_CONTEXT_SAMPLES[16000], 1024))
    assert len(state["state"]) == 2 * 128 and any(v != 0.0 for v in state["state"])


def test_shared_silero_session_keeps_no_per_track_state(silero: SileroModel, sentences: list[np.ndarray]) -> None:
    a, b = (whole_frames(s, 256) for s in sentences)
    alone = SileroVad(silero, 8000).process(a)
    first, second = SileroVad(silero, 8000), SileroVad(silero, 8000)
    n = min(a.size, b.size) // 256 * 256
    interleaved = []
    for at in range(0, n, 256 * 5):  # two tracks alternate on one session
        interleaved.append(first.process(a[at : min(at + 256 * 5, n)]))
        second.process(b[at : min(at + 256 * 5, n)])
    assert np.array_equal(np.concatenate(interleaved), alone[: n // 256])
    assert shared_silero_model() is silero


def test_webrtc_restart_differs_only_in_a_few_frames(sentences: list[np.ndarray]) -> None:
    """Measured: a restart (fresh C detector) changes at most 7 of the following 30 ms frames on
    espeak speech in -48 dBFS white noise, at 28 restart points per mode; differences may surface
    seconds later, at the next onset, because the adaptive noise model restarts from its defaults."""
    silence = np.zeros(4000, dtype=np.int16)
    clean = np.concatenate((silence, sentences[0], silence, silence, silence, sentences[1], silence))
    signal = np.clip(clean.astype(np.int32) + noise(clean.size / 8000, 100, seed=4), -32768, 32767)
    frames = whole_frames(signal.astype(np.int16), 240)
    worst = 0
    for mode in range(4):
        expected = WebRtcVad(mode, 8000, 30).process(frames)
        for cut in range(10, frames.size // 240 - 10, 10):
            before = WebRtcVad(mode, 8000, 30)
            before.process(frames[: cut * 240])
            after = WebRtcVad(mode, 8000, 30)
            after.restore(json.loads(json.dumps(before.state())))
            worst = max(worst, int(np.count_nonzero(after.process(frames[cut * 240 :]) != expected[cut:])))
    assert 0 < worst <= 7


def test_webrtc_state_is_its_configuration_and_restore_checks_it() -> None:
    engine = WebRtcVad(1, 16000, 20)
    assert engine.state() == {"engine": "webrtcvad", "mode": 1, "sample_rate": 16000, "frame_ms": 20}
    with pytest.raises(VadError, match=r"cannot restore VAD state: mode=2, this engine has mode=1"):
        engine.restore({"engine": "webrtcvad", "mode": 2, "sample_rate": 16000, "frame_ms": 20})


def test_silero_restore_refuses_other_rates_and_truncated_state(silero: SileroModel) -> None:
    state = SileroVad(silero, 8000).state()
    with pytest.raises(VadError, match=r"sample_rate=8000, this engine has sample_rate=16000"):
        SileroVad(silero, 16000).restore(state)
    with pytest.raises(VadError, match=r"255 state values and 32 context samples, expected 256 and 32"):
        SileroVad(silero, 8000).restore(state | {"state": state["state"][1:]})
    with pytest.raises(VadError, match=r"engine=None, this engine has engine='silero'"):
        SileroVad(silero, 8000).restore({})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: WebRtcVad(mode=4), r"webrtcvad mode must be one of \(0, 1, 2, 3\), got 4"),
        (lambda: WebRtcVad(sample_rate=11025), r"webrtcvad sample rate must be one of .* Hz, got 11025"),
        (lambda: WebRtcVad(frame_ms=25), r"webrtcvad frame must be one of \(10, 20, 30\) ms, got 25"),
        (lambda: SileroVad(shared_silero_model(), 48000), r"Silero sample rate must be one of \(8000, 16000\) Hz"),
        (lambda: VadConfig(engine="pyannote"), r"unknown VAD engine 'pyannote'"),  # type: ignore[arg-type]
    ],
)
def test_bad_configuration_is_refused_naming_the_value(build: object, message: str) -> None:
    with pytest.raises(VadError, match=message):
        build()  # type: ignore[operator]


def test_frames_must_be_whole_int16_mono() -> None:
    engine = WebRtcVad(2, 8000, 10)
    with pytest.raises(VadError, match=r"170 samples is not a whole number of 80-sample frames"):
        engine.process(np.zeros(170, dtype=np.int16))
    with pytest.raises(VadError, match=r"must be 1-D int16 mono, got float32"):
        engine.process(np.zeros(160, dtype=np.float32))
    with pytest.raises(VadError, match=r"got int16 with shape \(80, 2\)"):
        as_frames(np.zeros((80, 2), dtype=np.int16), 80)
    assert engine.process(np.zeros(0, dtype=np.int16)).shape == (0,)


def test_make_engine_follows_the_configuration(silero: SileroModel) -> None:
    webrtc = make_engine(VadConfig(engine="webrtc", mode=3, sample_rate=16000, frame_ms=10))
    assert isinstance(webrtc, WebRtcVad)
    assert (webrtc.name, webrtc.sample_rate, webrtc.frame_samples) == ("webrtcvad:3", 16000, 160)
    default = make_engine(VadConfig())
    assert (default.name, default.sample_rate, default.frame_samples) == ("webrtcvad:2", 8000, 240)
    engine = make_engine(VadConfig(engine="silero", sample_rate=16000), silero)
    assert isinstance(engine, SileroVad)
    assert (engine.sample_rate, engine.frame_samples) == (16000, 512)


def test_silero_model_file_is_found_without_importing_the_package() -> None:
    path = silero_model_path()
    assert path.name == "silero_vad.onnx" and path.parent.name == "data" and path.stat().st_size > 1_000_000
    assert "silero_vad" not in sys.modules  # the package imports torch, which is not installed
    with pytest.raises(VadError, match=r"silero-vad model file not found: .*no_such_model.onnx"):
        silero_model_path("no_such_model.onnx")


def test_a_corrupt_model_file_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(VadError, match=r"cannot load Silero ONNX model .*broken.onnx"):
        SileroModel(bad, "v0")
