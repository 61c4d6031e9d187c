"""Cresta wire contract: enum parsing (names, numbers, aliases), field names, base64, Duration, message framing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from producers.cresta.framing import Frame, JsonObjectSplitter, decode_object
from producers.cresta.models import (
    AudioEncoding,
    AudioEventType,
    AudioStreamingMode,
    ChannelType,
    Code,
    CrestaError,
    ProcessSessionEventRequest,
    Role,
    SessionEventType,
    StreamRequest,
    decode_base64,
    format_duration,
    parse_duration,
    parse_enum,
    parse_message,
)

# The bodies of the seed's curl examples (004), unchanged.
SEED_STREAM_CALL_SESSION: dict[str, Any] = {
    "streamingConfig": {
        "profile": "string",
        "audioMetadata": {"sampleRateHertz": 0, "encoding": "AUDIO_ENCODING_UNSPECIFIED"},
        "channelType": "CHANNEL_TYPE_UNSPECIFIED",
        "platformCallId": "string",
    },
    "audioContent": {
        "audioContent": "string",
        "participant": {
            "role": "ROLE_UNSPECIFIED",
            "user": "string",
            "platformAgentId": "string",
            "externalUserId": "string",
        },
    },
    "sessionEvent": {
        "eventType": "EVENT_TYPE_UNSPECIFIED",
        "platformCallId": "string",
        "platformMasterCallId": "string",
        "participants": [
            {"role": "ROLE_UNSPECIFIED", "user": "string", "platformAgentId": "string", "externalUserId": "string"}
        ],
        "platformTime": "2019-08-24T14:15:22Z",
        "payload": {},
        "closeActiveCalls": True,
    },
    "sequenceId": "string",
}


# --- enums ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (AudioEncoding, "LINEAR16", AudioEncoding.LINEAR16),
        (AudioEncoding, "MULAW", AudioEncoding.MULAW),
        (AudioEncoding, 3, AudioEncoding.ALAW),
        (AudioEncoding, "2", AudioEncoding.MULAW),
        (AudioEncoding, 0, AudioEncoding.AUDIO_ENCODING_UNSPECIFIED),
        (ChannelType, "CHANNEL_TYPE_SEPARATE", ChannelType.CHANNEL_TYPE_SEPARATE),
        (ChannelType, 2, ChannelType.CHANNEL_TYPE_STEREO),
        (Role, 4, Role.SUPERVISOR),
        (SessionEventType, 4, SessionEventType.CALL_END),
        (SessionEventType, "CALL_UNHOLD", SessionEventType.CALL_UNHOLD),
        (AudioEventType, 1, AudioEventType.PAUSE),
        (AudioStreamingMode, "AUDIO_STREAMING_MODE_SIPREC", AudioStreamingMode.AUDIO_STREAMING_MODE_SIPREC),
        (AudioStreamingMode, 3, AudioStreamingMode.AUDIO_STREAMING_MODE_AGENT_DESKTOP),
    ],
)
def test_enum_by_name_and_by_proto_ordinal_assumption(kind: type[Any], value: object, expected: object) -> None:
    assert parse_enum(kind, value) is expected


@pytest.mark.parametrize(
    ("kind", "alias", "expected"),
    [
        (AudioEncoding, "AUDIO_ENCODING_LINEAR_16", AudioEncoding.LINEAR16),
        (AudioEncoding, "LINEAR_PCM", AudioEncoding.LINEAR16),
        (AudioEncoding, "AUDIO_ENCODING_MULAW", AudioEncoding.MULAW),
        (AudioEncoding, "PCMU", AudioEncoding.MULAW),
        (AudioEncoding, "PCMA", AudioEncoding.ALAW),
        (Role, "VISITOR", Role.CUSTOMER),
    ],
)
def test_enum_aliases_assumption(kind: type[Any], alias: str, expected: object) -> None:
    assert parse_enum(kind, alias) is expected


@pytest.mark.parametrize("value", ["mulaw", "OPUS", 4, -1, True, 2.0, None])
def test_unknown_enum_value_is_refused_naming_it(value: object) -> None:
    with pytest.raises(ValueError, match=rf"unknown AudioEncoding value {value!r}: expected one of .*MULAW \(2\)"):
        parse_enum(AudioEncoding, value)


def test_unknown_enum_in_a_message_names_the_field_and_the_value() -> None:
    with pytest.raises(CrestaError) as caught:
        parse_message(StreamRequest, {"streamingConfig": {"audioMetadata": {"encoding": "OPUS"}}})
    error = caught.value
    assert error.code is Code.INVALID_ARGUMENT
    assert error.http_status == 400
    assert error.message.startswith("streamingConfig.audioMetadata.encoding: unknown AudioEncoding value 'OPUS'")
    assert error.details[0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error.details[0]["fieldViolations"][0]["field"] == "streamingConfig.audioMetadata.encoding"


def test_unknown_participant_role_names_its_index() -> None:
    with pytest.raises(CrestaError, match=r"sessionEvent\.participants\[1\]\.role: unknown Role value 'BOSS'"):
        parse_message(StreamRequest, {"sessionEvent": {"participants": [{"role": "AGENT"}, {"role": "BOSS"}]}})


# --- messages ---------------------------------------------------------------------------------------


def test_seed_curl_body_parses_unchanged() -> None:
    message = parse_message(StreamRequest, SEED_STREAM_CALL_SESSION)
    assert message.streaming_config is not None
    assert message.streaming_config.platform_call_id == "string"
    assert message.streaming_config.audio_metadata.encoding is AudioEncoding.AUDIO_ENCODING_UNSPECIFIED
    assert message.audio_content is not None
    assert message.audio_content.audio_content == bytes.fromhex("b2dae29e")  # "string" is 4.5 bytes of base64
    assert message.session_event is not None
    assert message.session_event.platform_time == datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)
    assert message.session_event.close_active_calls is True
    assert message.sequence_id == "string"


def test_snake_case_names_numbers_as_strings_and_nulls_are_accepted() -> None:
    message = parse_message(
        StreamRequest,
        {
            "streaming_config": {
                "profile": "p",
                "audio_metadata": {"sample_rate_hertz": "16000", "encoding": "LINEAR16"},
                "channel_type": 3,
                "platform_call_id": 77,
            },
            "session_event": {"event_type": "CALL_START", "platform_time": None, "close_active_calls": None},
            "sequence_id": 12,
        },
    )
    assert message.streaming_config is not None
    assert message.streaming_config.audio_metadata.sample_rate_hertz == 16000
    assert message.streaming_config.channel_type is ChannelType.CHANNEL_TYPE_SEPARATE
    assert message.streaming_config.platform_call_id == "77"
    assert message.session_event is not None
    assert message.session_event.platform_time is None
    assert message.session_event.close_active_calls is None
    assert message.sequence_id == "12"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"streamingConfig": {"audioMetadata": {"sampleRateHertz": -8000}}}, "streamingConfig.audioMetadata"),
        ({"streamingConfig": {"audioMetadata": {"sampleRateHertz": "fast"}}}, "streamingConfig.audioMetadata"),
        ({"sessionEvent": {"platformTime": "yesterday"}}, "sessionEvent.platformTime"),
        ({"sessionEvent": {"payload": [1, 2]}}, "sessionEvent.payload"),
        ({"audioContent": {"audioContent": 12}}, "audioContent.audioContent"),
        ({"sessionEvent": {"participants": "agent"}}, "sessionEvent.participants"),
    ],
)
def test_wrong_types_are_invalid_argument_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(CrestaError) as caught:
        parse_message(StreamRequest, body)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert caught.value.message.startswith(field)


def test_unary_body_needs_a_session_event_and_accepts_the_seed() -> None:
    seed = {
        "sessionEvent": {**SEED_STREAM_CALL_SESSION["sessionEvent"]},
        "audioStreamingMode": "AUDIO_STREAMING_MODE_UNSPECIFIED",
    }
    parsed = parse_message(ProcessSessionEventRequest, seed)
    assert parsed.audio_streaming_mode is AudioStreamingMode.AUDIO_STREAMING_MODE_UNSPECIFIED
    with pytest.raises(CrestaError, match=r"^sessionEvent: Field required"):
        parse_message(ProcessSessionEventRequest, {"audioStreamingMode": 1})


# --- scalars ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("//7+/Q==", b"\xff\xfe\xfe\xfd"),
        ("__7-_Q==", b"\xff\xfe\xfe\xfd"),  # url-safe
        ("__7-_Q", b"\xff\xfe\xfe\xfd"),  # url-safe, unpadded
        ("AAEC", b"\x00\x01\x02"),
        ("", b""),
    ],
)
def test_base64_standard_and_url_safe(text: str, expected: bytes) -> None:
    assert decode_base64(text) == expected


@pytest.mark.parametrize("text", ["@@@@", "AA=A", "A", "AAAA*", "ab cd"])
def test_bad_base64_is_refused_naming_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=rf"not valid base64 .*{text[:4]}"):
        decode_base64(text)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [("2.5s", 2_500_000_000), ("0s", 0), ("3s", 3_000_000_000), ("0.000000001s", 1), ("-1.5s", -1_500_000_000)],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize("text", ["2.5", "string", "1m", "1.0000000001s", ""])
def test_parse_duration_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a Duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0s"), (12_300_000_000, "12.300s"), (1_000_001_000, "1.000001s"), (5, "0.000000005s"), (60 * 10**9, "60s")],
)
def test_format_duration_uses_0_3_6_or_9_digits(nanos: int, text: str) -> None:
    assert format_duration(nanos) == text


# --- framing ----------------------------------------------------------------------------------------

PROTOCOL_LINES = (
    b'{"streamingConfig":{"profile":"default","audioMetadata":{"sampleRateHertz":8000,"encoding":"MULAW"},'
    b'"channelType":"CHANNEL_TYPE_STEREO","platformCallId":"c-77"},"sequenceId":"1"}\n'
    b'{"sessionEvent":{"eventType":"CALL_START","platformCallId":"c-77","participants":[{"role":"AGENT",'
    b'"platformAgentId":"a-9"},{"role":"CUSTOMER","externalUserId":"+4930123"}],'
    b'"platformTime":"2025-03-01T10:00:00Z"},"sequenceId":"2"}\n'
    b'{"audioContent":{"audioContent":"//7+/f...","participant":{"role":"CUSTOMER"}},"sequenceId":"3"}\n'
)


def _split(data: bytes, step: int, max_bytes: int = 10_000) -> list[Frame]:
    splitter = JsonObjectSplitter(max_bytes)
    frames = [frame for at in range(0, len(data), step) for frame in splitter.feed(data[at : at + step])]
    splitter.end()
    return frames


@pytest.mark.parametrize("step", [1, 2, 7, 64, 10_000])
def test_splitter_finds_the_protocol_lines_whatever_the_chunking(step: int) -> None:
    frames = _split(PROTOCOL_LINES, step)
    assert [f.value for f in frames] == [json.loads(line) for line in PROTOCOL_LINES.splitlines()]
    assert [f.text.encode() for f in frames] == PROTOCOL_LINES.splitlines()


def test_splitter_accepts_several_objects_on_a_line_and_one_across_lines() -> None:
    body = b' {"a":1}{"b":"}{"}\t{"c":\n  [1, {"d": "\\"x\\\\"}]\n}\r\n\n'
    frames = _split(body, 3)
    assert [f.value for f in frames] == [{"a": 1}, {"b": "}{"}, {"c": [1, {"d": '"x\\'}]}]


def test_splitter_keeps_utf8_split_across_chunks() -> None:
    body = '{"user":"Jürgen ☎"}'.encode()
    assert [f.value for f in _split(body, 1)] == [{"user": "Jürgen ☎"}]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"a":1}\n{"b": tru}\n', r"message 2 is not valid JSON: Expecting value"),
        (b'{"a":1} [1,2]', r"message 2 is not a JSON object: b'\[1,2"),
        (b"42\n", r"message 1 is not a JSON object"),
        (b'{"a":"\xff"}', r"message 1 is not UTF-8"),
        (b'{"a":1}{"b":', r"the body ended inside message 2 \(5 bytes unterminated\)"),
        (b'{"a":[1}', r"the body ended inside message 1"),
    ],
)
def test_splitter_refuses_malformed_input(body: bytes, match: str) -> None:
    with pytest.raises(CrestaError, match=match) as caught:
        _split(body, 4)
    assert caught.value.code is Code.INVALID_ARGUMENT


def test_malformed_object_is_reported_when_complete_not_at_body_end() -> None:
    splitter = JsonObjectSplitter(1000)
    assert list(splitter.feed(b'{"a":1}\n{"b":')) == [Frame('{"a":1}', {"a": 1})]
    with pytest.raises(CrestaError, match="message 2 is not valid JSON"):
        list(splitter.feed(b' nope}\n{"c":'))


def test_oversize_message_is_resource_exhausted_before_it_is_complete() -> None:
    splitter = JsonObjectSplitter(64)
    with pytest.raises(CrestaError, match="message of 70 bytes exceeds the limit of 64 bytes") as caught:
        list(splitter.feed(b'{"audioContent":{"audioContent":"' + b"A" * 37))
    assert caught.value.code is Code.RESOURCE_EXHAUSTED
    assert caught.value.http_status == 429


def test_complete_oversize_message_is_refused() -> None:
    with pytest.raises(CrestaError, match="message of 70 bytes exceeds the limit of 64"):
        list(JsonObjectSplitter(64).feed(b'{"a":"' + b"B" * 62 + b'"}'))


def test_messages_before_a_malformed_one_in_the_same_data_are_delivered_first() -> None:
    frames = JsonObjectSplitter(1000).feed(b'{"a":1} {"b":2} {"c":} {"d":4}')
    assert [next(frames).value, next(frames).value] == [{"a": 1}, {"b": 2}]
    with pytest.raises(CrestaError, match="message 3 is not valid JSON"):
        next(frames)


def test_websocket_frame_must_be_exactly_one_object() -> None:
    assert decode_object(' {"a": 1}\n', 1, 100) == Frame('{"a": 1}', {"a": 1})
    with pytest.raises(CrestaError, match="message 3 has text after its JSON object"):
        decode_object('{"a": 1}{"b": 2}', 3, 100)
    with pytest.raises(CrestaError, match="message 1 is not a JSON object"):
        decode_object(b'"text"', 1, 100)
    with pytest.raises(CrestaError, match="message of 13 bytes exceeds the limit of 10 bytes"):
        decode_object('{"a": "ää"}', 1, 10)
