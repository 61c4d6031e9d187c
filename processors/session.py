"""Per-call state, as a pure state machine over CallEvents and AudioChunks (records as dicts).

``step(state, record_name, record)`` returns a new frozen state and whether the record was a
redelivery; it never does I/O and never reads the clock. Audio only moves its track's sequence
cursor here: decoding is the media pipeline's (``processors.audio.stream``; a stateful codec such as
G.722 cannot be decoded chunk by chunk in isolation). The phase transitions are a table; an illegal
transition raises an error naming the phase and the event and leaves the state unchanged.
Redelivered records (same event id, or an audio sequence already seen) are recognised.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas import AUDIO_CHUNK, CALL_EVENT, union_branch

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
    RINGING = "RINGING"
    ACTIVE = "ACTIVE"
    ON_HOLD = "ON_HOLD"
    ENDED = "ENDED"


# Signals are payload types, except that a CallStarted with answered=false is "CallRinging".
# Several sources may tell the same call's story (a mediaservice newCall, then a Telnyx stream
# start, then a Cresta CALL_START): a signal that confirms the current phase keeps it.
# (phase, signal) -> next phase. Pairs not listed are illegal. Types in PHASE_NEUTRAL are legal in
# every phase and keep it.
TRANSITIONS: Mapping[tuple[Phase, str], Phase] = {
    (Phase.NEW, "CallRinging"): Phase.RINGING,
    (Phase.NEW, "CallStarted"): Phase.ACTIVE,
    (Phase.NEW, "CallAnswered"): Phase.ACTIVE,
    (Phase.NEW, "CallEnded"): Phase.ENDED,
    (Phase.RINGING, "CallRinging"): Phase.RINGING,
    (Phase.RINGING, "CallStarted"): Phase.ACTIVE,
    (Phase.RINGING, "CallAnswered"): Phase.ACTIVE,
    (Phase.RINGING, "CallEnded"): Phase.ENDED,
    (Phase.ACTIVE, "CallRinging"): Phase.ACTIVE,
    (Phase.ACTIVE, "CallStarted"): Phase.ACTIVE,
    (Phase.ACTIVE, "CallAnswered"): Phase.ACTIVE,
    (Phase.ACTIVE, "CallHeld"): Phase.ON_HOLD,
    (Phase.ACTIVE, "CallResumed"): Phase.ACTIVE,
    (Phase.ACTIVE, "CallEnded"): Phase.ENDED,
    (Phase.ON_HOLD, "CallRinging"): Phase.ON_HOLD,
    (Phase.ON_HOLD, "CallStarted"): Phase.ON_HOLD,
    (Phase.ON_HOLD, "CallAnswered"): Phase.ON_HOLD,
    (Phase.ON_HOLD, "CallHeld"): Phase.ON_HOLD,
    (Phase.ON_HOLD, "CallResumed"): Phase.ACTIVE,
    (Phase.ON_HOLD, "CallEnded"): Phase.ENDED,
    (Phase.ENDED, "CallEnded"): Phase.ENDED,
}
PHASE_NEUTRAL = frozenset({"StreamStarted", "StreamStopped", "Dtmf", "RecordingReady", "PlatformAlarm", "VendorEvent"})


@dataclass(frozen=True)
class TrackState:
    """Per-track cursor: the last audio sequence accepted."""

    last_sequence: int = -1


@dataclass(frozen=True)
class Party:
    """A participant of the call as the events named it."""

    role: str
    participant_id: str | None


@dataclass(frozen=True)
class Session:
    """What the events tell about the call (wall-clock times in UTC ms, as the vendors report them)."""

    direction: str = "UNSPECIFIED"
    from_number: str | None = None
    to_number: str | None = None
    parties: tuple[Party, ...] = ()
    started_at_ms: int | None = None
    answered_at_ms: int | None = None
    ended_at_ms: int | None = None
    end_reason: str = ""
    holds: tuple[tuple[int, int | None], ...] = ()  # (start, end or None while on hold)

    @property
    def hold_count(self) -> int:
        return len(self.holds)

    def hold_ms(self, now_ms: int | None = None) -> int:
        """Total time on hold; an open hold counts up to ``now_ms`` (or not at all when None)."""
        total = 0
        for start, end in self.holds:
            stop = end if end is not None else now_ms
            if stop is not None:
                total += max(0, stop - start)
        return total

    @property
    def agent_id(self) -> str | None:
        return next((p.participant_id for p in self.parties if p.role == "AGENT" and p.participant_id), None)


@dataclass(frozen=True)
class CallState:
    """Everything the worker remembers about one call."""

    call_id: str
    cid: int | None = None
    phase: Phase = Phase.NEW
    session: Session = field(default_factory=Session)
    tracks: Mapping[str, TrackState] = field(default_factory=dict)
    recent_event_ids: tuple[str, ...] = ()
    duplicates: int = 0

    def to_dict(self) -> Record:
        """Plain JSON-able form, for the Faust table."""
        s = self.session
        return {
            "call_id": self.call_id,
            "cid": self.cid,
            "phase": self.phase.value,
            "session": {
                "direction": s.direction,
                "from_number": s.from_number,
                "to_number": s.to_number,
                "parties": [[p.role, p.participant_id] for p in s.parties],
                "started_at_ms": s.started_at_ms,
                "answered_at_ms": s.answered_at_ms,
                "ended_at_ms": s.ended_at_ms,
                "end_reason": s.end_reason,
                "holds": [list(h) for h in s.holds],
            },
            "tracks": {k: [t.last_sequence] for k, t in self.tracks.items()},
            "recent_event_ids": list(self.recent_event_ids),
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallState:
        s = dict(data.get("session") or {})
        session = Session(
            direction=str(s.get("direction", "UNSPECIFIED")),
            from_number=s.get("from_number"),
            to_number=s.get("to_number"),
            parties=tuple(Party(str(r), i) for r, i in s.get("parties", ())),
            started_at_ms=s.get("started_at_ms"),
            answered_at_ms=s.get("answered_at_ms"),
            ended_at_ms=s.get("ended_at_ms"),
            end_reason=str(s.get("end_reason", "")),
            holds=tuple((int(h[0]), None if h[1] is None else int(h[1])) for h in s.get("holds", ())),
        )
        return cls(
            call_id=str(data["call_id"]),
            cid=data.get("cid"),
            phase=Phase(data.get("phase", Phase.NEW)),
            session=session,
            # [sequence]; states written before 2026-11 also carry the track's end sample: ignored
            tracks={k: TrackState(int(v[0])) for k, v in dict(data.get("tracks", {})).items()},
            recent_event_ids=tuple(data.get("recent_event_ids", ())),
            duplicates=int(data.get("duplicates", 0)),
        )


@dataclass(frozen=True)
class Step:
    """Result of one step: the new state, and whether the record was one already applied."""

    state: CallState
    duplicate: bool = False


def payload_type(event: Mapping[str, Any]) -> str:
    """Short type name of a CallEvent payload (CallStarted, Dtmf, ...)."""
    return union_branch(event["payload"])[0]


def signal(event: Mapping[str, Any]) -> str:
    """The transition-table signal of a CallEvent: its payload type, or CallRinging for an unanswered start."""
    kind, payload = union_branch(event["payload"])
    if kind == "CallStarted" and payload.get("answered", True) is False:
        return "CallRinging"
    return kind


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
    kind = signal(event)
    if kind in PHASE_NEUTRAL:
        phase = state.phase
    else:
        try:
            phase = TRANSITIONS[(state.phase, kind)]
        except KeyError:
            raise IllegalTransitionError(
                f"call {state.call_id}: event {kind} ({event_id}) is not allowed in phase {state.phase.value}"
            ) from None
    session = _tell(state.session, state.phase, phase, event)
    recent = (*state.recent_event_ids, event_id)[-RECENT_EVENT_IDS:]
    return Step(replace(state, cid=event["cid"], phase=phase, session=session, recent_event_ids=recent))


def _tell(session: Session, before: Phase, after: Phase, event: Mapping[str, Any]) -> Session:
    """What the event adds to the session facts (first value wins for identity fields)."""
    at = epoch_ms(event["occurred_at"])
    kind, payload = union_branch(event["payload"])
    changes: dict[str, Any] = {}
    if kind in ("CallStarted", "CallAnswered"):
        parties = list(session.parties)
        for p in payload.get("participants", ()):
            party = Party(str(p.get("role", "UNSPECIFIED")), p.get("participant_id"))
            if party not in parties:
                parties.append(party)
        changes["parties"] = tuple(parties)
    if kind == "CallStarted":
        changes["started_at_ms"] = session.started_at_ms if session.started_at_ms is not None else at
        if session.direction == "UNSPECIFIED":
            changes["direction"] = str(payload.get("direction", "UNSPECIFIED"))
        changes["from_number"] = session.from_number or payload.get("from_number")
        changes["to_number"] = session.to_number or payload.get("to_number")
    if after is Phase.ACTIVE and before in (Phase.NEW, Phase.RINGING):
        changes["answered_at_ms"] = at
        changes["started_at_ms"] = session.started_at_ms if session.started_at_ms is not None else at
    if after is Phase.ON_HOLD and before is not Phase.ON_HOLD:
        changes["holds"] = (*session.holds, (at, None))
    if before is Phase.ON_HOLD and after is not Phase.ON_HOLD and session.holds:
        start, _ = session.holds[-1]
        changes["holds"] = (*session.holds[:-1], (start, max(start, at)))
    if after is Phase.ENDED and before is not Phase.ENDED:
        changes["ended_at_ms"] = at
        changes["end_reason"] = str(payload.get("reason", ""))
    return replace(session, **changes)


def epoch_ms(value: Any) -> int:
    """UTC ms of a decoded timestamp-millis (datetime) or an int already in ms."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _apply_audio(state: CallState, chunk: Mapping[str, Any]) -> Step:
    track_name = str(chunk["track"])
    track = state.tracks.get(track_name, TrackState())
    sequence = int(chunk["sequence"])
    if sequence <= track.last_sequence:
        return Step(replace(state, duplicates=state.duplicates + 1), duplicate=True)
    tracks = {**state.tracks, track_name: TrackState(last_sequence=sequence)}
    return Step(replace(state, cid=chunk["cid"], tracks=tracks))


def segment_id(call_id: str, track: str, kind: str, start_sample: int) -> str:
    """Content-derived segment id: the same interval of the same call always gets the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join((call_id, track, kind, str(start_sample)))))
