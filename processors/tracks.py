"""One participant's audio track, from decoded samples to speech segments, level intervals and prosody.

``RoleTrack`` takes int16 mono samples at the source rate, positioned by the source's sample
offset. A gap in the offsets is filled with digital silence (the participant said nothing there);
samples that overlap what was already processed are dropped (both are counted). When the VAD
engine cannot run at the source rate the samples go through a chunk-invariant polyphase resampler
first. Everything downstream counts samples at the VAD rate; media time in ms is derived from
those counts only, so the same audio in any chunking gives the same results.

The track's whole state is a JSON-able dict (``to_state`` / ``from_state``) for the worker's table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from processors.analytics import prosody
from processors.analytics.sweep import Role
from processors.analytics.timeline import ms_of_sample
from processors.audio import tones
from processors.audio.activity import ActivitySummary
from processors.audio.resample import StreamResampler
from processors.audio.segmenter import Segment, SegmenterParams, TrackVad
from processors.audio.vad import SileroModel, VadConfig, VadEngine, make_engine

Samples = np.ndarray[Any, np.dtype[np.int16]]

VAD_RATES = {"webrtc": (8000, 16000, 32000, 48000), "silero": (8000, 16000)}
PROSODY_RATES = (8000, 16000)
FALLBACK_RATE = 16000


@dataclass(frozen=True)
class MediaConfig:
    """How every track is analysed: VAD engine and smoothing, level interval, prosody on/off."""

    vad: VadConfig = field(default_factory=VadConfig)
    segmenter: SegmenterParams = field(default_factory=SegmenterParams)
    activity_ms: int = 1000
    prosody: bool = True

    def vad_rate(self, source_rate: int) -> int:
        """The rate the VAD runs at for a source rate: the source's own when the engine supports it."""
        return source_rate if source_rate in VAD_RATES[self.vad.engine] else FALLBACK_RATE


@dataclass(frozen=True)
class TrackStep:
    """What a push produced (VAD-rate samples): speech segments, level intervals, prosody windows, tones."""

    segments: list[Segment] = field(default_factory=list)
    activity: list[ActivitySummary] = field(default_factory=list)
    windows: list[prosody.WindowResult] = field(default_factory=list)
    tones: Tones = field(default_factory=lambda: Tones())

    def __add__(self, other: TrackStep) -> TrackStep:
        return TrackStep(
            self.segments + other.segments,
            self.activity + other.activity,
            self.windows + other.windows,
            self.tones + other.tones,
        )


@dataclass(frozen=True)
class Tones:
    """In-band signals found on a track: DTMF digits, beeps, ring-back cycles, clipping per interval."""

    dtmf: list[tones.DtmfDigit] = field(default_factory=list)
    beeps: list[tones.Beep] = field(default_factory=list)
    rings: list[tones.Ring] = field(default_factory=list)
    clipping: list[tones.ClipInterval] = field(default_factory=list)

    def __add__(self, other: Tones) -> Tones:
        return Tones(
            self.dtmf + other.dtmf,
            self.beeps + other.beeps,
            self.rings + other.rings,
            self.clipping + other.clipping,
        )


class Detectors:
    """The tone detectors of one track (each chunk-invariant, with JSON state)."""

    def __init__(self, rate: int, state: Mapping[str, Any] | None = None) -> None:
        self.rate = rate
        if state is None:
            self.dtmf = tones.DtmfDetector(rate)
            self.beep = tones.BeepDetector(rate)
            self.ring = tones.RingbackDetector(rate)
            self.clip = tones.ClippingDetector(rate)
        else:
            self.dtmf = tones.DtmfDetector.from_state(rate, state["dtmf"])
            self.beep = tones.BeepDetector.from_state(rate, state["beep"])
            self.ring = tones.RingbackDetector.from_state(rate, state["ring"])
            self.clip = tones.ClippingDetector.from_state(rate, state["clip"])

    def push(self, samples: Samples) -> Tones:
        return Tones(self.dtmf.push(samples), self.beep.push(samples), self.ring.push(samples), self.clip.push(samples))

    def flush(self) -> Tones:
        return Tones(self.dtmf.flush(), self.beep.flush(), self.ring.flush(), self.clip.flush())

    def to_state(self) -> dict[str, Any]:
        return {
            "dtmf": self.dtmf.to_state(),
            "beep": self.beep.to_state(),
            "ring": self.ring.to_state(),
            "clip": self.clip.to_state(),
        }


class RoleTrack:
    """The analysis chain of one participant (mutable working object; state via to_state/from_state)."""

    def __init__(self, role: str, source_rate: int, config: MediaConfig, silero: SileroModel | None = None) -> None:
        self.role = role
        self.source_rate = source_rate
        self.rate = config.vad_rate(source_rate)
        self.config = config
        self.vad = TrackVad(self._engine(silero), config.segmenter, activity_ms=config.activity_ms)
        self.resampler = None if self.rate == source_rate else StreamResampler(source_rate, self.rate)
        self.prosody: prosody.ProsodyState | None = None
        if config.prosody and role in (Role.AGENT, Role.CUSTOMER) and self.rate in PROSODY_RATES:
            self.prosody = prosody.ProsodyState(Role(role), self.rate)
        self.detectors = Detectors(self.rate)
        self.source_cursor = 0  # source-rate samples consumed (including filled gaps)
        self.filled = 0  # source samples of silence inserted for gaps
        self.dropped = 0  # source samples dropped because they overlapped processed audio
        self.finished = False

    def _engine(self, silero: SileroModel | None) -> VadEngine:
        cfg = self.config.vad
        return make_engine(VadConfig(cfg.engine, cfg.mode, self.rate, cfg.frame_ms), silero)

    # ------------------------------------------------------------ feeding

    def push(self, samples: Samples, at_sample: int) -> TrackStep:
        """Samples of the track starting at source sample ``at_sample``."""
        if self.finished:
            return TrackStep()
        if at_sample > self.source_cursor:
            gap = at_sample - self.source_cursor
            self.filled += gap
            samples = np.concatenate((np.zeros(gap, dtype=np.int16), samples))
        elif at_sample < self.source_cursor:
            overlap = min(self.source_cursor - at_sample, samples.size)
            self.dropped += overlap
            samples = samples[overlap:]
        self.source_cursor += samples.size
        return self._analyse(self._resampled(samples, final=False))

    def flush(self) -> TrackStep:
        """End of the track: close the open segment, the last level interval and prosody window."""
        if self.finished:
            return TrackStep()
        tail = self._resampled(np.zeros(0, dtype=np.int16), final=True)
        step = self._analyse(tail)
        out = self.vad.flush()
        windows: list[prosody.WindowResult] = []
        if self.prosody is not None:
            self.prosody, windows = prosody.flush(self.prosody)
        self.finished = True
        return step + TrackStep(out.segments, out.activity, windows, self.detectors.flush())

    def _resampled(self, samples: Samples, *, final: bool) -> Samples:
        if self.resampler is None:
            return samples
        out = self.resampler.push(samples) if samples.size else np.zeros(0)
        if final:
            out = np.concatenate((out, self.resampler.flush()))
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def _analyse(self, samples: Samples) -> TrackStep:
        if not samples.size:
            return TrackStep()
        out = self.vad.push(samples)
        windows: list[prosody.WindowResult] = []
        if self.prosody is not None:
            self.prosody, windows = prosody.feed(self.prosody, samples)
        return TrackStep(out.segments, out.activity, windows, self.detectors.push(samples))

    # ------------------------------------------------------------ progress

    def progress_ms(self) -> tuple[int, int | None]:
        """(until_ms, speaking_since_ms) of the VAD horizon, in ms of media time."""
        final, since = self.vad.horizon()
        return self.ms(final), None if since is None else self.ms(since)

    def ms(self, sample: int) -> int:
        """Media time (ms) of a VAD-rate sample offset."""
        return ms_of_sample(sample, self.rate)

    @property
    def end_ms(self) -> int:
        """Media time of everything processed so far."""
        return self.ms(self.vad.cursor)

    # ------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "source_rate": self.source_rate,
            "vad": self.vad.to_state(),
            "resampler": None if self.resampler is None else self.resampler.to_state(),
            "prosody": None if self.prosody is None else self.prosody.to_dict(),
            "detectors": self.detectors.to_state(),
            "source_cursor": self.source_cursor,
            "filled": self.filled,
            "dropped": self.dropped,
            "finished": self.finished,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: MediaConfig, silero: SileroModel | None = None) -> RoleTrack:
        track = cls(str(state["role"]), int(state["source_rate"]), config, silero)
        track.vad = TrackVad.from_state(state["vad"], track._engine(silero))
        if state["resampler"] is not None:
            track.resampler = StreamResampler.from_state(state["resampler"])
        track.prosody = None if state["prosody"] is None else prosody.ProsodyState.from_dict(state["prosody"])
        track.detectors = Detectors(track.rate, state["detectors"])
        track.source_cursor = int(state["source_cursor"])
        track.filled, track.dropped = int(state["filled"]), int(state["dropped"])
        track.finished = bool(state["finished"])
        return track
