"""Telnyx commands and frames as records: event ids, attributes, redaction, roles, AudioChunks; the TTL memory."""

from __future__ import annotations

import orjson

from producers.telnyx.calls import CallMemory, TtlCache
from producers.telnyx.media import Piece, audio_format
from producers.telnyx.models import StartFrame, StreamingStart, StreamingStop, parse_frame
from producers.telnyx.translate import (
    StreamInfo,
    audio_chunk,
    command_event,
    event_id,
    redact_url,
    redacted_body,
    started_events,
    track_roles,
)
from schemas import AUDIO_CHUNK, CALL_EVENT, AvroCodec

CODEC = AvroCodec.default()
START = (
    '{"event":"start","sequence_number":"1","stream_id":"32DE0DEA","start":{"user_id":"3E6F995F",'
    '"call_control_id":"v3:T02l","call_session_id":"ff55a038","from":"+13122010094","to":"+13122123456",'
    '"tags":["TAG1"],"client_state":"aGF2ZQ==","custom_parameters":{"customer_id":"c-1"},'
    '"media_format":{"encoding":"G722","sample_rate":8000,"channels":1}}}'
)


def info(**overrides: object) -> StreamInfo:
    values: dict[str, object] = {
        "call_control_id": "v3:T02l",
        "cid": 1,
        "stream_id": "32DE0DEA",
        "fmt": audio_format("G722", 8000, 1),
        "call_session_id": "ff55a038",
        "client_state": "aGF2ZQ==",
    }
    return StreamInfo(**(values | overrides))  # type: ignore[arg-type]


def test_command_event_with_command_id_has_an_id_from_call_and_command_only() -> None:
    command = StreamingStart.model_validate(
        {
            "stream_url": "wss://gw/telnyx/media/1",
            "stream_track": "both_tracks",
            "client_state": "aGF2ZQ==",
            "command_id": "c-1",
            "stream_codec": "PCMA",
        }
    )
    one = command_event(
        call_control_id="v3:x", cid=1, action="streaming_start", command=command, raw="{}", received_ms=1_000
    )
    again = command_event(
        call_control_id="v3:x", cid=1, action="streaming_start", command=command, raw="{ }", received_ms=9_000
    )
    other_call = command_event(
        call_control_id="v3:y", cid=1, action="streaming_start", command=command, raw="{}", received_ms=1_000
    )
    assert one["event_id"] == again["event_id"] == event_id("command", "v3:x", "c-1")
    assert other_call["event_id"] != one["event_id"]
    assert one["payload"] == ("io.switchboard.calls.VendorEvent", {"name": "streaming_start"})
    assert one["attributes"] == {
        "stream_url": "wss://gw/telnyx/media/1",
        "stream_track": "both_tracks",
        "codec": "PCMA",
        "client_state": "aGF2ZQ==",
        "command_id": "c-1",
        "stream_bidirectional_mode": "mp3",
        "stream_bidirectional_codec": "PCMU",
        "stream_bidirectional_sampling_rate": "8000",
        "stream_bidirectional_target_legs": "opposite",
        "enable_dialogflow": "false",
    }
    assert (one["source"], one["call_id"], one["occurred_at"], one["received_at"]) == ("TELNYX", "v3:x", 1000, 1000)
    CODEC.encode(CALL_EVENT, one)  # valid against the schema


def test_command_event_without_command_id_depends_on_content_and_receive_time() -> None:
    command = StreamingStop.model_validate({})
    a = command_event(call_control_id="v3:x", cid=1, action="streaming_stop", command=command, raw="{}", received_ms=1)
    b = command_event(call_control_id="v3:x", cid=1, action="streaming_stop", command=command, raw="{}", received_ms=2)
    assert a["event_id"] != b["event_id"]


def test_secrets_are_redacted_from_raw_and_attributes() -> None:
    data = {"stream_url": "wss://gw/telnyx/media/1?token=key-tenant-1&x=1", "stream_auth_token": "s3cret"}
    body = orjson.dumps(data)
    raw = redacted_body(body, data)
    assert orjson.loads(raw) == {
        "stream_url": "wss://gw/telnyx/media/1?token=<redacted>&x=1",
        "stream_auth_token": "<redacted>",
    }
    command = StreamingStart.model_validate(data)
    event = command_event(
        call_control_id="v3:x", cid=1, action="streaming_start", command=command, raw=raw, received_ms=1
    )
    assert "s3cret" not in str(event) and "key-tenant-1" not in str(event)
    assert redacted_body(b'{"stream_track":"both_tracks"}', {"stream_track": "both_tracks"}) == (
        '{"stream_track":"both_tracks"}'
    )
    assert redact_url("wss://gw/telnyx/media/1") == "wss://gw/telnyx/media/1"


def test_roles_default_to_customer_inbound_agent_outbound_and_can_be_overridden() -> None:
    assert track_roles({}) == ({"inbound": "CUSTOMER", "outbound": "AGENT"}, [])
    assert track_roles({"inbound_role": "agent", "outbound_role": "CUSTOMER"}) == (
        {"inbound": "AGENT", "outbound": "CUSTOMER"},
        [],
    )
    roles, problems = track_roles({"inbound_role": "caller"})
    assert roles == {"inbound": "CUSTOMER", "outbound": "AGENT"}
    assert problems == [
        "custom_parameters.inbound_role 'caller' is not one of "
        "['AGENT', 'BOT', 'CUSTOMER', 'SUPERVISOR', 'UNSPECIFIED']"
    ]


def test_start_gives_stream_started_with_the_true_rate_and_call_started_answered() -> None:
    frame = parse_frame(START)
    assert isinstance(frame, StartFrame)
    stream, call = started_events(info(), frame, START, 5_000)
    assert stream["payload"] == (
        "io.switchboard.calls.StreamStarted",
        {"stream_id": "32DE0DEA", "codec": "G722", "sample_rate": 16000, "channels": 1},
    )
    assert stream["event_id"] == event_id("stream", "v3:T02l", "32DE0DEA", "start")
    assert stream["attributes"] == {
        "stream_id": "32DE0DEA",
        "call_session_id": "ff55a038",
        "client_state": "aGF2ZQ==",
        "encoding": "G722",
        "announced_sample_rate": "8000",
        "user_id": "3E6F995F",
        "from": "+13122010094",
        "to": "+13122123456",
        "tags": '["TAG1"]',
        "custom_parameters": '{"customer_id":"c-1"}',
    }
    assert call["payload"] == (
        "io.switchboard.calls.CallStarted",
        {"from_number": "+13122010094", "to_number": "+13122123456", "answered": True},
    )
    assert call["event_id"] == event_id("call_started", "v3:T02l")  # the same for every stream of the call
    assert call["raw"] == stream["raw"] == START
    for record in (stream, call):
        CODEC.encode(CALL_EVENT, record)


def test_audio_chunk_of_a_piece() -> None:
    piece = Piece("outbound", 3, 4800, 300, 7_000, b"\x01" * 160, 320)
    chunk = audio_chunk(info(roles={"inbound": "AGENT", "outbound": "CUSTOMER"}), piece)
    assert chunk == {
        "call_id": "v3:T02l",
        "cid": 1,
        "track": "outbound",
        "role": "CUSTOMER",
        "codec": "G722",
        "sample_rate": 16000,
        "channels": 1,
        "sequence": 3,
        "start_sample": 4800,
        "media_timestamp_ms": 300,
        "received_at": 7_000,
        "payload": b"\x01" * 160,
    }
    CODEC.encode(AUDIO_CHUNK, chunk)


def test_ttl_cache_expires_and_evicts_the_oldest_write() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_ms=100, max_entries=2)
    cache.put("a", 1, now_ms=0)
    cache.put("b", 2, now_ms=10)
    assert (cache.get("a", 99), cache.get("a", 100)) == (1, None)
    cache.put("a", 3, now_ms=20)  # rewritten: now the newest
    cache.put("c", 4, now_ms=30)  # over capacity: "b" (oldest write) goes
    assert (cache.get("a", 30), cache.get("b", 30), cache.get("c", 30)) == (3, None, 4)
    cache.put("d", 5, now_ms=500)  # everything else expired
    assert len(cache) == 1


def test_call_memory_is_bounded() -> None:
    memory = CallMemory.create(max_entries=3, ttl_ms=1_000)
    for n in range(10):
        memory.commands.put(("call", str(n)), True, now_ms=n)
    assert len(memory.commands) == 3
    assert memory.commands.get(("call", "9"), 9) is True and memory.commands.get(("call", "0"), 9) is None
