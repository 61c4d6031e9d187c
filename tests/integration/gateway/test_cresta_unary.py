"""Cresta ``POST /v1/voicecallsession/{profile}/sessionEvent:process`` through the served gateway and the broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from producers.cresta.translate import event_id
from tests.integration.gateway.test_cresta_stream import KEY, NOW, gateway

PATH = "/v1/voicecallsession/{profile}/sessionEvent:process"
SEED = {
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
    "audioStreamingMode": "AUDIO_STREAMING_MODE_UNSPECIFIED",
}


async def process(url: str, profile: str, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            url + PATH.format(profile=profile), content=body, headers=KEY if headers is None else headers
        )


async def test_seed_body_is_accepted_and_recorded(settings: Settings) -> None:
    body = json.dumps(SEED, indent=2)
    async with gateway(settings) as gw:
        response = await process(gw.url, "string", body)
        assert (response.status_code, response.json()) == (200, {})
        [recorded] = await gw.read(gw.topics.events, 1)
    assert recorded.key == "string"
    assert recorded.record == {
        "event_id": event_id("string", "", body, "session.EVENT_TYPE_UNSPECIFIED"),
        "call_id": "string",
        "cid": 1,
        "source": "CRESTA",
        "occurred_at": datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC),
        "received_at": NOW,
        "payload": ("io.switchboard.calls.VendorEvent", {"name": "session.EVENT_TYPE_UNSPECIFIED"}),
        "raw": body,
        "attributes": {
            "profile": "string",
            "api": "sessionEvent:process",
            "platformMasterCallId": "string",
            "closeActiveCalls": "true",
            "audioStreamingMode": "AUDIO_STREAMING_MODE_UNSPECIFIED",
        },
    }


async def test_snake_case_call_start_and_a_resent_body_gets_the_same_event_id(settings: Settings) -> None:
    body = json.dumps(
        {
            "session_event": {
                "event_type": 1,
                "platform_call_id": "c-5",
                "participants": [{"role": "AGENT", "platform_agent_id": "a-1", "user": "users/a"}],
            },
            "audio_streaming_mode": "AUDIO_STREAMING_MODE_AGENT_DESKTOP",
        }
    )
    async with gateway(settings) as gw:
        for _ in range(2):
            response = await process(gw.url, "sales", body, headers={"Authorization": "ApiKey key-tenant-2"})
            assert (response.status_code, response.json()) == (200, {})
        first, second = await gw.read(gw.topics.events, 2)
    assert first.record == second.record
    assert first.record["payload"] == (
        "io.switchboard.calls.CallStarted",
        {
            "from_number": None,
            "to_number": None,
            "direction": "UNSPECIFIED",
            "participants": [{"role": "AGENT", "participant_id": "a-1"}],
            "answered": True,
        },
    )
    assert (first.record["cid"], first.record["occurred_at"]) == (2, NOW)
    assert first.record["attributes"] == {
        "profile": "sales",
        "api": "sessionEvent:process",
        "agentId": "a-1",
        "agentUser": "users/a",
        "audioStreamingMode": "AUDIO_STREAMING_MODE_AGENT_DESKTOP",
    }


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "message"),
    [
        ('{"sessionEvent": {"eventType": "CALL_END"}}', None, 400, 3, "sessionEvent.platformCallId is required"),
        ('{"sessionEvent": {"eventType": "CALL_END",', None, 400, 3, "message 1 is not valid JSON"),
        ("", None, 400, 3, "message 1 is not valid JSON: Expecting value"),
        ('{"audioStreamingMode": 1}', None, 400, 3, "sessionEvent: Field required"),
        (
            '{"sessionEvent": {"platformCallId": "c"}, "audioStreamingMode": "WEBRTC"}',
            None,
            400,
            3,
            "audioStreamingMode: unknown AudioStreamingMode value 'WEBRTC'",
        ),
        ('{"sessionEvent": {"eventType": 9, "platformCallId": "c"}}', None, 400, 3, "sessionEvent.eventType: unknown"),
        ('{"sessionEvent": {"platformCallId": "c"}}', {}, 401, 16, "missing or unknown credential"),
        ('{"sessionEvent": {"platformCallId": "c"}}', {"Authorization": "ApiKey nope"}, 401, 16, "missing or unknown"),
        ('{"sessionEvent": {"platformCallId": "' + "c" * 500 + '"}}', None, 429, 8, "message of"),
    ],
)
async def test_refusals_write_nothing(
    settings: Settings, body: str, headers: dict[str, str] | None, status: int, code: int, message: str
) -> None:
    async with gateway(settings, max_frame_bytes=512) as gw:
        response = await process(gw.url, "default", body, headers)
        answer: dict[str, Any] = response.json()
        assert (response.status_code, answer["code"]) == (status, code)
        assert answer["message"].startswith(message)
        assert await gw.size(gw.topics.events) == 0
