"""The Telnyx wire contract: streaming commands, JSON:API errors, media frames."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from producers.telnyx.errors import FrameError
from producers.telnyx.models import (
    ApiError,
    ConnectedFrame,
    ErrorFrame,
    Frame,
    MediaFrame,
    StartFrame,
    StreamingStart,
    StreamingStop,
    parse_frame,
    validation_errors,
)

SEED_REQUEST = {
    "stream_url": "wss://www.example.com/websocket",
    "stream_track": "both_tracks",
    "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
    "command_id": "891510ac-f3e4-11e8-af5b-de00688a4901",
    "enable_dialogflow": False,
    "dialogflow_config": {"analyze_sentiment": False, "partial_automated_agent_reply": False},
}


def errors_of(model: type[StreamingStart] | type[StreamingStop], body: dict[str, Any]) -> list[ApiError]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return validation_errors(caught.value)


def test_the_seed_request_is_accepted_with_documented_defaults() -> None:
    command = StreamingStart.model_validate(SEED_REQUEST)
    assert command.stream_track == "both_tracks"
    assert command.stream_codec == "default"
    assert command.stream_bidirectional_mode == "mp3"
    assert command.stream_bidirectional_codec == "PCMU"
    assert command.stream_bidirectional_sampling_rate == 8000
    assert command.stream_bidirectional_target_legs == "opposite"
    assert command.dialogflow_config is not None and command.dialogflow_config.analyze_sentiment is False


def test_defaults_of_an_empty_start() -> None:
    command = StreamingStart.model_validate({})
    assert (command.stream_track, command.stream_url, command.client_state) == ("inbound_track", None, None)


def test_numbers_and_booleans_sent_as_strings_are_accepted_and_unknown_fields_kept() -> None:
    command = StreamingStart.model_validate(
        {"stream_bidirectional_sampling_rate": "16000", "enable_dialogflow": "true", "vendor_new": 1}
    )
    assert command.stream_bidirectional_sampling_rate == 16000
    assert command.enable_dialogflow is True
    assert command.model_dump()["vendor_new"] == 1


@pytest.mark.parametrize(
    ("body", "pointer", "shown"),
    [
        ({"stream_track": "inbound"}, "/stream_track", "(got 'inbound')"),
        ({"stream_bidirectional_codec": "pcmu"}, "/stream_bidirectional_codec", "(got 'pcmu')"),  # case-sensitive
        ({"stream_bidirectional_mode": "wav"}, "/stream_bidirectional_mode", "(got 'wav')"),
        ({"stream_bidirectional_target_legs": "all"}, "/stream_bidirectional_target_legs", "(got 'all')"),
        ({"stream_codec": "MP3"}, "/stream_codec", "(got 'MP3')"),
        ({"stream_bidirectional_sampling_rate": 11025}, "/stream_bidirectional_sampling_rate", "rate 11025 is"),
        ({"enable_dialogflow": "maybe"}, "/enable_dialogflow", "(got 'maybe')"),
        ({"dialogflow_config": {"analyze_sentiment": []}}, "/dialogflow_config/analyze_sentiment", "(got [])"),
        ({"command_id": 7}, "/command_id", "(got 7)"),
    ],
)
def test_bad_values_become_10015_errors_pointing_at_the_field(body: dict[str, Any], pointer: str, shown: str) -> None:
    (error,) = errors_of(StreamingStart, body)
    assert (error.code, error.title, error.pointer) == ("10015", "Invalid parameter", pointer)
    assert shown in error.detail


def test_client_state_must_be_base64() -> None:
    (error,) = errors_of(StreamingStop, {"client_state": "not base64!"})
    body = error.to_json()
    assert body.pop("detail").startswith("client_state 'not base64!' is not valid base64: ")
    assert body == {"code": "10015", "title": "Invalid parameter", "source": {"pointer": "/client_state"}}


def test_stream_url_must_be_a_websocket_url() -> None:
    (error,) = errors_of(StreamingStart, {"stream_url": "https://example.com/ws"})
    assert (error.code, error.title, error.pointer) == ("10003", "Invalid URL", "/stream_url")
    assert "'https://example.com/ws'" in error.detail


def test_every_bad_field_is_reported() -> None:
    found = errors_of(StreamingStart, {"stream_track": "x", "client_state": "%%%"})
    assert [e.pointer for e in found] == ["/client_state", "/stream_track"]


def test_frames_parse_by_event_with_lenient_numbers() -> None:
    frame = parse_frame(
        '{"event":"media","sequence_number":"4","stream_id":"s","media":'
        '{"track":"inbound","chunk":"2","timestamp":"5","payload":"AAE="}}'
    )
    assert isinstance(frame, MediaFrame)
    assert (frame.sequence_number, frame.media.chunk, frame.media.timestamp) == (4, 2, 5)
    assert frame.media.audio() == b"\x00\x01"
    assert isinstance(parse_frame('{"event":"connected","version":"1.0.0"}'), ConnectedFrame)


def test_start_frame_sample_from_protocols() -> None:
    frame = parse_frame(
        '{"event":"start","sequence_number":"1","stream_id":"32DE0DEA","start":{"user_id":"3E6F995F",'
        '"call_control_id":"v3:T02l","call_session_id":"ff55a038","from":"+13122010094","to":"+13122123456",'
        '"tags":["TAG1"],"client_state":"aGF2ZQ==","custom_parameters":{"customer_id":"c-1"},'
        '"media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}}'
    )
    assert isinstance(frame, StartFrame)
    assert (frame.start.from_number, frame.start.to_number) == ("+13122010094", "+13122123456")
    assert frame.start.media_format.encoding == "PCMU"


def test_error_frame_body_under_payload_or_error() -> None:
    a = parse_frame('{"event":"error","payload":{"code":100002,"title":"Oops","detail":"bad media"}}')
    b = parse_frame('{"event":"error","error":{"title":"Oops"}}')
    assert isinstance(a, ErrorFrame) and isinstance(b, ErrorFrame)
    assert (a.body.text(), b.body.text()) == ("100002 Oops: bad media", "Oops")
    with pytest.raises(FrameError, match="neither 'payload' nor 'error'"):
        parse_frame('{"event":"error"}')


def test_unknown_events_parse_as_plain_frames() -> None:
    frame = parse_frame('{"event":"transcription","stream_id":"s","text":"hi"}')
    assert type(frame) is Frame and frame.event == "transcription"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"event":"media",', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event": 5}', "not a JSON object with a string 'event'"),
        ('{"event":"media","media":{"payload":5}}', "invalid media frame: media.payload"),
        ('{"event":"media","media":{"track":"mixed","payload":""}}', "media.track"),
        ('{"event":"start","stream_id":"s","start":{"media_format":{"encoding":"PCMU"}}}', "start.call_control_id"),
        ('{"event":"media","media":{"chunk":"two","payload":""}}', "media.chunk"),
    ],
)
def test_malformed_frames_raise_frame_errors_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        parse_frame(text)


def test_bad_base64_payload_is_a_frame_error() -> None:
    frame = parse_frame('{"event":"media","media":{"payload":"@@@"}}')
    assert isinstance(frame, MediaFrame)
    with pytest.raises(FrameError, match=r"media.payload '@@@' is not valid base64"):
        frame.media.audio()
