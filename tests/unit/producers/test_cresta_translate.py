"""Cresta messages → CallEvent / AudioChunk records, exactly; ids derived from content."""

from __future__ import annotations

import pytest

from producers.cresta.models import (
    AudioEncoding,
    AudioEvent,
    AudioStreamingMode,
    ChannelType,
    CrestaError,
    ProcessSessionEventRequest,
    Role,
    SessionEvent,
    parse_message,
)
from producers.cresta.translate import (
    AudioFormat,
    CallRef,
    audio_chunk_record,
    audio_event_record,
    event_id,
    process_event_record,
    session_event_record,
    track_of,
)
from schemas import AUDIO_CHUNK, CALL_EVENT, AvroCodec

CODEC = AvroCodec.default()
REF = CallRef(cid=1, call_id="c-77", profile="default", api="streamCallSession")
RECEIVED_MS = 1_740_823_260_000


def test_call_start_record() -> None:
    event = parse_message(
        SessionEvent,
        {
            "eventType": "CALL_START",
            "platformCallId": "c-77",
            "platformMasterCallId": "m-1",
            "participants": [
                {"role": "AGENT", "platformAgentId": "a-9", "user": "users/17"},
                {"role": "VISITOR", "externalUserId": "+4930123"},
                {"role": "BOT"},
            ],
            "platformTime": "2025-03-01T10:00:00.250+01:00",
            "closeActiveCalls": False,
            "payload": {"queue": "billing"},
        },
    )
    record = session_event_record(REF, event, '{"raw":1}', "2", RECEIVED_MS)
    assert record == {
        "event_id": event_id("c-77", "2", '{"raw":1}', "session.CALL_START"),
        "call_id": "c-77",
        "cid": 1,
        "source": "CRESTA",
        "occurred_at": 1_740_819_600_250,  # 09:00:00.250Z
        "received_at": RECEIVED_MS,
        "payload": (
            "io.switchboard.calls.CallStarted",
            {
                "from_number": None,
                "to_number": None,
                "direction": "UNSPECIFIED",
                "participants": [
                    {"role": "AGENT", "participant_id": "a-9"},
                    {"role": "CUSTOMER", "participant_id": "+4930123"},
                    {"role": "BOT", "participant_id": None},
                ],
                "answered": True,
            },
        ),
        "raw": '{"raw":1}',
        "attributes": {
            "profile": "default",
            "api": "streamCallSession",
            "sequenceId": "2",
            "platformMasterCallId": "m-1",
            "closeActiveCalls": "false",
            "agentId": "a-9",
            "customerId": "+4930123",
            "agentUser": "users/17",
        },
    }
    CODEC.encode(CALL_EVENT, record)


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("CALL_HOLD", ("io.switchboard.calls.CallHeld", {})),
        ("CALL_UNHOLD", ("io.switchboard.calls.CallResumed", {})),
        ("CALL_END", ("io.switchboard.calls.CallEnded", {"reason": "CALL_END", "duration_ms": None})),
        ("EVENT_TYPE_UNSPECIFIED", ("io.switchboard.calls.VendorEvent", {"name": "session.EVENT_TYPE_UNSPECIFIED"})),
    ],
)
def test_other_session_events_and_receive_time_fallback(event_type: str, payload: tuple[str, object]) -> None:
    record = session_event_record(REF, SessionEvent.model_validate({"eventType": event_type}), "{}", "", RECEIVED_MS)
    assert record["payload"] == payload
    assert record["occurred_at"] == record["received_at"] == RECEIVED_MS
    assert record["attributes"] == {"profile": "default", "api": "streamCallSession"}
    CODEC.encode(CALL_EVENT, record)


def test_event_ids_are_derived_from_content() -> None:
    a = event_id("c-77", "5", "{1}", "session.CALL_HOLD")
    assert a == event_id("c-77", "5", "{other text}", "session.CALL_HOLD")  # same sequenceId: same event
    assert a != event_id("c-77", "6", "{1}", "session.CALL_HOLD")
    assert a != event_id("c-78", "5", "{1}", "session.CALL_HOLD")
    assert a != event_id("c-77", "5", "{1}", "audio.PAUSE")
    # Without a sequenceId the message text decides.
    assert event_id("c-77", "", "{1}", "session.CALL_HOLD") == event_id("c-77", "", "{1}", "session.CALL_HOLD")
    assert event_id("c-77", "", "{1}", "session.CALL_HOLD") != event_id("c-77", "", "{2}", "session.CALL_HOLD")
    assert a.startswith("cresta-") and len(a) == 39


def test_audio_event_record_keeps_pause_duration_as_given() -> None:
    event = AudioEvent.model_validate({"eventType": "RESUME", "pauseDuration": "string"})
    record = audio_event_record(REF, event, "{}", "9", RECEIVED_MS)
    assert record["payload"] == ("io.switchboard.calls.VendorEvent", {"name": "audio.RESUME"})
    assert record["attributes"] == {
        "profile": "default",
        "api": "streamCallSession",
        "sequenceId": "9",
        "pauseDuration": "string",
    }
    CODEC.encode(CALL_EVENT, record)


@pytest.mark.parametrize(
    ("encoding", "channel_type", "expected"),
    [
        (AudioEncoding.LINEAR16, ChannelType.CHANNEL_TYPE_MONO, ("L16_LE", 1, 2, 800)),
        (AudioEncoding.MULAW, ChannelType.CHANNEL_TYPE_STEREO, ("PCMU", 2, 2, 800)),
        (AudioEncoding.ALAW, ChannelType.CHANNEL_TYPE_SEPARATE, ("PCMA", 1, 1, 800)),
        (AudioEncoding.AUDIO_ENCODING_UNSPECIFIED, ChannelType.CHANNEL_TYPE_STEREO, ("UNKNOWN", 2, 1, 0)),
    ],
)
def test_audio_format(encoding: AudioEncoding, channel_type: ChannelType, expected: tuple[str, int, int, int]) -> None:
    audio = AudioFormat.of(encoding, 8000, channel_type)
    assert (audio.codec, audio.channels, audio.frame_bytes, audio.chunk_frames(100)) == expected


@pytest.mark.parametrize(
    ("channel_type", "role", "track"),
    [
        (ChannelType.CHANNEL_TYPE_STEREO, Role.AGENT, ("stereo", "UNSPECIFIED")),
        (ChannelType.CHANNEL_TYPE_MONO, Role.CUSTOMER, ("mixed", "UNSPECIFIED")),
        (ChannelType.CHANNEL_TYPE_UNSPECIFIED, Role.AGENT, ("mixed", "UNSPECIFIED")),
        (ChannelType.CHANNEL_TYPE_SEPARATE, Role.AGENT, ("agent", "AGENT")),
        (ChannelType.CHANNEL_TYPE_SEPARATE, Role.SUPERVISOR, ("supervisor", "SUPERVISOR")),
    ],
)
def test_tracks(channel_type: ChannelType, role: Role, track: tuple[str, str]) -> None:
    assert track_of(channel_type, role) == track


def test_audio_chunk_record() -> None:
    audio = AudioFormat.of(AudioEncoding.LINEAR16, 16000, ChannelType.CHANNEL_TYPE_SEPARATE)
    record = audio_chunk_record(REF, audio, ("agent", "AGENT"), 3, 9600, b"\x01\x00", RECEIVED_MS)
    assert record == {
        "call_id": "c-77",
        "cid": 1,
        "track": "agent",
        "role": "AGENT",
        "codec": "L16_LE",
        "sample_rate": 16000,
        "channels": 1,
        "sequence": 3,
        "start_sample": 9600,
        "media_timestamp_ms": None,
        "received_at": RECEIVED_MS,
        "payload": b"\x01\x00",
    }
    CODEC.encode(AUDIO_CHUNK, record)


def test_process_event_record_needs_a_call_id() -> None:
    body = parse_message(
        ProcessSessionEventRequest,
        {"sessionEvent": {"eventType": "CALL_END", "platformCallId": "c-9"}, "audioStreamingMode": 2},
    )
    record = process_event_record(5, "sales", body.session_event, body.audio_streaming_mode, "{}", RECEIVED_MS)
    assert (record["call_id"], record["cid"]) == ("c-9", 5)
    assert record["attributes"] == {
        "profile": "sales",
        "api": "sessionEvent:process",
        "audioStreamingMode": "AUDIO_STREAMING_MODE_SIPREC",
    }
    with pytest.raises(CrestaError, match=r"sessionEvent\.platformCallId is required"):
        process_event_record(5, "sales", SessionEvent(), AudioStreamingMode.AUDIO_STREAMING_MODE_API, "{}", 0)
