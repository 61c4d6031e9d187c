"""Per-frame speech probabilities -> speech segments in sample offsets, streaming and resumable.

Rules (all durations converted to samples once, at construction):

* A segment opens at the first frame with probability >= ``threshold``.
* While open, a frame below ``threshold - neg_offset`` (the exit threshold; at least 0.01) starts a
  silence run at that frame; a frame >= ``threshold`` ends the run. Frames in between neither start
  nor end a run (hysteresis, as silero-vad's ``neg_threshold``).
* The segment closes once a silence run reaches ``min_silence_ms``: its raw end is the start of the
  run, so shorter gaps are bridged.
* A closed segment whose raw length is below ``min_speech_ms`` is dropped (a blip).
* ``hangover_ms`` pads a kept segment on both sides: the end moves later (never past audio already
  seen) and the start earlier (never before the track start or the previous segment's end).
* With ``max_segment_ms``, an open segment reaching that raw length is cut at the current frame
  end (or at a pending silence run) and speech continues in a new segment starting there, without
  padding at the cut and exempt from ``min_speech_ms``.
* ``flush(end_sample)`` closes an open segment at the end of the stream: the tail is never dropped.

Decisions are taken frame by frame, so the output does not depend on how frames are chunked.
``TrackVad`` runs engine + partial-frame buffer + segmenter (+ activity meter) for one track on raw
int16 samples in any chunking; its ``to_state`` is what a Faust table stores per track.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.audio.activity import ActivityMeter, ActivitySummary
from processors.audio.vad import Int16Array, JsonDict, VadEngine, VadError

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SegmenterParams:
    """Smoothing parameters, durations in ms; probabilities in [0, 1]."""

    threshold: float = 0.5
    neg_offset: float = 0.15
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    hangover_ms: int = 100
    max_segment_ms: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise VadError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if not 0.0 <= self.neg_offset < 1.0:
            raise VadError(f"neg_offset must be in [0, 1), got {self.neg_offset!r}")
        for name in ("min_speech_ms", "min_silence_ms", "hangover_ms"):
            if getattr(self, name) < 0:
                raise VadError(f"{name} must be >= 0 ms, got {getattr(self, name)!r}")
        if self.hangover_ms > self.min_silence_ms:
            raise VadError(f"hangover_ms ({self.hangover_ms}) must not exceed min_silence_ms ({self.min_silence_ms})")
        if self.max_segment_ms is not None and self.max_segment_ms <= max(self.min_speech_ms, self.min_silence_ms):
            raise VadError(
                f"max_segment_ms ({self.max_segment_ms}) must exceed min_speech_ms and min_silence_ms "
                f"({self.min_speech_ms}, {self.min_silence_ms})"
            )

    @property
    def neg_threshold(self) -> float:
        """Exit threshold: a frame below it starts (or continues) a silence run."""
        return max(self.threshold - self.neg_offset, 0.01)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmenterParams:
        return cls(**dict(data))


@dataclass(frozen=True)
class Segment:
    """A speech segment [start_sample, end_sample) and the mean frame probability over its raw extent."""

    start_sample: int
    end_sample: int
    probability: float


def ms_to_samples(ms: int, sample_rate: int) -> int:
    """Duration in ms -> whole samples at ``sample_rate`` Hz (rounded half up)."""
    return (ms * sample_rate + 500) // 1000


@dataclass
class _Open:
    """The open segment: raw start, pending silence run and probability sums (all picklable/JSON-able)."""

    start: int
    continued: bool = False
    silence_start: int | None = None
    prob_sum: float = 0.0
    frames: int = 0
    voiced_sum: float = 0.0  # prob_sum and frames as they were just before the silence run began
    voiced_frames: int = 0


class Segmenter:
    """Streaming smoother for one track; offsets are samples at ``sample_rate`` Hz from ``start_sample``."""

    def __init__(self, params: SegmenterParams, sample_rate: int, frame_samples: int, start_sample: int = 0) -> None:
        if sample_rate <= 0 or frame_samples <= 0:
            raise VadError(f"sample rate and frame size must be positive, got {sample_rate} Hz, {frame_samples}")
        self.params = params
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self._min_speech = ms_to_samples(params.min_speech_ms, sample_rate)
        self._min_silence = ms_to_samples(params.min_silence_ms, sample_rate)
        self._pad = ms_to_samples(params.hangover_ms, sample_rate)
        self._max = None if params.max_segment_ms is None else ms_to_samples(params.max_segment_ms, sample_rate)
        self._neg = params.neg_threshold
        self.cursor = start_sample  # start of the next expected frame
        self._last_end = start_sample  # end of the last emitted segment (or the track start)
        self._open: _Open | None = None
        self.finished = False
        self._cap: int | None = None  # stream end, set by flush

    def push(self, probabilities: Float32Array, start_sample: int) -> list[Segment]:
        """Probabilities of consecutive frames, the first starting at ``start_sample`` -> closed segments."""
        if self.finished:
            raise VadError(f"segmenter was flushed at sample {self.cursor}; cannot push more frames")
        if start_sample != self.cursor:
            raise VadError(f"frames start at sample {start_sample}, expected {self.cursor} (gap or overlap)")
        closed: list[Segment] = []
        for p in probabilities.tolist():
            segment = self._step(float(p))
            if segment is not None:
                closed.append(segment)
        return closed

    def flush(self, end_sample: int | None = None, tail_probability: float | None = None) -> list[Segment]:
        """End of stream at ``end_sample``: close what is open; the tail is never dropped.

        Without ``tail_probability`` the stream ends at the cursor (the default). With it, a last,
        partial frame [cursor, end_sample) was scored (zero-padded) and counts up to ``end_sample``.
        """
        if self.finished:
            raise VadError(f"segmenter was already flushed at sample {self.cursor}")
        end = self.cursor if end_sample is None else end_sample
        valid = end == self.cursor if tail_probability is None else 0 < end - self.cursor < self.frame_samples
        if not valid:
            raise VadError(f"flush at sample {end} does not end the last frame (cursor {self.cursor})")
        self._cap = end
        closed = [] if tail_probability is None else self.push(np.array([tail_probability], np.float32), self.cursor)
        self.finished = True
        seg = self._open
        if seg is not None:
            if seg.silence_start is None:
                last = self._close(end, seg.prob_sum, seg.frames)
            else:
                last = self._close(min(seg.silence_start, end), seg.voiced_sum, seg.voiced_frames)
            closed += [] if last is None else [last]
        self.cursor = end
        return closed

    def horizon(self) -> tuple[int, int | None]:
        """(final_sample, speaking_since): segmentation before ``final_sample`` will never change, and when
        ``speaking_since`` is set a segment starting there is sure to reach ``final_sample``.

        Idle: a future segment's padded start may reach back by the hangover, so only audio before
        ``cursor - hangover`` (and never before the last segment's end) is final. An open segment that
        has not lasted ``min_speech`` yet may still be dropped: final up to its padded start. A
        confirmed open segment certainly extends to its pending silence run (or the cursor).
        """
        seg = self._open
        if seg is None:
            return max(self.cursor - self._pad, self._last_end), None
        start = self._padded_start(seg)
        speech_end = self.cursor if seg.silence_start is None else seg.silence_start
        if not seg.continued and speech_end - seg.start < self._min_speech:
            return start, None
        return speech_end, start

    def _step(self, p: float) -> Segment | None:
        frame_start = self.cursor
        self.cursor += self.frame_samples
        seg = self._open
        if seg is None:
            if p >= self.params.threshold:
                self._open = _Open(start=frame_start, prob_sum=p, frames=1)
            return None
        if p >= self.params.threshold:
            seg.silence_start = None
        elif p < self._neg and seg.silence_start is None:
            seg.silence_start, seg.voiced_sum, seg.voiced_frames = frame_start, seg.prob_sum, seg.frames
        seg.prob_sum += p
        seg.frames += 1
        if seg.silence_start is not None and self.cursor - seg.silence_start >= self._min_silence:
            return self._close(seg.silence_start, seg.voiced_sum, seg.voiced_frames)
        if self._max is not None and self.cursor - seg.start >= self._max:
            return self._cut(seg)
        return None

    def _cut(self, seg: _Open) -> Segment | None:
        """Maximum length reached: end at a pending silence run, else split here and continue."""
        if seg.silence_start is not None:
            return self._close(seg.silence_start, seg.voiced_sum, seg.voiced_frames)
        cut = self._limit()
        segment = Segment(self._padded_start(seg), cut, seg.prob_sum / seg.frames)
        self._last_end = cut
        self._open = _Open(start=cut, continued=True)
        return segment

    def _limit(self) -> int:
        """Latest sample a segment may end at: the audio seen so far (the stream end after flush)."""
        return self.cursor if self._cap is None else min(self.cursor, self._cap)

    def _close(self, raw_end: int, total: float, frames: int) -> Segment | None:
        seg = self._open
        assert seg is not None
        self._open = None
        if frames == 0 or (not seg.continued and raw_end - seg.start < self._min_speech):
            return None
        start = self._padded_start(seg)
        end = min(raw_end + self._pad, self._limit())
        self._last_end = end
        return Segment(start, end, total / frames)

    def _padded_start(self, seg: _Open) -> int:
        return seg.start if seg.continued else max(seg.start - self._pad, self._last_end)

    # ------------------------------------------------------------ state

    def state(self) -> JsonDict:
        """Everything needed to resume, as a JSON-able dict (params in ms, offsets in samples)."""
        return {
            "params": asdict(self.params),
            "sample_rate": self.sample_rate,
            "frame_samples": self.frame_samples,
            "cursor": self.cursor,
            "last_end": self._last_end,
            "open": None if self._open is None else asdict(self._open),
            "finished": self.finished,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Segmenter:
        """Rebuild a segmenter from ``state()``."""
        try:
            segmenter = cls(
                SegmenterParams.from_dict(state["params"]),
                int(state["sample_rate"]),
                int(state["frame_samples"]),
                int(state["cursor"]),
            )
            segmenter._last_end = int(state["last_end"])
            segmenter._open = None if state["open"] is None else _Open(**state["open"])
            segmenter.finished = bool(state["finished"])
        except (KeyError, TypeError) as exc:
            raise VadError(f"malformed segmenter state: {exc!r}") from exc
        return segmenter


# ---------------------------------------------------------------- one track


@dataclass(frozen=True)
class TrackOutput:
    """What one push produced: closed speech segments and completed activity summaries."""

    segments: list[Segment]
    activity: list[ActivitySummary]


class TrackVad:
    """Engine + partial-frame buffer + segmenter (+ optional activity meter) for one track.

    Takes int16 mono samples at the engine's rate in any chunking; offsets count from
    ``start_sample`` (the track's first sample). ``to_state``/``from_state`` carry everything.
    """

    def __init__(
        self,
        engine: VadEngine,
        params: SegmenterParams,
        start_sample: int = 0,
        activity_ms: int | None = 1000,
    ) -> None:
        self.engine = engine
        self.segmenter = Segmenter(params, engine.sample_rate, engine.frame_samples, start_sample)
        self.activity = None if activity_ms is None else ActivityMeter(engine.sample_rate, activity_ms, start_sample)
        self.pending = np.zeros(0, dtype=np.int16)  # samples of the next, incomplete frame

    @property
    def cursor(self) -> int:
        """Next expected sample: the track's first sample plus all samples pushed."""
        return self.segmenter.cursor + self.pending.size

    @property
    def detector(self) -> str:
        """Detector label for records, e.g. ``webrtcvad:2`` or ``silero:v6@0.5``."""
        threshold = self.segmenter.params.threshold
        return f"{self.engine.name}@{threshold:g}" if self.engine.graded else self.engine.name

    def horizon(self) -> tuple[int, int | None]:
        """See ``Segmenter.horizon``; samples still buffered in a partial frame are not yet scored."""
        return self.segmenter.horizon()

    def push(self, samples: Int16Array, at_sample: int | None = None) -> TrackOutput:
        """Next samples of the track; ``at_sample`` (optional) must equal ``cursor`` (no gap, no replay)."""
        if self.segmenter.finished:
            raise VadError(f"track was flushed at sample {self.cursor}; cannot push more samples")
        if at_sample is not None and at_sample != self.cursor:
            raise VadError(f"samples start at {at_sample}, expected {self.cursor} (gap or overlap)")
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise VadError(f"track samples must be 1-D int16 mono, got {samples.dtype} with shape {samples.shape}")
        buffer = np.concatenate((self.pending, samples))
        whole = buffer.size - buffer.size % self.engine.frame_samples
        self.pending = buffer[whole:].copy()
        return self._frames(buffer[:whole])

    def flush(self) -> TrackOutput:
        """End of the track: score the partial frame (zero-padded), close the open segment and interval."""
        if self.segmenter.finished:
            raise VadError(f"track was already flushed at sample {self.cursor}")
        tail = self.pending
        self.pending = np.zeros(0, dtype=np.int16)
        if not tail.size:
            return TrackOutput(self.segmenter.flush(), [] if self.activity is None else self.activity.flush())
        padded = np.concatenate((tail, np.zeros(self.engine.frame_samples - tail.size, dtype=np.int16)))
        probability = float(self.engine.process(padded)[0])
        segments = self.segmenter.flush(self.segmenter.cursor + tail.size, probability)
        activity = self._measure(tail, np.full(tail.size, probability >= self.segmenter.params.threshold))
        return TrackOutput(segments, activity + ([] if self.activity is None else self.activity.flush()))

    def _frames(self, frames: Int16Array) -> TrackOutput:
        probabilities = self.engine.process(frames)
        segments = self.segmenter.push(probabilities, self.segmenter.cursor)
        voiced = np.repeat(probabilities >= self.segmenter.params.threshold, self.engine.frame_samples)
        return TrackOutput(segments, self._measure(frames, voiced))

    def _measure(self, samples: Int16Array, voiced: npt.NDArray[np.bool_]) -> list[ActivitySummary]:
        return [] if self.activity is None else self.activity.push(samples, voiced)

    def to_state(self) -> JsonDict:
        """JSON-able state of the whole track: engine, segmenter, activity meter, partial frame."""
        return {
            "engine": self.engine.state(),
            "segmenter": self.segmenter.state(),
            "activity": None if self.activity is None else self.activity.state(),
            "pending": [int(v) for v in self.pending],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], engine: VadEngine) -> TrackVad:
        """Resume a track in a fresh ``engine`` built from the same configuration."""
        try:
            engine.restore(state["engine"])
            segmenter = Segmenter.from_state(state["segmenter"])
            activity = None if state["activity"] is None else ActivityMeter.from_state(state["activity"])
            pending = np.asarray(state["pending"], dtype=np.int16).reshape(-1)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VadError(f"malformed track VAD state: {exc!r}") from exc
        if pending.size >= engine.frame_samples:
            raise VadError(f"state holds {pending.size} pending samples, a frame has only {engine.frame_samples}")
        if segmenter.frame_samples != engine.frame_samples or segmenter.sample_rate != engine.sample_rate:
            raise VadError(
                f"state counts {segmenter.frame_samples}-sample frames at {segmenter.sample_rate} Hz, "
                f"engine {engine.name} uses {engine.frame_samples} at {engine.sample_rate} Hz"
            )
        track = cls(engine, segmenter.params, activity_ms=None)
        track.segmenter, track.activity, track.pending = segmenter, activity, pending
        return track
