"""Mediaservice callbacks served for real: exact CallEvents and answers, refusals, auth, the live policy."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from infra.settings import Settings
from tests.harness import Consumed, RunningGateway, running_gateway
from tests.unit.producers.test_mediaservice_policy import docs_example
from tests.unit.producers.test_mediaservice_samples import SAMPLES, SESSION

DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"
AT = 1_741_000_000_000
AT_TIME = datetime.fromtimestamp(AT / 1000, tz=UTC)
CALLS = "io.switchboard.calls."


def install_policy(settings: Settings, policy: dict[str, Any], domain: str = DOMAIN, mtime_ns: int = 10**18) -> Path:
    """Write ``<policies_path>/<domain>.json`` (with an explicit mtime, so quick edits are always seen)."""
    path = settings.policies_path / f"{domain}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(policy))
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def example(settings: Settings) -> Settings:
    install_policy(settings, docs_example())
    return settings


async def post(gw: RunningGateway, name: str, body: str | dict[str, Any], **headers: str) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.post(f"{gw.url}/mediaservice/{DOMAIN}/{name}", content=text.encode(), headers=headers)


def with_fields(callback: str, **fields: Any) -> str:
    return json.dumps({**json.loads(SAMPLES[callback]), **fields})


def by_callback(records: list[Consumed]) -> dict[str, Consumed]:
    return {r.record["attributes"]["callback"]: r for r in records}


async def test_a_call_through_every_callback_gives_exact_answers_and_records(example: Settings) -> None:
    async with running_gateway(example) as gw:
        gw.ctx.clock_ms = lambda: AT
        start = await post(gw, "newCall", SAMPLES["newCall"])
        assert start.status_code == 200
        ref0 = {"switchboard": {"callId": SESSION, "menu": "main", "tries": 0}}
        assert start.json() == {"action": "ivr", "sessionReferenceId": ref0}
        menu = await post(gw, "getIvrCommand", with_fields("getIvrCommand", sessionReferenceId=ref0, replyId="r-1"))
        assert menu.json()["sessionReferenceId"] == {"switchboard": {"callId": SESSION, "menu": "main", "tries": 1}}
        assert menu.json()["dtmf"] == {"flush": True, "maxDigits": 1, "firstTimeout": 10, "betweenTimeout": 3}
        ref1 = menu.json()["sessionReferenceId"]
        chosen = await post(
            gw, "getIvrCommand", with_fields("getIvrCommand", sessionReferenceId=ref1, replyId="r-2", dtmfBuffer="1")
        )
        ref2 = {"switchboard": {"callId": SESSION, "transfer": "sales"}}
        assert chosen.json() == {
            "sessionId": SESSION,
            "replyId": "r-2",
            "sessionReferenceId": ref2,
            "hangup": True,
            "phrases": [{"format": "awstts", "awsTTSParameters": {"Text": "Connecting you to sales."}}],
        }
        transfer = await post(gw, "callEvent", with_fields("callEvent", sessionReferenceId=ref2))
        ref3 = {"switchboard": {"callId": SESSION}}
        assert transfer.json() == {
            "action": "call",
            "destAddr": "sip:sales@customer47.prod-eu-north-1.iotcomms.io",
            "maxRingTime": 25,
            "callRecording": True,
            "recordingFileName": f"{SESSION}-.mp3",
            "sessionReferenceId": ref3,
        }
        answered_body = with_fields("callAnswered", sessionReferenceId=ref3)
        notifications = [
            ("callAnswered", answered_body),
            ("callNotify", SAMPLES["callNotify"]),
            ("recordingReady", SAMPLES["recordingReady"]),
            ("sessionCompleted", SAMPLES["sessionCompleted"]),
            ("alarm", SAMPLES["alarm"]),
        ]
        for name, body in notifications:
            response = await post(gw, name, body)
            assert (name, response.status_code, response.json()) == (name, 200, {})
        identify = await post(gw, "getCallIdentifier", SAMPLES["getCallIdentifier"])
        assert identify.json() == {
            "sessionId": SESSION,
            "sessionReferenceId": {"tenant": "acme", "number": "ivr", "switchboard": {"callId": SESSION}},
        }
        remote = await post(gw, "newRemoteCall", SAMPLES["newRemoteCall"])
        assert remote.json() == {"sessionReferenceId": "nfdfsij82893kn"}
        records = await gw.read(gw.topics.events, 11)
        assert await gw.size(gw.topics.events) == 11

    ivr_records = [r for r in records if r.record["attributes"]["callback"] == "getIvrCommand"]
    assert sorted(str(r.record["payload"]) for r in ivr_records) == sorted(
        [str((CALLS + "VendorEvent", {"name": "getIvrCommand"})), str((CALLS + "Dtmf", {"digits": "1", "track": ""}))]
    )
    seen = by_callback(records)
    for record in records:
        assert (record.name, record.record["cid"], record.record["source"]) == (CALLS + "CallEvent", 1, "MEDIASERVICE")
        assert record.record["occurred_at"] == record.record["received_at"] == AT_TIME
        assert record.record["attributes"]["domain"] == DOMAIN
    new_call = seen["newCall"]
    assert (new_call.key, new_call.record["call_id"], new_call.record["raw"]) == (SESSION, SESSION, SAMPLES["newCall"])
    assert new_call.record["payload"] == (
        CALLS + "CallStarted",
        {"from_number": "caller", "to_number": "ivr", "direction": "INBOUND", "participants": [], "answered": False},
    )
    assert json.loads(new_call.record["attributes"]["decision"]) == start.json()
    answered = seen["callAnswered"]
    assert (answered.key, answered.record["raw"]) == (SESSION, answered_body)  # keyed by the marker, not traceId
    assert answered.record["payload"] == (
        CALLS + "CallAnswered",
        {
            "connection_id": "da9ce5c0-c787-11eb-a47c-c9c4e460ef16",
            "participants": [
                {"role": "CUSTOMER", "participant_id": "d93f0370-c787-11eb-a47c-c9c4e460ef16"},
                {"role": "AGENT", "participant_id": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16"},
            ],
        },
    )
    assert answered.record["attributes"]["replyId"] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkb21..."
    assert seen["callEvent"].record["payload"] == (CALLS + "VendorEvent", {"name": "callEvent.calledPartyDrop"})
    assert seen["callNotify"].record["payload"] == (CALLS + "VendorEvent", {"name": "callNotify.ringing"})
    assert seen["sessionCompleted"].record["payload"] == (
        CALLS + "CallEnded",
        {"reason": "d93f0370-c787-11eb-a47c-c9c4e460ef16", "duration_ms": 46_890_510_000},
    )
    assert seen["recordingReady"].record["payload"] == (
        CALLS + "RecordingReady",
        {"file_name": "recording.mp3", "size_bytes": 4711, "succeeded": True, "reason": ""},
    )
    alarm = seen["alarm"]
    assert (alarm.key, alarm.record["payload"]) == (
        "8eaf1600-c20b-11eb-9fdb-f32f171bb218",
        (CALLS + "PlatformAlarm", {"alarm_type": "sessionError", "error": "maxDuration"}),
    )
    assert seen["newRemoteCall"].key == "nfdfsij82893kn"
    assert seen["getCallIdentifier"].record["payload"] == (CALLS + "VendorEvent", {"name": "getCallIdentifier"})
    assert len({r.record["event_id"] for r in records}) == 11


async def test_refused_callbacks_write_nothing_and_name_the_problem(example: Settings) -> None:
    async with running_gateway(example) as gw:
        accepted = await post(gw, "callNotify", SAMPLES["callNotify"])
        assert accepted.status_code == 200
        cases = [
            ("callNotify", "{not json", 400, "Invalid callNotify body: not JSON"),
            ("callNotify", "[1, 2]", 400, "Invalid callNotify body: expected a JSON object, got list"),
            (
                "callNotify",
                with_fields("callNotify", sessionId={"id": 1}),
                400,
                "sessionId: Input should be a valid string",
            ),
            (
                "recordingReady",
                with_fields("recordingReady", fileSize="big"),
                400,
                "fileSize: Input should be a valid integer",
            ),
            (
                "callAnswered",
                with_fields("callAnswered", monitoringParticipant=True, callingPartyNumber=True),
                400,
                "callingPartyNumber",
            ),
            ("recordingReady", json.dumps({"fileSize": 1}), 400, "recordingReady body has no call id"),
            ("callNotify", '{"sessionId": NaN}', 400, "NaN is not a JSON number"),
            ("hangup", SAMPLES["callNotify"], 404, "Unknown mediaservice callback 'hangup'"),
            (
                "callNotify",
                json.dumps({"sessionId": "s", "pad": "x" * 300_000}),
                413,
                "exceeds the limit of 262144 bytes",
            ),
        ]
        for name, body, status, message in cases:
            response = await post(gw, name, body)
            assert (name, response.status_code) == (name, status), response.text
            assert response.json()["code"] == status
            assert message in response.json()["message"]
        async with httpx.AsyncClient() as client:
            unknown = await client.post(f"{gw.url}/mediaservice/other.example/newCall", content=SAMPLES["newCall"])
            bad_name = await client.post(f"{gw.url}/mediaservice/..%2Fetc/newCall", content=SAMPLES["newCall"])
        assert unknown.status_code == 404
        assert unknown.json() == {
            "code": 404,
            "message": "Unknown mediaservice domain 'other.example': no policy file other.example.json",
        }
        assert bad_name.status_code == 404
        assert await gw.size(gw.topics.events) == 1
        assert (await gw.read(gw.topics.events, 1))[0].record["raw"] == SAMPLES["callNotify"]


async def test_shared_secret_callbacks(example: Settings) -> None:
    async with running_gateway(
        example, mediaservice_callback_auth="shared_secret", mediaservice_callback_secret=SecretStr("s3cret")
    ) as gw:
        missing = await post(gw, "callNotify", SAMPLES["callNotify"])
        wrong = await post(gw, "callNotify", SAMPLES["callNotify"], Authorization="Bearer nope")
        unknown_domain_first = await post_to(gw, "other.example", "callNotify", Authorization="Bearer nope")
        assert [r.status_code for r in (missing, wrong, unknown_domain_first)] == [401, 401, 401]
        assert missing.json() == {"code": 401, "message": "Missing bearer token (Authorization: Bearer <secret>)"}
        assert missing.headers["www-authenticate"] == "Bearer"
        assert await gw.size(gw.topics.events) == 0
        ok = await post(gw, "callNotify", SAMPLES["callNotify"], Authorization="Bearer s3cret")
        assert (ok.status_code, ok.json()) == (200, {})
        assert await gw.size(gw.topics.events) == 1


async def post_to(gw: RunningGateway, domain: str, name: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{gw.url}/mediaservice/{domain}/{name}", content=SAMPLES[name], headers=headers)


async def test_jwt_callbacks(example: Settings, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "callbacks.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    async with running_gateway(example, mediaservice_callback_auth="jwt", mediaservice_callback_public_key=pem) as gw:
        expired = jwt.encode({"exp": now - 600}, key, algorithm="RS256")
        foreign = jwt.encode({"exp": now + 600}, stranger, algorithm="RS256")
        for token, message in [(expired, "Bearer JWT has expired"), (foreign, "Signature verification failed")]:
            refused = await post(gw, "sessionCompleted", SAMPLES["sessionCompleted"], Authorization=f"Bearer {token}")
            assert refused.status_code == 401 and message in refused.json()["message"]
        assert await gw.size(gw.topics.events) == 0
        valid = jwt.encode({"exp": now + 600, "iss": "iotcomms"}, key, algorithm="RS256")
        ok = await post(gw, "sessionCompleted", SAMPLES["sessionCompleted"], Authorization=f"Bearer {valid}")
        assert (ok.status_code, ok.json()) == (200, {})
        assert await gw.size(gw.topics.events) == 1


async def test_the_policy_is_edited_live_and_a_broken_edit_keeps_the_last_good(settings: Settings) -> None:
    install_policy(settings, {"cid": 2}, mtime_ns=10**18)
    async with running_gateway(settings) as gw:
        busy = await post(gw, "newCall", SAMPLES["newCall"])
        assert busy.json() == {
            "action": "drop",
            "dropCode": "busy",
            "sessionReferenceId": {"switchboard": {"callId": SESSION}},
        }
        route = {"match": {"called_party": {"exact": "ivr"}}, "action": {"action": "call", "destAddr": "sip:q@x"}}
        install_policy(settings, {"cid": 2, "new_call": {"routes": [route]}}, mtime_ns=2 * 10**18)
        routed = await post(gw, "newCall", with_fields("newCall", sipCallId="2"))
        assert routed.json()["action"] == "call"
        install_policy(settings, {"cid": 2, "new_call": {"routes": [{"action": "missing"}]}}, mtime_ns=3 * 10**18)
        kept = await post(gw, "newCall", with_fields("newCall", sipCallId="3"))
        assert kept.json()["action"] == "call"
        records = await gw.read(gw.topics.events, 3)
    assert {r.record["cid"] for r in records} == {2}
    assert sorted(json.loads(r.record["attributes"]["decision"])["action"] for r in records) == ["call", "call", "drop"]


async def test_a_policy_that_never_loaded_answers_500_and_writes_nothing(settings: Settings) -> None:
    path = install_policy(settings, {"cid": 1})
    path.write_text('{"cid": ')
    async with running_gateway(settings) as gw:
        response = await post(gw, "callNotify", SAMPLES["callNotify"])
        assert response.status_code == 500
        assert response.json() == {"code": 500, "message": "The domain's policy file is not valid; see the gateway log"}
        assert await gw.size(gw.topics.events) == 0
