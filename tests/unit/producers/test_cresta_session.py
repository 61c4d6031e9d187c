"""Cresta per-stream state, pure: sequenceId tracking, session state table, audio aggregation, deferred acks."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from producers.cresta.models import Code, CrestaError, SessionEventType, StreamRequest, parse_message
from producers.cresta.session import (
    RECENT_IDS,
    TRANSITIONS,
    CallSession,
    Endpoint,
    Outcome,
    Sequencer,
    SessionState,
    TrackBuffer,
    next_state,
)
from schemas import AUDIO_CHUNK, CALL_EVENT, AvroCodec

CODEC = AvroCodec.default()
T0_MS = 1_740_823_200_000  # 2025-03-01T10:00:00Z


def request(**body: Any) -> StreamRequest:
    return parse_message(StreamRequest, body)


def config(encoding: str = "MULAW", rate: int = 8000, channels: str = "CHANNEL_TYPE_STEREO") -> dict[str, Any]:
    return {
        "profile": "default",
        "audioMetadata": {"sampleRateHertz": rate, "encoding": encoding},
        "channelType": channels,
        "platformCallId": "c-77",
    }


def audio(data: bytes, role: str = "CUSTOMER") -> dict[str, Any]:
    return {"audioContent": base64.b64encode(data).decode(), "participant": {"role": role}}


def opened(endpoint: Endpoint = Endpoint.STREAM, chunk_ms: int = 100, **setup: Any) -> CallSession:
    first = request(streamingConfig=config(**setup), sequenceId="1")
    session = CallSession.open(7, endpoint, first, chunk_ms)
    assert session.accept(first, "{}", T0_MS) == Outcome(acks=["1"])
    return session


def chunk_summary(outcome: Outcome) -> list[tuple[str, int, int, int]]:
    """(track, sequence, start_sample, payload bytes) of each AudioChunk; every record must encode."""
    for record in outcome.chunks:
        CODEC.encode(AUDIO_CHUNK, record)
    return [(r["track"], r["sequence"], r["start_sample"], len(r["payload"])) for r in outcome.chunks]


def event_names(outcome: Outcome) -> list[str]:
    for record in outcome.events:
        CODEC.encode(CALL_EVENT, record)
    return [r["payload"][0].rsplit(".", 1)[1] for r in outcome.events]


# --- sequenceId ------------------------------------------------------------------------------------


def test_numeric_sequence_ids_must_increase_by_one_and_repeats_are_duplicates() -> None:
    state = Sequencer()
    verdicts = []
    for sequence_id in ["5", "6", "7", "6", "5", "7", "8"]:
        state, new = state.admit(sequence_id)
        verdicts.append(new)
    assert verdicts == [True, True, True, False, False, False, True]
    assert (state.first, state.last) == (5, 8)


@pytest.mark.parametrize(("sequence_id", "expected"), [("10", "9"), ("4", "9"), ("-1", "9")])
def test_gap_or_reordering_is_failed_precondition_naming_expected_and_got(sequence_id: str, expected: str) -> None:
    state = Sequencer(first=5, last=8)
    with pytest.raises(
        CrestaError, match=rf"sequenceId out of order: expected {expected}, got {sequence_id}"
    ) as caught:
        state.admit(sequence_id)
    assert caught.value.code is Code.FAILED_PRECONDITION
    assert caught.value.details[0]["violations"][0]["subject"] == "sequenceId"


def test_non_numeric_ids_are_unordered_and_deduplicated_over_a_window() -> None:
    state, new = Sequencer().admit("b")
    assert new
    state, new = state.admit("a")
    assert new
    assert state.admit("b") == (state, False)
    for i in range(RECENT_IDS):
        state, _ = state.admit(f"id-{i}")
    assert state.admit("b")[1] is True  # fell out of the window
    assert state.admit(f"id-{RECENT_IDS - 1}")[1] is False


def test_messages_without_sequence_id_are_always_new() -> None:
    state = Sequencer(first=1, last=3)
    assert state.admit("") == (state, True)


# --- session state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "event", "after"), [(s, e, a) for (s, e), a in TRANSITIONS.items()])
def test_transition_table(state: SessionState, event: SessionEventType, after: SessionState) -> None:
    assert next_state(state, event) is after


@pytest.mark.parametrize("event", list(SessionEventType))
def test_nothing_is_accepted_after_the_end(event: SessionEventType) -> None:
    with pytest.raises(CrestaError, match=f"sessionEvent {event.name} is not accepted in SESSION_STATE_ENDED"):
        next_state(SessionState.ENDED, event)


# --- aggregation -----------------------------------------------------------------------------------


def test_l16_odd_chunk_sizes_are_carried_and_never_dropped() -> None:
    track = TrackBuffer(frame_bytes=2, chunk_frames=160)  # 20 ms at 8 kHz
    data = bytes(range(256)) * 3
    sizes = [1, 333, 2, 101, 250, 76]  # 763 bytes in all: the last one is half a sample
    chunks = []
    at = 0
    for i, size in enumerate(sizes):
        chunks += track.append(data[at : at + size], received_ms=i)
        at += size
    chunks += track.drain(final=False)
    assert track.carry == bytearray(data[762:763])
    chunks += track.drain(final=True)
    assert [(c.sequence, c.start_sample, len(c.payload), c.received_ms) for c in chunks] == [
        (0, 0, 320, 1),
        (1, 160, 320, 4),
        (2, 320, 122, 5),
        (3, 381, 1, 5),
    ]
    assert b"".join(c.payload for c in chunks) == data[:763]
    assert track.received == track.emitted == 763


def test_drains_emit_the_partial_aggregate_then_on_final_the_partial_frame_alone() -> None:
    track = TrackBuffer(frame_bytes=2, chunk_frames=160)
    track.append(b"\x01\x02\x03", received_ms=10)
    partial = track.drain(final=False)
    assert [(c.sequence, c.start_sample, c.payload) for c in partial] == [(0, 0, b"\x01\x02")]
    assert track.drain(final=False) == []
    final = track.drain(final=True)
    assert [(c.sequence, c.start_sample, c.payload, c.received_ms) for c in final] == [(1, 1, b"\x03", 10)]


def test_stereo_half_frames_are_completed_by_the_next_bytes() -> None:
    track = TrackBuffer(frame_bytes=2, chunk_frames=3)  # mu-law stereo: 2 bytes per frame
    out = track.append(b"\xa0\xb0\xa1", 1) + track.append(b"\xb1\xa2\xb2\xa3", 2) + track.drain(final=True)
    assert [(c.sequence, c.start_sample, c.payload) for c in out] == [
        (0, 0, b"\xa0\xb0\xa1\xb1\xa2\xb2"),
        (1, 3, b"\xa3"),
    ]


def test_pause_skips_frames() -> None:
    track = TrackBuffer(frame_bytes=1, chunk_frames=0)
    assert [(c.start_sample, c.payload) for c in track.append(b"abc", 1)] == [(0, b"abc")]
    track.skip(20_000)
    assert [(c.start_sample, c.payload) for c in track.append(b"de", 2)] == [(20_003, b"de")]


# --- CallSession: a whole stream --------------------------------------------------------------------


def test_stereo_stream_acknowledges_audio_only_once_its_bytes_are_emitted() -> None:
    session = opened(chunk_ms=100)  # 800 frames = 1600 bytes of stereo mu-law per chunk
    start = {"eventType": "CALL_START", "participants": [{"role": "AGENT", "platformAgentId": "a-9"}]}
    step = session.accept(request(sessionEvent=start, sequenceId="2"), "{...}", T0_MS + 1)
    assert (event_names(step), step.acks) == (["CallStarted"], ["2"])

    step = session.accept(request(audioContent=audio(b"\xff" * 1000), sequenceId="3"), "{}", T0_MS + 2)
    assert (step.chunks, step.events, step.acks) == ([], [], [])
    assert session.waiting

    step = session.accept(request(audioContent=audio(b"\x7f" * 1001), sequenceId="4"), "{}", T0_MS + 3)
    assert (chunk_summary(step), step.acks) == ([("stereo", 0, 0, 1600)], ["3"])

    step = session.accept(request(sessionEvent={"eventType": "CALL_HOLD"}, sequenceId="5"), "{}", T0_MS + 4)
    assert (chunk_summary(step), event_names(step), step.acks) == ([("stereo", 1, 800, 400)], ["CallHeld"], ["5"])
    assert session.status() == {"state": "SESSION_STATE_ON_HOLD", "audioReceivedDuration": "0.125s"}

    step = session.accept(request(sessionEvent={"eventType": "CALL_UNHOLD"}, sequenceId="6"), "{}", T0_MS + 5)
    assert (chunk_summary(step), event_names(step), step.acks) == ([], ["CallResumed"], ["6"])

    # Message 4 left half a frame behind: it is acknowledged only once message 7 completes it and it is emitted.
    step = session.accept(request(audioContent=audio(b"\x00" * 2), sequenceId="7"), "{}", T0_MS + 6)
    assert step.acks == []
    step = session.accept(request(audioContent=audio(b"\x00" * 2), sequenceId="8"), "{}", T0_MS + 7)
    assert step.acks == []
    step = session.accept(request(sessionEvent={"eventType": "CALL_END"}, sequenceId="9"), "{}", T0_MS + 8)
    # CALL_END emits the aggregate, then the last half frame as a chunk of its own.
    assert chunk_summary(step) == [("stereo", 2, 1000, 4), ("stereo", 3, 1002, 1)]
    assert [(r["payload"], r["received_at"]) for r in step.chunks] == [
        (b"\x7f\x00\x00\x00", T0_MS + 7),
        (b"\x00", T0_MS + 7),
    ]
    assert (event_names(step), step.acks) == (["CallEnded"], ["4", "7", "8", "9"])
    assert session.status() == {"state": "SESSION_STATE_ENDED", "audioReceivedDuration": "0.125250s"}
    assert not session.waiting


def test_duplicates_are_acknowledged_without_records_once_everything_before_is_emitted() -> None:
    session = opened(chunk_ms=100, channels="CHANNEL_TYPE_MONO")
    first_audio = request(audioContent=audio(b"\x11" * 10), sequenceId="2")
    assert session.accept(first_audio, "{}", T0_MS).acks == []
    again = session.accept(first_audio, "{}", T0_MS + 1)
    assert again == Outcome()  # the original still waits for its chunk, so does the duplicate
    flushed = session.flush()
    assert (chunk_summary(flushed), flushed.acks) == ([("mixed", 0, 0, 10)], ["2", "2"])
    duplicate_config = session.accept(request(streamingConfig=config(), sequenceId="1"), "{}", T0_MS + 2)
    assert duplicate_config == Outcome(acks=["1"])


def test_pause_advances_every_track_and_tracks_that_start_later() -> None:
    session = opened(Endpoint.AUDIO, chunk_ms=100, channels="CHANNEL_TYPE_SEPARATE")
    session.accept(request(audioContent=audio(b"\x01" * 300, "AGENT"), sequenceId="2"), "{}", T0_MS)
    pause = request(audioEvent={"eventType": "PAUSE", "pauseDuration": "2.5s"}, sequenceId="3")
    step = session.accept(pause, '{"audioEvent":{}}', T0_MS + 1)
    assert chunk_summary(step) == [("agent", 0, 0, 300)]
    assert step.acks == ["2", "3"]
    [event] = step.events
    assert event["payload"] == ("io.switchboard.calls.VendorEvent", {"name": "audio.PAUSE"})
    assert event["attributes"] == {
        "profile": "default",
        "api": "streamCallSessionAudio",
        "sequenceId": "3",
        "pauseDuration": "2.5s",
    }
    session.accept(request(audioContent=audio(b"\x02" * 50, "AGENT"), sequenceId="4"), "{}", T0_MS + 2)
    session.accept(request(audioContent=audio(b"\x03" * 60, "VISITOR"), sequenceId="5"), "{}", T0_MS + 3)
    closing = session.close()
    assert chunk_summary(closing) == [("agent", 1, 20_300, 50), ("customer", 0, 20_000, 60)]
    assert [r["role"] for r in closing.chunks] == ["AGENT", "CUSTOMER"]
    assert closing.acks == ["4", "5"]
    assert session.status()["audioReceivedDuration"] == "0.043750s"  # 350 agent samples at 8 kHz, pause excluded


def test_refused_message_changes_nothing() -> None:
    session = opened(chunk_ms=100, channels="CHANNEL_TYPE_MONO")
    session.accept(request(audioContent=audio(b"\x01" * 100), sequenceId="2"), "{}", T0_MS)
    wrong_call = request(
        audioContent=audio(b"\x02" * 100), sessionEvent={"eventType": "CALL_HOLD", "platformCallId": "other"}
    )
    with pytest.raises(CrestaError, match=r"sessionEvent\.platformCallId: 'other' is not the stream's platformCallId"):
        session.accept(wrong_call.model_copy(update={"sequence_id": "3"}), "{}", T0_MS + 1)
    assert session.status() == {"state": "SESSION_STATE_ACTIVE", "audioReceivedDuration": "0.012500s"}
    step = session.accept(request(audioContent=audio(b"\x03" * 100), sequenceId="3"), "{}", T0_MS + 2)
    assert step.acks == []
    assert chunk_summary(session.close()) == [("mixed", 0, 0, 200)]


@pytest.mark.parametrize(
    ("endpoint", "channels", "body", "code", "match"),
    [
        (Endpoint.STREAM, "CHANNEL_TYPE_MONO", {"streamingConfig": config()}, 3, "only accepted in the first message"),
        (Endpoint.STREAM, "CHANNEL_TYPE_MONO", {"audioEvent": {"eventType": "RESUME"}}, 3, "only accepted on stream"),
        (Endpoint.STREAM, "CHANNEL_TYPE_SEPARATE", {"audioContent": {"audioContent": "AA"}}, 3, "role is required"),
        (Endpoint.AUDIO, "CHANNEL_TYPE_MONO", {"audioEvent": {"eventType": "PAUSE", "pauseDuration": "2"}}, 3, "'2'"),
        (Endpoint.AUDIO, "CHANNEL_TYPE_MONO", {"audioEvent": {"eventType": 1, "pauseDuration": "-1s"}}, 3, "negative"),
        (Endpoint.AUDIO, "CHANNEL_TYPE_MONO", {"sequenceId": "3"}, 9, "expected 2, got 3"),
    ],
)
def test_refusals(endpoint: Endpoint, channels: str, body: dict[str, Any], code: int, match: str) -> None:
    session = opened(endpoint, channels=channels)
    with pytest.raises(CrestaError, match=match) as caught:
        session.accept(request(**body), "{}", T0_MS)
    assert caught.value.code == code


def test_after_call_end_only_duplicates_and_empty_messages_are_accepted() -> None:
    session = opened(channels="CHANNEL_TYPE_MONO")
    session.accept(request(sessionEvent={"eventType": "CALL_END"}, sequenceId="2"), "{}", T0_MS)
    assert session.accept(request(sessionEvent={"eventType": "CALL_END"}, sequenceId="2"), "{}", T0_MS).acks == ["2"]
    assert session.accept(request(sequenceId="3"), "{}", T0_MS).acks == ["3"]
    with pytest.raises(CrestaError, match="the session of call c-77 has ended") as caught:
        session.accept(request(audioContent=audio(b"\x01"), sequenceId="4"), "{}", T0_MS)
    assert caught.value.code is Code.FAILED_PRECONDITION


def test_first_message_must_carry_a_complete_config() -> None:
    with pytest.raises(CrestaError, match="the first message of a stream must carry streamingConfig"):
        CallSession.open(1, Endpoint.STREAM, request(sessionEvent={"eventType": "CALL_START"}), 100)
    no_call_id = request(streamingConfig={**config(), "platformCallId": ""})
    with pytest.raises(CrestaError, match=r"streamingConfig\.platformCallId is required"):
        CallSession.open(1, Endpoint.STREAM, no_call_id, 100)


def test_unknown_encoding_keeps_every_message_as_its_own_chunk_counting_bytes_assumption() -> None:
    session = opened(encoding="AUDIO_ENCODING_UNSPECIFIED", rate=0, channels="CHANNEL_TYPE_UNSPECIFIED")
    first = session.accept(request(audioContent=audio(b"\x01\x02\x03"), sequenceId="2"), "{}", T0_MS)
    second = session.accept(request(audioContent=audio(b"\x04\x05"), sequenceId="3"), "{}", T0_MS)
    assert (chunk_summary(first), first.acks) == ([("mixed", 0, 0, 3)], ["2"])
    assert (chunk_summary(second), second.acks) == ([("mixed", 1, 3, 2)], ["3"])
    assert [r["codec"] for r in first.chunks] == ["UNKNOWN"]
    assert session.status()["audioReceivedDuration"] == "0s"


def test_result_chunk() -> None:
    session = opened(channels="CHANNEL_TYPE_MONO")
    assert session.result("1") == {
        "result": {
            "sessionStatus": {"state": "SESSION_STATE_ACTIVE", "audioReceivedDuration": "0s"},
            "sequenceId": "1",
            "conversationName": "customers/7/profiles/default/conversations/c-77",
        }
    }
    assert "sequenceId" not in session.result("")["result"]
