"""Cresta streamCallSession / streamCallSessionAudio through the served gateway, over HTTP NDJSON and WebSocket.

Real clients (httpx, websockets, a raw socket for full duplex), the real broker, records read back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from infra.settings import Settings
from producers.cresta.translate import event_id
from tests.harness import RunningGateway, running_gateway

NOW_MS = 1_740_823_230_000
NOW = datetime.fromtimestamp(NOW_MS / 1000, UTC)
STREAM = "/v1/voicecallsession/streamCallSession"
AUDIO = "/v1/voicecallsession/streamCallSessionAudio"
KEY = {"Authorization": "Bearer key-tenant-1"}
CONVERSATION = "customers/1/profiles/default/conversations/c-77"

# PROTOCOLS.md §4.3, unchanged.
PROTOCOL_LINES = [
    '{"streamingConfig":{"profile":"default","audioMetadata":{"sampleRateHertz":8000,"encoding":"MULAW"},'
    '"channelType":"CHANNEL_TYPE_STEREO","platformCallId":"c-77"},"sequenceId":"1"}',
    '{"sessionEvent":{"eventType":"CALL_START","platformCallId":"c-77","participants":[{"role":"AGENT",'
    '"platformAgentId":"a-9"},{"role":"CUSTOMER","externalUserId":"+4930123"}],'
    '"platformTime":"2025-03-01T10:00:00Z"},"sequenceId":"2"}',
    '{"audioContent":{"audioContent":"//7+/f...","participant":{"role":"CUSTOMER"}},"sequenceId":"3"}',
]


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def config(seq: str, encoding: Any = "MULAW", channels: Any = "CHANNEL_TYPE_STEREO", rate: int = 8000) -> str:
    metadata = {"sampleRateHertz": rate, "encoding": encoding}
    body = {"profile": "default", "audioMetadata": metadata, "channelType": channels, "platformCallId": "c-77"}
    return dumps({"streamingConfig": body, "sequenceId": seq})


def event(seq: str, kind: str, at: str | None = None, **extra: Any) -> str:
    body = {"eventType": kind, "platformCallId": "c-77", **extra}
    if at is not None:
        body["platformTime"] = at
    return dumps({"sessionEvent": body, "sequenceId": seq})


def audio(seq: str, data: bytes, role: str = "CUSTOMER") -> str:
    content = {"audioContent": base64.b64encode(data).decode(), "participant": {"role": role}}
    return dumps({"audioContent": content, "sequenceId": seq})


def result(seq: str, state: str = "ACTIVE", duration: str = "0s") -> dict[str, Any]:
    status = {"state": f"SESSION_STATE_{state}", "audioReceivedDuration": duration}
    return {"result": {"sessionStatus": status, "sequenceId": seq, "conversationName": CONVERSATION}}


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


@asynccontextmanager
async def gateway(settings: Settings, **overrides: Any) -> AsyncIterator[RunningGateway]:
    """The gateway with a fixed clock; idle flushes effectively off unless overridden (records are then exact)."""
    async with running_gateway(settings, **({"cresta_idle_flush_ms": 60_000} | overrides)) as gw:
        gw.ctx.clock_ms = lambda: NOW_MS
        yield gw


async def post(
    gw: RunningGateway, path: str, lines: list[str], headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        body = "\n".join(lines) + "\n"
        return await client.post(gw.url + path, content=body, headers=KEY if headers is None else headers)


async def over_websocket(gw: RunningGateway, path: str, lines: list[str]) -> tuple[list[dict[str, Any]], int | None]:
    """Send every message as a text frame, then read frames until the server closes; (frames, close code)."""
    received: list[dict[str, Any]] = []
    async with connect(gw.ws_url + path, additional_headers=KEY) as ws:
        for line in lines:
            await ws.send(line)
        try:
            while True:
                received.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            pass
        return received, ws.close_code


async def exchange(gw: RunningGateway, transport: str, path: str, lines: list[str]) -> list[dict[str, Any]]:
    if transport == "http":
        return ndjson(await post(gw, path, lines))
    received, _ = await over_websocket(gw, path, lines)
    return received


def mulaw_stereo(frames: int, offset: int = 0) -> bytes:
    """Interleaved stereo mu-law bytes (agent, customer), distinct per position."""
    return bytes((offset + i) % 251 for i in range(2 * frames))


FULL_AUDIO = [mulaw_stereo(1000, 0), mulaw_stereo(1000, 7), mulaw_stereo(500, 13)]
FULL_STREAM = [
    config("1"),
    event(
        "2",
        "CALL_START",
        "2025-03-01T10:00:00Z",
        participants=[{"role": "AGENT", "platformAgentId": "a-9"}, {"role": "CUSTOMER", "externalUserId": "+4930123"}],
    ),
    audio("3", FULL_AUDIO[0]),
    audio("4", FULL_AUDIO[1]),
    event("5", "CALL_HOLD", "2025-03-01T10:00:05Z"),
    event("6", "CALL_UNHOLD", "2025-03-01T10:00:09Z"),
    audio("7", FULL_AUDIO[2]),
    event("8", "CALL_END", "2025-03-01T10:00:12Z"),
]


def call_event(line: str, seq: str, kind: str, payload: tuple[str, dict[str, Any]], at: datetime) -> dict[str, Any]:
    attributes = {"profile": "default", "api": "streamCallSession", "sequenceId": seq}
    if kind == "CALL_START":
        attributes |= {"agentId": "a-9", "customerId": "+4930123"}
    return {
        "event_id": event_id("c-77", seq, line, f"session.{kind}"),
        "call_id": "c-77",
        "cid": 1,
        "source": "CRESTA",
        "occurred_at": at,
        "received_at": NOW,
        "payload": payload,
        "raw": line,
        "attributes": attributes,
    }


def chunk(sequence: int, start: int, payload: bytes) -> dict[str, Any]:
    return {
        "call_id": "c-77",
        "cid": 1,
        "track": "stereo",
        "role": "UNSPECIFIED",
        "codec": "PCMU",
        "sample_rate": 8000,
        "channels": 2,
        "sequence": sequence,
        "start_sample": start,
        "media_timestamp_ms": None,
        "received_at": NOW,
        "payload": payload,
    }


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_full_stereo_stream_gives_exact_records_and_results(settings: Settings, transport: str) -> None:
    async with gateway(settings) as gw:
        lines = await exchange(gw, transport, STREAM, FULL_STREAM)
        # 200 ms of stereo mu-law is 3200 bytes: message 3 is answered once the first chunk holds it,
        # message 4 once CALL_HOLD flushed the rest, message 7 with CALL_END.
        assert lines == [
            result("1"),
            result("2"),
            result("3", duration="0.250s"),
            result("4", "ON_HOLD", "0.250s"),
            result("5", "ON_HOLD", "0.250s"),
            result("6", "ACTIVE", "0.250s"),
            result("7", "ENDED", "0.312500s"),
            result("8", "ENDED", "0.312500s"),
        ]
        events = await gw.read(gw.topics.events, 4)
        chunks = await gw.read(gw.topics.audio, 3)
        assert (await gw.size(gw.topics.events), await gw.size(gw.topics.audio)) == (4, 3)
    assert {c.key for c in events + chunks} == {"c-77"}
    participants = [{"role": "AGENT", "participant_id": "a-9"}, {"role": "CUSTOMER", "participant_id": "+4930123"}]
    started = {"from_number": None, "to_number": None, "direction": "UNSPECIFIED", "participants": participants}
    calls = "io.switchboard.calls."
    assert [e.record for e in events] == [
        call_event(
            FULL_STREAM[1],
            "2",
            "CALL_START",
            (calls + "CallStarted", started | {"answered": True}),
            datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC),
        ),
        call_event(
            FULL_STREAM[4], "5", "CALL_HOLD", (calls + "CallHeld", {}), datetime(2025, 3, 1, 10, 0, 5, tzinfo=UTC)
        ),
        call_event(
            FULL_STREAM[5], "6", "CALL_UNHOLD", (calls + "CallResumed", {}), datetime(2025, 3, 1, 10, 0, 9, tzinfo=UTC)
        ),
        call_event(
            FULL_STREAM[7],
            "8",
            "CALL_END",
            (calls + "CallEnded", {"reason": "CALL_END", "duration_ms": None}),
            datetime(2025, 3, 1, 10, 0, 12, tzinfo=UTC),
        ),
    ]
    sent = b"".join(FULL_AUDIO)
    assert [c.record for c in chunks] == [
        chunk(0, 0, sent[:3200]),
        chunk(1, 1600, sent[3200:4000]),
        chunk(2, 2000, sent[4000:]),
    ]


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_separate_linear16_tracks_with_odd_chunk_sizes(settings: Settings, transport: str) -> None:
    sent = {
        "AGENT": [bytes(range(1, 256)) * 2, b"\x10" * 257, b"\x20\x21"],  # 769 bytes: ends in half a sample
        "CUSTOMER": [b"\x30\x31" * 99 + b"\x32", b"\x40\x41\x42"],  # 202 bytes
    }
    order = [("AGENT", 0), ("CUSTOMER", 0), ("AGENT", 1), ("CUSTOMER", 1), ("AGENT", 2)]
    messages = [config("1", "LINEAR_PCM", "CHANNEL_TYPE_SEPARATE")]  # LINEAR_PCM: an alias of LINEAR16
    messages += [audio(str(i + 2), sent[role][n], role) for i, (role, n) in enumerate(order)]
    messages.append(event("7", "CALL_END"))
    async with gateway(settings, audio_chunk_ms=20) as gw:  # 160 samples = 320 bytes per chunk
        lines = await exchange(gw, transport, STREAM, messages)
        assert [line["result"]["sequenceId"] for line in lines] == ["1", "2", "3", "4", "5", "6", "7"]
        assert lines[-1]["result"]["sessionStatus"] == {
            "state": "SESSION_STATE_ENDED",
            "audioReceivedDuration": "0.048s",  # 384 whole agent samples at 8 kHz
        }
        chunks = [c.record for c in await gw.read(gw.topics.audio, 5)]
        assert await gw.size(gw.topics.audio) == 5
    layout = [(c["track"], c["role"], c["sequence"], c["start_sample"], len(c["payload"])) for c in chunks]
    assert layout == [
        ("agent", "AGENT", 0, 0, 320),
        ("agent", "AGENT", 1, 160, 320),
        ("agent", "AGENT", 2, 320, 128),
        ("agent", "AGENT", 3, 384, 1),  # the last half sample, kept as a chunk of its own
        ("customer", "CUSTOMER", 0, 0, 202),
    ]
    assert {(c["codec"], c["sample_rate"], c["channels"]) for c in chunks} == {("L16_LE", 8000, 1)}
    for role, track in (("AGENT", "agent"), ("CUSTOMER", "customer")):
        assert b"".join(c["payload"] for c in chunks if c["track"] == track) == b"".join(sent[role])


async def test_protocol_lines_first_two_unchanged_third_has_an_elided_payload(settings: Settings) -> None:
    async with gateway(settings) as gw:
        lines = ndjson(await post(gw, STREAM, PROTOCOL_LINES))
        assert lines[:2] == [result("1"), result("2")]
        # "//7+/f..." is the document's ellipsis, not base64: refused, naming the field and the value.
        assert lines[2] == {
            "error": {
                "code": 3,
                "message": "audioContent.audioContent: not valid base64 (Only base64 data is allowed): '//7+/f...'",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [
                            {
                                "field": "audioContent.audioContent",
                                "description": "not valid base64 (Only base64 data is allowed): '//7+/f...'",
                            }
                        ],
                    }
                ],
            }
        }
        assert len(lines) == 3
        [started] = await gw.read(gw.topics.events, 1)
        assert started.record["payload"][0] == "io.switchboard.calls.CallStarted"
        assert await gw.size(gw.topics.audio) == 0
        # The same line with the ellipsis removed (url-safe and unpadded here) is accepted.
        third = PROTOCOL_LINES[2].replace("//7+/f...", "__7-_f").replace('"sequenceId":"3"', '"sequenceId":"2"')
        lines = ndjson(await post(gw, STREAM, [PROTOCOL_LINES[0], third]))
        assert lines == [result("1"), result("2", duration="0.000250s")]  # 2 stereo samples
        [chunk_record] = await gw.read(gw.topics.audio, 1)
        assert chunk_record.record["payload"] == b"\xff\xfe\xfe\xfd"


async def test_seed_curl_bodies_are_accepted_unchanged(settings: Settings) -> None:
    seed_session = {
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
    seed_audio = {key: value for key, value in seed_session.items() if key != "sessionEvent"}
    seed_audio["audioEvent"] = {"eventType": "EVENT_TYPE_UNSPECIFIED", "pauseDuration": "string"}
    status = {"state": "SESSION_STATE_ACTIVE", "audioReceivedDuration": "0s"}
    name = "customers/1/profiles/string/conversations/string"
    async with gateway(settings) as gw:
        for path, body in ((STREAM, seed_session), (AUDIO, seed_audio)):
            response = await post(gw, path, [json.dumps(body, indent=2)])  # as curl -d sends it: one object, many lines
            assert ndjson(response) == [
                {"result": {"sessionStatus": status, "sequenceId": "string", "conversationName": name}}
            ]
        events = [e.record for e in await gw.read(gw.topics.events, 2)]
        chunks = [c.record for c in await gw.read(gw.topics.audio, 2)]
    assert [e["payload"] for e in events] == [
        ("io.switchboard.calls.VendorEvent", {"name": "session.EVENT_TYPE_UNSPECIFIED"}),
        ("io.switchboard.calls.VendorEvent", {"name": "audio.EVENT_TYPE_UNSPECIFIED"}),
    ]
    assert events[0]["occurred_at"] == datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)
    assert events[0]["attributes"] == {
        "profile": "string",
        "api": "streamCallSession",
        "sequenceId": "string",
        "platformMasterCallId": "string",
        "closeActiveCalls": "true",
    }
    assert events[1]["attributes"]["pauseDuration"] == "string"
    assert json.loads(events[0]["raw"]) == seed_session
    # Unknown encoding: kept as received, codec UNKNOWN, one chunk per message (assumption).
    assert [(c["codec"], c["sample_rate"], c["track"], c["sequence"], c["payload"]) for c in chunks] == [
        ("UNKNOWN", 0, "mixed", 0, bytes.fromhex("b2dae29e")),
        ("UNKNOWN", 0, "mixed", 0, bytes.fromhex("b2dae29e")),
    ]


async def test_duplicate_sequence_ids_are_acknowledged_and_recorded_once(settings: Settings) -> None:
    messages = [config("1"), event("2", "CALL_START"), event("2", "CALL_START"), audio("3", b"\x01\x02" * 10)]
    messages += [audio("3", b"\x01\x02" * 10), config("1"), event("4", "CALL_END")]
    async with gateway(settings) as gw:
        lines = ndjson(await post(gw, STREAM, messages))
        # Duplicates are answered once everything received before them is on Kafka.
        assert [line["result"]["sequenceId"] for line in lines] == ["1", "2", "2", "3", "3", "1", "4"]
        events = await gw.read(gw.topics.events, 2)
        [chunk_record] = await gw.read(gw.topics.audio, 1)
        assert (await gw.size(gw.topics.events), await gw.size(gw.topics.audio)) == (2, 1)
    assert [e.record["payload"][0].rsplit(".", 1)[1] for e in events] == ["CallStarted", "CallEnded"]
    assert chunk_record.record["payload"] == b"\x01\x02" * 10


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_gap_ends_the_stream_and_keeps_what_was_accepted(settings: Settings, transport: str) -> None:
    messages = [config("1"), event("2", "CALL_START"), audio("3", b"\x05\x06" * 50), event("5", "CALL_HOLD")]
    messages += [audio("6", b"\x07\x08" * 50)]
    async with gateway(settings) as gw:
        lines = await exchange(gw, transport, STREAM, messages)
        assert lines == [
            result("1"),
            result("2"),
            result("3", duration="0.006250s"),  # flushed to Kafka before the error
            {
                "error": {
                    "code": 9,
                    "message": "sequenceId out of order: expected 4, got 5",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
                            "violations": [
                                {
                                    "type": "SEQUENCE",
                                    "subject": "sequenceId",
                                    "description": "sequenceId out of order: expected 4, got 5",
                                }
                            ],
                        }
                    ],
                }
            },
        ]
        [chunk_record] = await gw.read(gw.topics.audio, 1)
        assert chunk_record.record["payload"] == b"\x05\x06" * 50
        assert (await gw.size(gw.topics.events), await gw.size(gw.topics.audio)) == (1, 1)


async def test_websocket_closes_with_policy_violation_after_an_error(settings: Settings) -> None:
    async with gateway(settings) as gw:
        received, code = await over_websocket(gw, STREAM, [config("1"), '{"sessionEvent": nope}'])
        assert received[0] == result("1")
        assert received[1]["error"]["code"] == 3
        assert received[1]["error"]["message"].startswith("message 2 is not valid JSON: Expecting value")
        assert code == 1008
        assert await gw.size(gw.topics.events) == 0


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([event("1", "CALL_START"), config("2")], "the first message of a stream must carry streamingConfig"),
        (['{"streamingConfig": nope}'], "message 1 is not valid JSON: Expecting value"),
        (['{"streamingConfig": {"profile": "default",'], "the body ended inside message 1"),
        ([], "the request body holds no message"),
        ([config("1", "OPUS")], "streamingConfig.audioMetadata.encoding: unknown AudioEncoding value 'OPUS'"),
        ([config("1", channels="QUAD")], "streamingConfig.channelType: unknown ChannelType value 'QUAD'"),
        (['["streamingConfig"]'], "message 1 is not a JSON object"),
    ],
)
async def test_errors_before_the_stream_starts_are_http_400_status(
    settings: Settings, lines: list[str], message: str
) -> None:
    async with gateway(settings) as gw:
        response = await post(gw, STREAM, lines)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == 3
        assert response.json()["message"].startswith(message)
        assert (await gw.size(gw.topics.events), await gw.size(gw.topics.audio)) == (0, 0)


async def test_malformed_json_and_bad_base64_mid_stream_are_error_chunks(settings: Settings) -> None:
    async with gateway(settings) as gw:
        malformed = ndjson(await post(gw, STREAM, [config("1"), event("2", "CALL_START"), '{"audioContent": {]}']))
        bad_audio = '{"audioContent":{"audioContent":"AAAA*AAA"},"sequenceId":"3"}'
        refused = ndjson(
            await post(gw, STREAM, [config("1"), event("2", "CALL_HOLD"), bad_audio, event("4", "CALL_END")])
        )
        assert [line.get("error", {}).get("code") for line in malformed + refused] == [None, None, 3, None, None, 3]
        assert malformed[2]["error"]["message"].startswith("message 3 is not valid JSON")
        assert refused[2]["error"]["message"] == (
            "audioContent.audioContent: not valid base64 (Only base64 data is allowed): 'AAAA*AAA'"
        )
        events = await gw.read(gw.topics.events, 2)
        assert [e.record["payload"][0] for e in events] == [
            "io.switchboard.calls.CallStarted",
            "io.switchboard.calls.CallHeld",
        ]
        assert (await gw.size(gw.topics.events), await gw.size(gw.topics.audio)) == (2, 0)


async def test_enums_by_number_and_by_alias_assumption(settings: Settings) -> None:
    messages = [config("1", encoding=3, channels="1")]  # ALAW, CHANNEL_TYPE_MONO
    messages += [event("2", "1", participants=[{"role": "VISITOR", "externalUserId": "v-1"}, {"role": 1}])]
    messages += [audio("3", b"\xd5" * 8, role="4"), event("4", 4)]
    async with gateway(settings) as gw:
        lines = ndjson(await post(gw, STREAM, messages))
        assert [line["result"]["sequenceId"] for line in lines] == ["1", "2", "3", "4"]
        events = [e.record for e in await gw.read(gw.topics.events, 2)]
        [chunk_record] = await gw.read(gw.topics.audio, 1)
    assert events[0]["payload"][1]["participants"] == [
        {"role": "CUSTOMER", "participant_id": "v-1"},
        {"role": "AGENT", "participant_id": None},
    ]
    assert events[1]["payload"][0] == "io.switchboard.calls.CallEnded"
    record = chunk_record.record
    assert (record["codec"], record["track"], record["channels"], record["payload"]) == (
        "PCMA",
        "mixed",
        1,
        b"\xd5" * 8,
    )


async def test_unknown_enum_mid_stream_names_field_and_value(settings: Settings) -> None:
    async with gateway(settings) as gw:
        lines = ndjson(await post(gw, STREAM, [config("1"), event("2", "CALL_PARK")]))
        assert lines[1]["error"]["code"] == 3
        assert lines[1]["error"]["message"].startswith(
            "sessionEvent.eventType: unknown SessionEventType value 'CALL_PARK'"
        )
        assert await gw.size(gw.topics.events) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic a2V5LXRlbmFudC0xOg=="},
        {"Authorization": "Bearer"},
    ],
)
async def test_missing_or_unknown_credential_is_401(settings: Settings, headers: dict[str, str]) -> None:
    async with gateway(settings) as gw:
        response = await post(gw, STREAM, [config("1"), event("2", "CALL_START")], headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {
            "code": 16,
            "message": "missing or unknown credential: send Authorization: Bearer <token> "
            "(or the deprecated ApiKey <key>)",
            "details": [],
        }
        with pytest.raises(InvalidStatus) as refused:
            async with connect(gw.ws_url + STREAM, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body or b"")["code"] == 16
        assert await gw.size(gw.topics.events) == 0


async def test_deprecated_api_key_scheme_is_accepted(settings: Settings) -> None:
    async with gateway(settings) as gw:
        headers = {"Authorization": "ApiKey key-tenant-2"}
        lines = ndjson(await post(gw, STREAM, [config("1"), event("2", "CALL_START")], headers=headers))
        assert lines[1]["result"]["conversationName"] == "customers/2/profiles/default/conversations/c-77"
        [started] = await gw.read(gw.topics.events, 1)
        assert started.record["cid"] == 2


async def test_message_rate_limit_is_resource_exhausted(settings: Settings) -> None:
    async with gateway(settings, max_messages_burst=3, max_messages_per_s=0.001) as gw:
        messages = [config("1"), event("2", "CALL_START"), event("3", "CALL_HOLD"), event("4", "CALL_UNHOLD")]
        lines = ndjson(await post(gw, STREAM, messages))
        assert [line["result"]["sequenceId"] for line in lines[:3]] == ["1", "2", "3"]
        assert lines[3]["error"]["code"] == 8
        assert lines[3]["error"]["message"] == (
            "message rate limit exceeded: at most 3 messages at once and 0.001 per second on one stream"
        )
        assert len(lines) == 4
        assert await gw.size(gw.topics.events) == 2


async def test_oversize_message_is_resource_exhausted(settings: Settings) -> None:
    async with gateway(settings, max_frame_bytes=400) as gw:
        big = audio("2", b"\x00" * 300)  # 400 base64 characters
        lines = ndjson(await post(gw, STREAM, [config("1"), big]))
        assert lines[1]["error"]["code"] == 8
        assert re.fullmatch(r"message of \d+ bytes exceeds the limit of 400 bytes", lines[1]["error"]["message"])
        response = await post(gw, STREAM, [big])
        assert (response.status_code, response.json()["code"]) == (429, 8)
        assert await gw.size(gw.topics.audio) == 0


async def test_audio_event_only_on_the_audio_stream_and_pause_moves_positions(settings: Settings) -> None:
    pause = dumps({"audioEvent": {"eventType": "PAUSE", "pauseDuration": "2.5s"}, "sequenceId": "3"})
    messages = [config("1", channels="CHANNEL_TYPE_MONO"), audio("2", b"\x01" * 80), pause, audio("4", b"\x02" * 40)]
    async with gateway(settings) as gw:
        refused = ndjson(await post(gw, STREAM, messages))
        assert refused[-1]["error"]["message"] == (
            "audioEvent is only accepted on streamCallSessionAudio, not on streamCallSession"
        )
        lines = ndjson(await post(gw, AUDIO, messages))
        assert [line["result"]["sequenceId"] for line in lines] == ["1", "2", "3", "4"]
        assert lines[-1]["result"]["sessionStatus"]["audioReceivedDuration"] == "0.015s"
        chunks = [c.record for c in await gw.read(gw.topics.audio, 3)]
        [paused] = [e.record for e in await gw.read(gw.topics.events, 1)]
    # The refused stream flushed its first audio before the error; the audio stream wrote two chunks.
    assert [(c["sequence"], c["start_sample"], len(c["payload"])) for c in chunks] == [
        (0, 0, 80),
        (0, 0, 80),
        (1, 20080, 40),
    ]
    assert paused["payload"] == ("io.switchboard.calls.VendorEvent", {"name": "audio.PAUSE"})
    assert paused["attributes"]["pauseDuration"] == "2.5s"
    assert paused["attributes"]["api"] == "streamCallSessionAudio"


class ChunkedExchange:
    """A raw HTTP/1.1 client that sends a chunked request body piece by piece and reads the response meanwhile."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pending = b""

    async def send(self, data: bytes) -> None:
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def read_head(self) -> bytes:
        return await self.reader.readuntil(b"\r\n\r\n")

    async def read_line(self) -> dict[str, Any]:
        """The next NDJSON line of the chunked response body."""
        while b"\n" not in self.pending:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            self.pending += (await self.reader.readexactly(size + 2))[:-2]
        line, _, self.pending = self.pending.partition(b"\n")
        return dict(json.loads(line))


async def test_http_messages_are_processed_as_they_arrive(settings: Settings) -> None:
    async with gateway(settings) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = ChunkedExchange(reader, writer)
        writer.write(
            f"POST {STREAM} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer key-tenant-1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        # The first message arrives in two pieces, then the second message: both are answered
        # while the request body is still open.
        first = (config("1") + "\n" + event("2", "CALL_START") + "\n").encode()
        await client.send(first[:50])
        await client.send(first[50:])
        head = await client.read_head()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert await client.read_line() == result("1")
        assert await client.read_line() == result("2")
        await client.send((event("3", "CALL_END") + "\n").encode())
        assert await client.read_line() == result("3", "ENDED")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        assert await reader.readuntil(b"0\r\n\r\n") == b"0\r\n\r\n"
        writer.close()
        await writer.wait_closed()
        assert await gw.size(gw.topics.events) == 2


async def test_idle_stream_flushes_and_answers_a_client_that_waits(settings: Settings) -> None:
    async with gateway(settings, cresta_idle_flush_ms=50) as gw:
        async with connect(gw.ws_url + AUDIO, additional_headers=KEY) as ws:
            await ws.send(config("1", channels="CHANNEL_TYPE_MONO"))
            assert json.loads(await ws.recv()) == result("1")
            await ws.send(audio("2", b"\x55" * 100))
            # Far below the 200 ms aggregate: answered only because the stream went idle.
            assert json.loads(await ws.recv()) == result("2", duration="0.012500s")
            [chunk_record] = await gw.read(gw.topics.audio, 1)
            assert chunk_record.record["payload"] == b"\x55" * 100
            await ws.send(audio("3", b"\x66" * 60))
            assert json.loads(await ws.recv()) == result("3", duration="0.020s")
        chunks = await gw.read(gw.topics.audio, 2)
    assert [(c.record["sequence"], c.record["start_sample"]) for c in chunks] == [(0, 0), (1, 100)]


async def test_client_leaving_mid_stream_flushes_what_it_sent(settings: Settings) -> None:
    async with gateway(settings) as gw:
        async with connect(gw.ws_url + STREAM, additional_headers=KEY) as ws:
            await ws.send(config("1", channels="CHANNEL_TYPE_MONO"))
            assert json.loads(await ws.recv()) == result("1")
            await ws.send(audio("2", b"\x11" * 30))
        [chunk_record] = await gw.read(gw.topics.audio, 1)
        assert chunk_record.record["payload"] == b"\x11" * 30
