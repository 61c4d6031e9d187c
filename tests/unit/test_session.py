"""The per-call state machine: phases, duplicates, tenants and level segments from audio."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from processors.audio import g711
from processors.session import (
    RECENT_EVENT_IDS,
    CallState,
    IllegalTransitionError,
    Party,
    Phase,
    SessionError,
    Step,
    TenantMismatchError,
    TrackState,
    UnknownRecordError,
    fold,
    payload_type,
    segment_id,
    step,
)
from schemas import ALERT, AUDIO_CHUNK, CALL_EVENT

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)
NS = "io.switchboard.calls."
CALL = "call-1"


def event(
    event_id: str, kind: str, payload: dict[str, Any] | None = None, cid: int = 1, at_s: float = 0.0
) -> dict[str, Any]:
    """A CallEvent as AvroCodec.decode returns it (payload union as (full name, record)), ``at_s`` after T0."""
    return {
        "event_id": event_id,
        "call_id": CALL,
        "cid": cid,
        "source": "TELNYX",
        "occurred_at": T0 + timedelta(seconds=at_s),
        "received_at": T0,
        "payload": (NS + kind, payload or {}),
        "raw": "",
        "attributes": {},
    }


def tone_bytes(amplitude: float, n: int = 160, freq_hz: float = 1000.0) -> bytes:
    t = np.arange(n) / 8000
    return g711.ulaw_encode(np.round(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16))


def chunk(
    sequence: int,
    start_sample: int,
    payload: bytes | None = None,
    *,
    cid: int = 1,
    track: str = "inbound",
    role: str = "CUSTOMER",
    codec: str = "PCMU",
    channels: int = 1,
) -> dict[str, Any]:
    """An AudioChunk as AvroCodec.decode returns it."""
    return {
        "call_id": CALL,
        "cid": cid,
        "track": track,
        "role": role,
        "codec": codec,
        "sample_rate": 8000,
        "channels": channels,
        "sequence": sequence,
        "start_sample": start_sample,
        "media_timestamp_ms": None,
        "received_at": T0,
        "payload": tone_bytes(8192) if payload is None else payload,
    }


def fresh() -> CallState:
    return CallState(call_id=CALL)


def run(records: list[tuple[str, dict[str, Any]]], state: CallState | None = None) -> CallState:
    state = state or fresh()
    for name, record in records:
        state = step(state, name, record).state
    return state


# ---------------------------------------------------------------- phases


def test_call_lifecycle_walks_the_transition_table() -> None:
    state = fresh()
    assert state.phase is Phase.NEW
    seen = []
    for i, kind in enumerate(["CallStarted", "CallHeld", "CallResumed", "CallEnded"]):
        result = step(state, CALL_EVENT, event(f"e{i}", kind))
        assert isinstance(result, Step)
        assert result.duplicate is False
        state = result.state
        seen.append(state.phase)
    assert seen == [Phase.ACTIVE, Phase.ON_HOLD, Phase.ACTIVE, Phase.ENDED]
    assert state.recent_event_ids == ("e0", "e1", "e2", "e3")
    assert state.cid == 1
    assert state.duplicates == 0


# Written out independently of the product's table. A signal that confirms the phase keeps it
# (several sources tell the same call's story); "CallRinging" is a CallStarted with answered=false.
N, R, A, H, E = Phase.NEW, Phase.RINGING, Phase.ACTIVE, Phase.ON_HOLD, Phase.ENDED
LEGAL = {
    (N, "CallRinging"): R, (N, "CallStarted"): A, (N, "CallAnswered"): A, (N, "CallEnded"): E,
    (R, "CallRinging"): R, (R, "CallStarted"): A, (R, "CallAnswered"): A, (R, "CallEnded"): E,
    (A, "CallRinging"): A, (A, "CallStarted"): A, (A, "CallAnswered"): A, (A, "CallHeld"): H,
    (A, "CallResumed"): A, (A, "CallEnded"): E,
    (H, "CallRinging"): H, (H, "CallStarted"): H, (H, "CallAnswered"): H, (H, "CallHeld"): H,
    (H, "CallResumed"): A, (H, "CallEnded"): E,
    (E, "CallEnded"): E,
}  # fmt: skip
PHASE_CHANGING = ["CallRinging", "CallStarted", "CallAnswered", "CallEnded", "CallHeld", "CallResumed"]


def signal_event(event_id: str, kind: str) -> dict[str, Any]:
    if kind == "CallRinging":
        return event(event_id, "CallStarted", {"answered": False})
    return event(event_id, kind)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("kind", PHASE_CHANGING)
def test_every_phase_and_event_pair(phase: Phase, kind: str) -> None:
    state = CallState(call_id=CALL, cid=1, phase=phase)
    if (phase, kind) in LEGAL:
        assert step(state, CALL_EVENT, signal_event("x", kind)).state.phase is LEGAL[(phase, kind)]
    else:
        with pytest.raises(
            IllegalTransitionError, match=re.escape(f"event {kind} (x) is not allowed in phase {phase}")
        ):
            step(state, CALL_EVENT, signal_event("x", kind))


@pytest.mark.parametrize(
    ("history", "kind", "phase"),
    [(["CallStarted", "CallEnded"], "CallStarted", "ENDED"), ([], "CallHeld", "NEW")],
)
def test_illegal_transition_names_phase_and_event_and_leaves_state_alone(
    history: list[str], kind: str, phase: str
) -> None:
    state = run([(CALL_EVENT, event(f"h{i}", k)) for i, k in enumerate(history)])
    before = state.to_dict()
    with pytest.raises(IllegalTransitionError) as caught:
        step(state, CALL_EVENT, event("bad-1", kind))
    message = str(caught.value)
    assert f"phase {phase}" in message
    assert kind in message
    assert "bad-1" in message
    assert CALL in message
    assert state.to_dict() == before
    assert state.phase is Phase(phase)
    assert "bad-1" not in state.recent_event_ids
    assert isinstance(caught.value, SessionError)


def test_state_is_frozen() -> None:
    state = fresh()
    with pytest.raises(FrozenInstanceError):
        state.phase = Phase.ENDED  # type: ignore[misc]


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("Dtmf", {"digits": "12", "track": ""}),
        ("StreamStarted", {"stream_id": "s", "codec": "PCMU", "sample_rate": 8000, "channels": 1}),
        ("StreamStopped", {"stream_id": "s", "reason": ""}),
        ("RecordingReady", {"file_name": "f", "size_bytes": None, "succeeded": True, "reason": ""}),
        ("PlatformAlarm", {"alarm_type": "sessionError", "error": "x"}),
        ("VendorEvent", {"name": "odd"}),
    ],
)
def test_phase_neutral_events_keep_the_phase(phase: Phase, kind: str, payload: dict[str, Any]) -> None:
    state = CallState(call_id=CALL, cid=1, phase=phase, recent_event_ids=("old",))
    result = step(state, CALL_EVENT, event("n1", kind, payload))
    assert result.state.phase is phase
    assert result.state.recent_event_ids == ("old", "n1")
    assert result.duplicate is False


def test_payload_type_accepts_tuple_and_typed_dict() -> None:
    assert payload_type({"payload": (NS + "CallHeld", {})}) == "CallHeld"
    assert payload_type({"payload": {"-type": NS + "Dtmf", "digits": "1"}}) == "Dtmf"


# ---------------------------------------------------------------- duplicates


def test_duplicate_event_id_is_counted_and_changes_nothing_else() -> None:
    state = run([(CALL_EVENT, event("e1", "CallStarted"))])
    result = step(state, CALL_EVENT, event("e1", "CallStarted"))
    assert result.duplicate is True
    assert result.state.duplicates == 1
    assert result.state.phase is Phase.ACTIVE
    assert result.state.recent_event_ids == ("e1",)
    again = step(result.state, CALL_EVENT, event("e1", "CallStarted"))
    assert again.state.duplicates == 2


def test_duplicate_of_a_phase_changing_event_does_not_change_phase() -> None:
    state = run([(CALL_EVENT, event("e1", "CallStarted")), (CALL_EVENT, event("e2", "CallHeld"))])
    result = step(state, CALL_EVENT, event("e2", "CallHeld"))
    assert result.duplicate is True
    assert result.state.phase is Phase.ON_HOLD


def test_recent_event_ids_are_a_bounded_window() -> None:
    events = [(CALL_EVENT, event(f"d{i}", "Dtmf", {"digits": "1", "track": ""})) for i in range(RECENT_EVENT_IDS + 3)]
    state = run(events)
    assert len(state.recent_event_ids) == RECENT_EVENT_IDS == 32
    assert state.recent_event_ids[0] == "d3"
    assert state.recent_event_ids[-1] == f"d{RECENT_EVENT_IDS + 2}"
    # an id that fell out of the window is no longer recognised, one still inside it is
    assert step(state, CALL_EVENT, event("d0", "Dtmf", {"digits": "1"})).duplicate is False
    assert step(state, CALL_EVENT, event("d3", "Dtmf", {"digits": "1"})).duplicate is True


# ---------------------------------------------------------------- audio


def test_audio_chunk_moves_its_track_cursor_and_starts_the_call() -> None:
    state = run([(CALL_EVENT, event("e1", "CallStarted"))])
    result = step(state, AUDIO_CHUNK, chunk(sequence=0, start_sample=800))
    assert result.duplicate is False
    assert result.state.tracks == {"inbound": TrackState(last_sequence=0)}
    assert result.state.phase is Phase.ACTIVE


@pytest.mark.parametrize(
    ("codec", "payload"), [("G722", b"\x51" * 800), ("OPUS", b"\x00" * 10), ("L16_LE", b"\x00" * 3)]
)
def test_audio_is_not_decoded_by_the_state_machine(codec: str, payload: bytes) -> None:
    # stateful (G.722), unknown or malformed payloads are the media pipeline's to decode or refuse
    result = step(fresh(), AUDIO_CHUNK, chunk(0, 0, payload, codec=codec))
    assert result.state.tracks == {"inbound": TrackState(0)}


def test_segment_id_is_deterministic() -> None:
    first = segment_id(CALL, "inbound", "LEVEL", 160)
    assert first == segment_id(CALL, "inbound", "LEVEL", 160)
    others = {segment_id(CALL, "inbound", "LEVEL", 320), segment_id(CALL, "outbound", "LEVEL", 160),
              segment_id(CALL, "inbound", "SPEECH", 160)}  # fmt: skip
    assert first not in others and len(others) == 3
    assert uuid.UUID(first).version == 5


def test_segment_id_fields_do_not_run_together() -> None:
    assert segment_id("ab", "c", "LEVEL", 1) != segment_id("a", "bc", "LEVEL", 1)
    assert segment_id("a", "b", "LEVEL", 12) != segment_id("a", "b1", "LEVEL", 2)


@pytest.mark.parametrize("sequence", [5, 4, 0])
def test_repeated_or_older_audio_sequence_is_a_duplicate(sequence: int) -> None:
    state = run([(AUDIO_CHUNK, chunk(5, 800))])
    result = step(state, AUDIO_CHUNK, chunk(sequence, 960))
    assert result.duplicate is True
    assert result.state.duplicates == 1
    assert result.state.tracks == {"inbound": TrackState(5)}


def test_newer_sequence_after_a_gap_is_accepted() -> None:
    state = run([(AUDIO_CHUNK, chunk(5, 800))])
    result = step(state, AUDIO_CHUNK, chunk(9, 1600))
    assert result.duplicate is False
    assert result.state.tracks["inbound"] == TrackState(9)


def test_tracks_have_independent_sequences() -> None:
    state = run([(AUDIO_CHUNK, chunk(3, 0, track="inbound"))])
    result = step(state, AUDIO_CHUNK, chunk(0, 0, track="outbound", role="AGENT"))
    assert result.duplicate is False
    assert result.state.tracks == {"inbound": TrackState(3), "outbound": TrackState(0)}


# ---------------------------------------------------------------- tenants and record types


def test_tenant_mismatch_between_event_and_audio() -> None:
    state = run([(CALL_EVENT, event("e1", "CallStarted", cid=1))])
    with pytest.raises(TenantMismatchError) as caught:
        step(state, AUDIO_CHUNK, chunk(0, 0, cid=2))
    message = str(caught.value)
    assert "AudioChunk" in message
    assert "tenant 2" in message
    assert "tenant 1" in message
    assert CALL in message


def test_tenant_mismatch_between_events() -> None:
    state = run([(AUDIO_CHUNK, chunk(0, 0, cid=4))])
    assert state.cid == 4
    with pytest.raises(TenantMismatchError, match="CallEvent"):
        step(state, CALL_EVENT, event("e1", "CallStarted", cid=5))


def test_tenant_is_checked_before_duplicates() -> None:
    state = run([(CALL_EVENT, event("e1", "CallStarted", cid=1))])
    with pytest.raises(TenantMismatchError):
        step(state, CALL_EVENT, event("e1", "CallStarted", cid=2))


def test_unknown_record_type() -> None:
    with pytest.raises(UnknownRecordError, match=re.escape(ALERT)):
        step(fresh(), ALERT, {"cid": 1})


# ---------------------------------------------------------------- persistence and folding


def sample_history() -> list[tuple[str, dict[str, Any]]]:
    return [
        (CALL_EVENT, event("e1", "CallStarted", {"direction": "INBOUND"})),
        (AUDIO_CHUNK, chunk(0, 0)),
        (AUDIO_CHUNK, chunk(1, 160)),
        (AUDIO_CHUNK, chunk(1, 160)),  # redelivered
        (AUDIO_CHUNK, chunk(0, 0, track="outbound", role="AGENT")),
        (CALL_EVENT, event("e2", "CallHeld")),
        (CALL_EVENT, event("e2", "CallHeld")),  # redelivered
        (CALL_EVENT, event("e3", "Dtmf", {"digits": "9", "track": "inbound"})),
    ]


def test_to_dict_from_dict_round_trip() -> None:
    state = run(sample_history())
    data = state.to_dict()
    assert data == {
        "call_id": CALL,
        "cid": 1,
        "phase": "ON_HOLD",
        "session": {
            "direction": "INBOUND",
            "from_number": None,
            "to_number": None,
            "parties": [],
            "started_at_ms": MS0,
            "answered_at_ms": MS0,
            "ended_at_ms": None,
            "end_reason": "",
            "holds": [[MS0, None]],
        },
        "tracks": {"inbound": [1], "outbound": [0]},
        "recent_event_ids": ["e1", "e2", "e3"],
        "duplicates": 2,
    }
    assert CallState.from_dict(data) == state
    assert CallState.from_dict(json.loads(json.dumps(data))) == state


def test_a_state_written_with_track_end_samples_still_loads() -> None:
    data = {**run(sample_history()).to_dict(), "tracks": {"inbound": [1, 320], "outbound": [0, 160]}}
    assert CallState.from_dict(data) == run(sample_history())


def test_from_dict_defaults() -> None:
    assert CallState.from_dict({"call_id": "c"}) == CallState(call_id="c")


def test_fold_equals_stepping_one_by_one() -> None:
    history = sample_history()
    stepped = fresh()
    duplicates = []
    for name, record in history:
        result = step(stepped, name, record)
        stepped = result.state
        duplicates.append(result.duplicate)
    folded = fold(CALL, history)
    assert folded == stepped
    assert folded.phase is Phase.ON_HOLD
    assert folded.duplicates == 2
    assert duplicates == [False, False, False, True, False, False, True, False]


def test_fold_of_nothing_is_a_fresh_state() -> None:
    assert fold("c9", []) == CallState(call_id="c9")


def test_fold_is_resumable_from_a_persisted_state() -> None:
    history = sample_history()
    middle = CallState.from_dict(json.loads(json.dumps(fold(CALL, history[:4]).to_dict())))
    assert run(history[4:], middle) == fold(CALL, history)


# ---------------------------------------------------------------- session facts


def test_session_facts_from_a_mediaservice_then_telnyx_then_cresta_story() -> None:
    agent = {"role": "AGENT", "participant_id": "a-9"}
    customer = {"role": "CUSTOMER", "participant_id": "+4930123"}
    history = [
        event("ring", "CallStarted", {"answered": False, "from_number": "+4930123", "to_number": "100",
                                       "direction": "INBOUND", "participants": [customer]}, at_s=0),
        event("answer", "CallAnswered", {"connection_id": "k1", "participants": [agent, customer]}, at_s=4),
        event("stream", "CallStarted", {"from_number": "ignored", "direction": "OUTBOUND"}, at_s=5),
        event("hold1", "CallHeld", at_s=20),
        event("hold1-again", "CallHeld", at_s=21),  # a second source confirms the hold
        event("unhold1", "CallResumed", at_s=50),
        event("hold2", "CallHeld", at_s=60),
        event("end", "CallEnded", {"reason": "callingPartyDrop"}, at_s=70),
        event("completed", "CallEnded", {"reason": "sessionCompleted"}, at_s=71),  # confirms the end
    ]  # fmt: skip
    state = run([(CALL_EVENT, e) for e in history])
    s = state.session
    assert state.phase is Phase.ENDED
    assert (s.direction, s.from_number, s.to_number) == ("INBOUND", "+4930123", "100")
    assert s.parties == (Party("CUSTOMER", "+4930123"), Party("AGENT", "a-9"))
    assert s.agent_id == "a-9"
    assert (s.started_at_ms, s.answered_at_ms, s.ended_at_ms) == (MS0, MS0 + 4000, MS0 + 70_000)
    assert s.end_reason == "callingPartyDrop"
    assert s.holds == ((MS0 + 20_000, MS0 + 50_000), (MS0 + 60_000, MS0 + 70_000))
    assert s.hold_count == 2
    assert s.hold_ms() == 40_000
    assert CallState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_an_open_hold_counts_up_to_now_only_when_asked() -> None:
    state = run([(CALL_EVENT, event("s", "CallStarted")), (CALL_EVENT, event("h", "CallHeld", at_s=10))])
    assert state.session.holds == ((MS0 + 10_000, None),)
    assert state.session.hold_ms() == 0
    assert state.session.hold_ms(now_ms=MS0 + 25_000) == 15_000


def test_a_missed_call_rings_then_ends_without_being_answered() -> None:
    state = run(
        [
            (CALL_EVENT, event("r", "CallStarted", {"answered": False}, at_s=0)),
            (CALL_EVENT, event("e", "CallEnded", {"reason": "calledPartyFailure"}, at_s=30)),
        ]
    )
    assert state.phase is Phase.ENDED
    assert state.session.answered_at_ms is None
    assert state.session.ended_at_ms == MS0 + 30_000
