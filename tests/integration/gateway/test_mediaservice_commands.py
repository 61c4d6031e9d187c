"""The command API served for real: exact Command records on calls.commands, validation, idempotency, auth."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.context import GatewayContext
from producers.gateway import SERVICE_UNAVAILABLE, create_gateway
from producers.mediaservice.commands_models import MODELS
from producers.sink import RecordSink
from schemas import COMMAND
from tests.harness import CODEC, RunningGateway, running_gateway, serve

NOW_MS = 1_741_000_000_000
KEY1 = {"Authorization": "Bearer key-tenant-1"}
DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"
VALID: dict[str, dict[str, Any]] = {
    "placeivrcall": {
        "destAddr": "sip:agent17@customer47.prod-eu-north-1.iotcomms.io",
        "sipFrom": "+46890510",
        "displayName": "Carl",
        "callerPrivacy": True,
        "maxRingTime": 25,
        "sessionReferenceId": {"case": 77},
        "mediaserviceId": "ms-1",
        "sipDiversion": "123456",
        "sipDiversionParameters": {"reason": "unconditional"},
        "xHeaders": {"x-case": "77", "x-multi": ["a", "b"]},
        "pHeaders": {"p-asserted": "x"},
        "contactParameters": {"prop1": "val1"},
        "contactUserParameters": {"u": 1},
    },
    "interruptivrcommand": {"replyId": "r-1", "sessionId": "sess-1"},
    "hangupparticipant": {"participantId": "p-1"},
    "hangupremoteparticipant": {},
    "splitconnection": {"connectionId": "c-1"},
    "startrecording": {"recordingFileName": "c-77.mp3"},
    "stoprecording": {},
    "placeremotecall": {
        "codec": "GSM",
        "destinationUri": "sip:user@domain.com",
        "sourceUser": "1234567",
        "receiveIp": "10.0.0.1",
        "receivePort": 30000,
        "callbackBaseUrl": "https://cb.example/ms",
        "sessionReferenceId": "mine",
    },
    "answerremotecall": {
        "codec": "PCMA",
        "replyId": "eyJhbGciOi.x.y",
        "receivePort": 20000,
        "receiveIp": "10.2.30.12",
        "telephoneEventPayloadType": 101,
        "crypto": [{"suite": "AES_CM_128_HMAC_SHA1_80", "id": 1, "config": "inline:abc"}],
    },
    "sendremotecallringback": {},
    "hangupcall": {"replyId": "r-9"},
}


def url(gw: RunningGateway, op: str, call_id: str = "sess-1", cid: int | str = 1) -> str:
    return f"{gw.url}/v1/clients/{cid}/calls/{call_id}/commands/{op}"


def frozen(gw: RunningGateway) -> RunningGateway:
    gw.ctx.clock_ms = lambda: NOW_MS
    return gw


async def test_every_op_queues_the_exact_command_record(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        frozen(gw)
        answers = []
        for op, body in VALID.items():
            headers = {**KEY1, "Idempotency-Key": f"key-{op}"}
            answers.append(await client.post(url(gw, op), json={**body, "domain": DOMAIN}, headers=headers))
        consumed = await gw.read(gw.topics.commands, len(VALID))
    assert [(a.status_code, a.json()) for a in answers] == [
        (202, {"command_id": f"key-{op}", "call_id": "sess-1", "op": op, "status": "queued"}) for op in VALID
    ]
    assert sorted((c.key, c.name) for c in consumed) == [("sess-1", COMMAND)] * len(VALID)
    records = sorted((c.record for c in consumed), key=lambda r: list(VALID).index(r["op"]))
    for record, (op, body) in zip(records, VALID.items(), strict=True):
        assert json.loads(record.pop("body")) == body
        assert record == {
            "command_id": f"key-{op}",
            "call_id": "sess-1",
            "cid": 1,
            "domain": DOMAIN,
            "op": op,
            "requested_at": record["requested_at"],
        }
        assert int(record["requested_at"].timestamp() * 1000) == NOW_MS


DOMAIN_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
INVALID: list[tuple[str, bytes, str]] = [  # op, body, the message after "Invalid <op> body: "
    ("startrecording", b"{not json", "Invalid JSON: key must be a string at line 1 column 2"),
    ("startrecording", b"[]", "Input should be an object"),
    ("startrecording", b"{}", "recordingFileName: Field required"),
    ("startrecording", b'{"recordingFileName": 5}', "recordingFileName: Input should be a valid string"),
    ("startrecording", b'{"recordingFileName": "a", "color": "red"}', "color: Extra inputs are not permitted"),
    (
        "placeivrcall",
        b'{"destAddr": "sip:a", "callerPrivacy": "true"}',
        "callerPrivacy: Input should be a valid boolean",
    ),
    (
        "placeivrcall",
        b'{"destAddr": "sip:a", "maxRingTime": -1}',
        "maxRingTime: Input should be greater than or equal to 0",
    ),
    (
        "placeivrcall",
        b'{"destAddr": "sip:a", "xHeaders": {"x-a": 1}}',
        "xHeaders.x-a.str: Input should be a valid string; xHeaders.x-a.list[str]: Input should be a valid array",
    ),
    ("placeivrcall", b'{"destAddr": ""}', "destAddr: String should have at least 1 character"),
    (
        "placeremotecall",
        b'{"destinationUri": "sip:x", "codec": "OPUS"}',
        "codec: Input should be 'PCMA', 'PCMU' or 'GSM'",
    ),
    (
        "placeremotecall",
        b'{"destinationUri": "sip:x", "receivePort": "5000"}',
        "receivePort: Input should be a valid integer",
    ),
    (
        "placeremotecall",
        b'{"destinationUri": "sip:x", "receivePort": 70000}',
        "receivePort: Input should be less than or equal to 65535",
    ),
    ("answerremotecall", b'{"codec": "GSM"}', "codec: Input should be 'PCMA' or 'PCMU'"),
    (
        "answerremotecall",
        b'{"crypto": [{"suite": "s", "id": "1", "config": "c"}]}',
        "crypto.0.id: Input should be a valid integer",
    ),
    ("hangupcall", b'{"replyId": 12}', "replyId: Input should be a valid string"),
    ("hangupparticipant", b'{"participantId": ""}', "participantId: String should have at least 1 character"),
    ("hangupcall", b'{"domain": "evil/../path"}', f"domain: String should match pattern '{DOMAIN_PATTERN}'"),
    ("hangupcall", b'{"command_id": "has space"}', "command_id: String should match pattern '^[!-~]{1,128}$'"),
]


async def test_invalid_bodies_are_refused_in_the_api_error_shape_and_write_nothing(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        for op, raw, detail in INVALID:
            answer = await client.post(url(gw, op), content=raw, headers=KEY1)
            expected = {"code": 400, "message": f"Invalid {op} body: {detail}"}
            assert (answer.status_code, answer.json()) == (400, expected), raw
        oversize = json.dumps({"recordingFileName": "x" * 70_000}).encode()
        answer = await client.post(url(gw, "startrecording"), content=oversize, headers=KEY1)
        assert answer.json() == {
            "code": 413,
            "message": f"Body of {len(oversize)} bytes exceeds the limit of 65536 bytes",
        }
        assert await gw.size(gw.topics.commands) == 0
        accepted = await client.post(url(gw, "hangupcall"), headers={**KEY1, "Idempotency-Key": "ok-1"})
        refused = await client.post(url(gw, "hangupcall"), json={"replyId": 1}, headers=KEY1)
        assert (accepted.status_code, refused.status_code) == (202, 400)
        assert await gw.size(gw.topics.commands) == 1
        kept = await gw.read(gw.topics.commands, 1)
    assert kept[0].record["command_id"] == "ok-1" and kept[0].record["body"] == "{}" and kept[0].record["domain"] == ""


async def test_the_idempotency_key_makes_the_command_id_and_repeats_answer_the_same(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        frozen(gw)
        post = url(gw, "hangupcall")
        first = await client.post(post, json={"replyId": "r"}, headers={**KEY1, "Idempotency-Key": "idem-1"})
        again = await client.post(post, json={"replyId": "r"}, headers={**KEY1, "Idempotency-Key": "idem-1"})
        in_body = await client.post(post, json={"command_id": "idem-2"}, headers=KEY1)
        both = await client.post(post, json={"command_id": "idem-3"}, headers={**KEY1, "Idempotency-Key": "idem-3"})
        generated = await client.post(post, headers=KEY1)
        differ = await client.post(post, json={"command_id": "a"}, headers={**KEY1, "Idempotency-Key": "b"})
        bad_header = await client.post(post, headers={**KEY1, "Idempotency-Key": "two words"})
        consumed = await gw.read(gw.topics.commands, 5)
        assert await gw.size(gw.topics.commands) == 5
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert first.json() == {"command_id": "idem-1", "call_id": "sess-1", "op": "hangupcall", "status": "queued"}
    assert in_body.json()["command_id"] == "idem-2" and both.json()["command_id"] == "idem-3"
    assert uuid.UUID(generated.json()["command_id"]).version == 4
    assert differ.json() == {"code": 400, "message": "Idempotency-Key 'b' and command_id 'a' differ"}
    assert bad_header.json() == {
        "code": 400,
        "message": "Invalid Idempotency-Key 'two words': 1-128 printable characters, no spaces",
    }
    ids = sorted(c.record["command_id"] for c in consumed)
    assert ids == sorted(["idem-1", "idem-1", "idem-2", "idem-3", generated.json()["command_id"]])
    repeated = [c.record for c in consumed if c.record["command_id"] == "idem-1"]
    assert repeated[0] == repeated[1]  # the same record twice: the dispatcher executes it once


@pytest.mark.parametrize(
    ("headers", "cid", "status", "message"),
    [
        ({}, 1, 401, "Missing or invalid bearer API key (Authorization: Bearer <key>)"),
        ({"Authorization": "Bearer nope"}, 1, 401, "Missing or invalid bearer API key (Authorization: Bearer <key>)"),
        (
            {"Authorization": "Basic key-tenant-1"},
            1,
            401,
            "Missing or invalid bearer API key (Authorization: Bearer <key>)",
        ),
        ({"Authorization": "Bearer key-tenant-2"}, 1, 403, "This API key does not give access to client 1"),
        (KEY1, 3, 403, "This API key does not give access to client 3"),
        (KEY1, "one", 400, "Invalid cid 'one': a client id is a number"),
    ],
)
async def test_auth_is_checked_and_a_refusal_writes_nothing(
    settings: Settings, headers: dict[str, str], cid: int | str, status: int, message: str
) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        answer = await client.post(url(gw, "hangupcall", cid=cid), json={"replyId": "r"}, headers=headers)
        assert await gw.size(gw.topics.commands) == 0
    assert (answer.status_code, answer.json()) == (status, {"code": status, "message": message})


async def test_an_unknown_op_is_404_naming_it_and_the_valid_ones(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        answer = await client.post(url(gw, "transfercall"), json={}, headers=KEY1)
        too_long = await client.post(url(gw, "hangupcall", call_id="c" * 257), headers=KEY1)
        assert await gw.size(gw.topics.commands) == 0
    valid = ", ".join(sorted(MODELS))
    assert answer.status_code == 404
    assert answer.json() == {"code": 404, "message": f"Unknown command 'transfercall'; valid commands: {valid}"}
    assert too_long.json() == {"code": 400, "message": "call_id is longer than 256 characters"}


async def test_kafka_unavailable_is_the_gateways_503(settings: Settings) -> None:
    """calls.commands does not exist (auto-creation is off): Kafka cannot take the record within the timeout."""
    settings = settings.model_copy(update={"produce_timeout_s": 1.0})
    topics = Topics.from_settings(settings)
    others = [spec for spec in topics.specs() if spec.name != topics.commands]  # other routers' services need theirs
    await ensure_topics(str(settings.kafka_bootstrap), others, partitions=3, replication=1)
    producer = make_producer(str(settings.kafka_bootstrap), settings)
    await producer.start()
    try:
        ctx = GatewayContext.build(settings, RecordSink(producer, CODEC, settings.produce_timeout_s))
        async with serve(create_gateway(ctx)) as base, httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(f"{base}/v1/clients/1/calls/sess-1/commands/hangupcall", headers=KEY1)
    finally:
        await stop_producer(producer, settings.produce_timeout_s)
    assert (answer.status_code, answer.json()) == (503, SERVICE_UNAVAILABLE)
