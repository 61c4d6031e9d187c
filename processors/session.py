"""Per-call state, as a pure state machine over CallEvents and AudioChunks (records as dicts).

``step(state, record_name, record)`` returns a new frozen state and the records to emit; it never
does I/O and never reads the clock. The phase transitions are a table; an illegal transition
raises an error naming the phase and the event and leaves the state unchanged. Redelivered
records (same event id, or an audio sequence already seen) are recognised and produce nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from processors.audio.levels import measure
from processors.audio.pcm import decode
from schemas import AUDIO_CHUNK, CALL_EVENT, SPEECH_SEGMENT, union_branch

LEVEL_DETECTOR = "level-meter:1"
RECENT_EVENT_IDS = 32
_ID_NAMESPACE = uuid.UUID("6f1d3c52-5b8e-4a51-9a0e-0b7c2f0d9a11")

Record = dict[str, Any]


class SessionError(Exception):
    """Base of errors of the per-call state machine."""


class IllegalTransitionError(SessionError):
    """The event is not allowed in the call's current phase."""


class TenantMismatchError(SessionError):
    """A record names a different tenant than the call it belongs to."""


class UnknownRecordError(SessionError):
    """The step was given a record type it does not handle."""


class Phase(StrEnum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    ON_HOLD = "ON_HOLD"
    ENDED = "ENDED"


# (phase, payload type) -> next phase. Types in PHASE_NEUTRAL are legal in every phase and keep it.
TRANSITIONS: Mapping[tuple[Phase, str], Phase] = {
    (Phase.NEW, "CallStarted"): Phase.ACTIVE,
    (Phase.NEW, "CallEnded"): Phase.ENDED,
    (Phase.NEW, "CallAnswered"): Phase.ACTIVE,
    (Phase.ACTIVE, "CallAnswered"): Phase.ACTIVE,
    (Phase.ACTIVE, "CallHeld"): Phase.ON_HOLD,
    (Phase.ACTIVE, "CallEnded"): Phase.ENDED,
    (Phase.ON_HOLD, "CallResumed"): Phase.ACTIVE,
    (Phase.ON_HOLD, "CallEnded"): Phase.ENDED,
}
PHASE_NEUTRAL = frozenset({"StreamStarted", "StreamStopped", "Dtmf", "RecordingReady", "PlatformAlarm", "VendorEvent"})


@dataclass(frozen=True)
class TrackState:
    """Per-track cursor: the last audio sequence accepted and where its media ended (samples)."""

    last_sequence: int = -1
    end_sample: int = 0


@dataclass(frozen=True)
class CallState:
    """Everything the worker remembers about one call."""

    call_id: str
    cid: int | None = None
    phase: Phase = Phase.NEW
    tracks: Mapping[str, TrackState] = field(default_factory=dict)
    recent_event_ids: tuple[str, ...] = ()
    duplicates: int = 0

    def to_dict(self) -> Record:
        """Plain JSON-able form, for the Faust table."""
        return {
            "call_id": self.call_id,
            "cid": self.cid,
            "phase": self.phase.value,
            "tracks": {k: [t.last_sequence, t.end_sample] for k, t in self.tracks.items()},
            "recent_event_ids": list(self.recent_event_ids),
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallState:
        return cls(
            call_id=str(data["call_id"]),
            cid=data.get("cid"),
            phase=Phase(data.get("phase", Phase.NEW)),
            tracks={k: TrackState(int(v[0]), int(v[1])) for k, v in dict(data.get("tracks", {})).items()},
            recent_event_ids=tuple(data.get("recent_event_ids", ())),
            duplicates=int(data.get("duplicates", 0)),
        )


@dataclass(frozen=True)
class Step:
    """Result of one step: the new state and the (record type, record) pairs to emit."""

    state: CallState
    outputs: list[tuple[str, Record]] = field(default_factory=list)
    duplicate: bool = False


def payload_type(event: Mapping[str, Any]) -> str:
    """Short type name of a CallEvent payload (CallStarted, Dtmf, ...)."""
    return union_branch(event["payload"])[0]


def step(state: CallState, name: str, record: Mapping[str, Any]) -> Step:
    """Apply one decoded record to the call's state."""
    _check_tenant(state, name, record)
    if name == CALL_EVENT:
        return _apply_event(state, record)
    if name == AUDIO_CHUNK:
        return _apply_audio(state, record)
    raise UnknownRecordError(f"call state machine does not handle {name} records")


def fold(call_id: str, records: Iterable[tuple[str, Mapping[str, Any]]]) -> CallState:
    """Rebuild a call's state from its records, in order."""
    state = CallState(call_id=call_id)
    for name, record in records:
        state = step(state, name, record).state
    return state


def _check_tenant(state: CallState, name: str, record: Mapping[str, Any]) -> None:
    if state.cid is not None and record["cid"] != state.cid:
        raise TenantMismatchError(
            f"{name.rsplit('.', 1)[-1]} for call {state.call_id} names tenant {record['cid']}, "
            f"but the call belongs to tenant {state.cid}"
        )


def _apply_event(state: CallState, event: Mapping[str, Any]) -> Step:
    event_id = str(event["event_id"])
    if event_id in state.recent_event_ids:
        return Step(replace(state, duplicates=state.duplicates + 1), duplicate=True)
    kind = payload_type(event)
    if kind in PHASE_NEUTRAL:
        phase = state.phase
    else:
        try:
            phase = TRANSITIONS[(state.phase, kind)]
        except KeyError:
            raise IllegalTransitionError(
                f"call {state.call_id}: event {kind} ({event_id}) is not allowed in phase {state.phase.value}"
            ) from None
    recent = (*state.recent_event_ids, event_id)[-RECENT_EVENT_IDS:]
    return Step(replace(state, cid=event["cid"], phase=phase, recent_event_ids=recent))


def _apply_audio(state: CallState, chunk: Mapping[str, Any]) -> Step:
    track_name = str(chunk["track"])
    track = state.tracks.get(track_name, TrackState())
    sequence = int(chunk["sequence"])
    if sequence <= track.last_sequence:
        return Step(replace(state, duplicates=state.duplicates + 1), duplicate=True)
    samples = decode(str(chunk["codec"]), bytes(chunk["payload"]), int(chunk["channels"]))
    start = int(chunk["start_sample"])
    end = start + samples.shape[0]
    level = measure(samples)
    segment: Record = {
        "segment_id": segment_id(state.call_id, track_name, "LEVEL", start),
        "call_id": state.call_id,
        "cid": chunk["cid"],
        "track": track_name,
        "role": chunk["role"],
        "kind": "LEVEL",
        "start_sample": start,
        "end_sample": end,
        "sample_rate": chunk["sample_rate"],
        "rms_dbfs": level.rms_dbfs,
        "peak_dbfs": level.peak_dbfs,
        "speech_probability": None,
        "detector": LEVEL_DETECTOR,
    }
    tracks = {**state.tracks, track_name: TrackState(last_sequence=sequence, end_sample=end)}
    return Step(replace(state, cid=chunk["cid"], tracks=tracks), outputs=[(SPEECH_SEGMENT, segment)])


def segment_id(call_id: str, track: str, kind: str, start_sample: int) -> str:
    """Content-derived segment id: the same interval of the same call always gets the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join((call_id, track, kind, str(start_sample)))))
