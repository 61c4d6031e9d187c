"""Oliver interim prosody outputs per participant and fixed 3-second step of media time.

``feed`` takes one participant's int16 mono samples chunk by chunk and returns a ``WindowResult``
for every 3 s window it completes; windows are counted in samples from the track's first sample
(``origin_sample``), so the result does not depend on how the audio was chunked. ``flush`` at the
end of the track measures the last, shorter window. The state stays small (a few KB): each 10 ms frame
of the window being filled is reduced to its features (``measures.FRAME_FEATURES``, 17 bytes) as soon as
its 30 ms + YIN-lag span is complete, and only the samples from the next frame's start on (less than one
span: 375 samples at 8 kHz, 748 at 16 kHz) are kept; the results are those of ``measures.measure_window``
on the whole window. The state (origin, completed windows, frame features, tail samples) is serialisable
with to_dict/from_dict; from_dict also reads the older format that kept the partial window's samples.

Scores (integers 0..10, rounded half up, clipped), see ``processors.analytics.measures`` for the measures:
- intensity = (active_dbfs + 50) / 4: -50 dBFS -> 0, -30 dBFS -> 5, -10 dBFS -> 10.
- vocal_variety = 2.5 * pitch std in semitones: 0 st -> 0, 2 st -> 5, 4 st or more -> 10.
- speaking_rate from syllable nuclei per second of phonation: < 2.5 very slow, < 3.5 slow,
  < 4.5 normal, < 5.5 fast, else very fast.

Oliver layout (PROTOCOLS.md 1.4; nesting is an assumption): ``oliver_interim`` gives
``{"st": 18.0, "et": 21.0, "agent": {"intensity": 7, "vocal_variety": 4, "speaking_rate": "normal"},
"customer": {...}}``; an output that cannot be estimated is left out, a participant with none is left
out, never null. The caller adds ``id``, ``pid`` and ``is_final``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.analytics.errors import IllegalTransitionError, InvalidInputError
from processors.analytics.measures import (
    FRAME_FEATURES,
    Measures,
    frame_features,
    framing_at,
    hop_samples,
    measure_frames,
)
from processors.analytics.sweep import Role

WINDOW_MS = 3000
RATE_CLASSES: Sequence[tuple[float, str]] = (
    (2.5, "very slow"),
    (3.5, "slow"),
    (4.5, "normal"),
    (5.5, "fast"),
    (math.inf, "very fast"),
)


def intensity_score(active_dbfs: float) -> int:
    return _score((active_dbfs + 50.0) / 4.0)


def variety_score(pitch_std_semitones: float) -> int:
    return _score(2.5 * pitch_std_semitones)


def rate_class(syllables_per_s: float) -> str:
    return next(name for limit, name in RATE_CLASSES if syllables_per_s < limit)


def _score(value: float) -> int:
    return max(0, min(10, math.floor(value + 0.5)))


@dataclass(frozen=True)
class WindowResult:
    """One participant's measures over samples ``[start_sample, end_sample)`` of media time."""

    role: Role
    start_sample: int
    end_sample: int
    sample_rate_hz: int
    measures: Measures

    @property
    def st(self) -> float:
        """Window start, s."""
        return self.start_sample / self.sample_rate_hz

    @property
    def et(self) -> float:
        """Window end, s."""
        return self.end_sample / self.sample_rate_hz

    def outputs(self) -> dict[str, int | str]:
        """The Oliver interim outputs of this participant that could be estimated."""
        m = self.measures
        out: dict[str, int | str] = {}
        if m.active_dbfs is not None:
            out["intensity"] = intensity_score(m.active_dbfs)
        if m.pitch_std_semitones is not None:
            out["vocal_variety"] = variety_score(m.pitch_std_semitones)
        if m.syllable_rate is not None:
            out["speaking_rate"] = rate_class(m.syllable_rate)
        return out


def oliver_interim(results: Sequence[WindowResult]) -> dict[str, Any]:
    """Merge the participants' results of one window into one interim message body."""
    if not results:
        raise InvalidInputError("an interim message needs at least one window result")
    spans = {(r.st, r.et) for r in results}
    if len(spans) != 1:
        raise InvalidInputError(f"window results cover different spans {sorted(spans)}")
    st, et = spans.pop()
    body: dict[str, Any] = {"st": st, "et": et}
    for r in sorted(results, key=lambda r: r.role.value):
        outputs = r.outputs()
        if outputs:
            body[r.role.value.lower()] = outputs
    return body


@dataclass(frozen=True)
class ProsodyState:
    """One participant's analysis cursor: windows done since ``origin_sample``, then the window being filled."""

    role: Role
    sample_rate_hz: int
    origin_sample: int = 0
    windows_done: int = 0
    frames: bytes = b""  # measures.FRAME_FEATURES records of the window's complete frames, in order
    tail: bytes = b""  # int16 little-endian samples from the next frame's start on (less than one span)
    flushed: bool = False

    def __post_init__(self) -> None:
        span = framing_at(self.sample_rate_hz).span
        if len(self.frames) % FRAME_FEATURES.itemsize:
            raise InvalidInputError(f"prosody frames of {len(self.frames)} bytes are not whole records")
        if len(self.tail) % 2 or len(self.tail) // 2 >= span:
            raise InvalidInputError(f"prosody tail of {len(self.tail)} bytes is not under {span} int16 samples")
        if self.window_fill > self.window_samples:
            raise InvalidInputError(f"prosody frames and tail cover {self.window_fill} samples, over a window")

    @property
    def window_samples(self) -> int:
        return self.sample_rate_hz * WINDOW_MS // 1000

    @property
    def window_fill(self) -> int:
        """Samples fed into the window being filled."""
        frames = len(self.frames) // FRAME_FEATURES.itemsize
        return frames * hop_samples(self.sample_rate_hz) + len(self.tail) // 2

    @property
    def cursor_sample(self) -> int:
        """Media sample just after the last sample fed."""
        return self.origin_sample + self.windows_done * self.window_samples + self.window_fill

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "sample_rate_hz": self.sample_rate_hz,
            "origin_sample": self.origin_sample,
            "windows_done": self.windows_done,
            "frames": base64.b64encode(self.frames).decode("ascii"),
            "tail": base64.b64encode(self.tail).decode("ascii"),
            "flushed": self.flushed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProsodyState:
        """Read to_dict's output, or the older format with ``partial`` (the window's samples so far)."""
        state = cls(
            role=Role(data["role"]),
            sample_rate_hz=int(data["sample_rate_hz"]),
            origin_sample=int(data["origin_sample"]),
            windows_done=int(data["windows_done"]),
            frames=_b64(data, "frames") if "partial" not in data else b"",
            tail=_b64(data, "tail") if "partial" not in data else b"",
        )
        if "partial" in data:
            state = _resume_partial(state, _b64(data, "partial"))
        return replace(state, flushed=bool(data["flushed"]))


def _b64(data: Mapping[str, Any], key: str) -> bytes:
    try:
        return base64.b64decode(data[key], validate=True)
    except (binascii.Error, TypeError) as e:
        raise InvalidInputError(f"prosody state field {key!r} is not base64: {e}") from e


def _resume_partial(state: ProsodyState, partial: bytes) -> ProsodyState:
    """An old-format state: reduce the partial window's int16 samples to frame features and a tail."""
    if len(partial) % 2 or len(partial) // 2 >= state.window_samples:
        raise InvalidInputError(
            f"old prosody partial window of {len(partial)} bytes is not under {state.window_samples} int16 samples"
        )
    return _absorb(state, np.frombuffer(partial, dtype="<i2").astype(np.int16))


def feed(state: ProsodyState, samples: npt.NDArray[np.int16]) -> tuple[ProsodyState, list[WindowResult]]:
    """Append the next samples of the track; returns the results of every window completed."""
    if state.flushed:
        raise IllegalTransitionError(f"{state.role} prosody was flushed at sample {state.cursor_sample}")
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise InvalidInputError(f"prosody takes 1-D int16 samples, got {samples.dtype} with shape {samples.shape}")
    results: list[WindowResult] = []
    while True:
        room = state.window_samples - state.window_fill
        state, samples = _absorb(state, samples[:room]), samples[room:]
        if state.window_fill < state.window_samples:
            return state, results
        results.append(_result(state))
        state = replace(state, windows_done=state.windows_done + 1, frames=b"", tail=b"")


def flush(state: ProsodyState) -> tuple[ProsodyState, list[WindowResult]]:
    """End of the track: the result of the last, partial window (none if it is empty)."""
    if state.flushed:
        return state, []
    results = [_result(state)] if state.window_fill else []
    return replace(state, flushed=True), results


def _absorb(state: ProsodyState, samples: npt.NDArray[np.int16]) -> ProsodyState:
    """Add samples that fit in the window being filled: every frame whose span completes becomes features."""
    if samples.size == 0:
        return state
    buffer = np.concatenate((np.frombuffer(state.tail, dtype="<i2").astype(np.int16), samples))
    features = frame_features(buffer, state.sample_rate_hz)
    rest = buffer[features.size * hop_samples(state.sample_rate_hz) :]
    return replace(state, frames=state.frames + features.tobytes(), tail=rest.astype("<i2").tobytes())


def _result(state: ProsodyState) -> WindowResult:
    """The measures of the window being filled, from its frame features."""
    start = state.origin_sample + state.windows_done * state.window_samples
    features = np.frombuffer(state.frames, dtype=FRAME_FEATURES)
    measures = measure_frames(features)
    return WindowResult(state.role, start, start + state.window_fill, state.sample_rate_hz, measures)
