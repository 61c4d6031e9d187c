"""Telnyx Call Control streaming_start / streaming_stop through the served gateway and the real broker."""

from __future__ import annotations

import json
from typing import Any

import httpx

from infra.settings import Settings
from producers.telnyx.translate import event_id
from tests.harness import RunningGateway, running_gateway

NOW_MS = 1_740_823_200_000
AUTH = {"Authorization": "Bearer key-tenant-1"}
SEED_BODY = (
    b'{\n"stream_url": "wss://www.example.com/websocket",\n"stream_track": "both_tracks",\n'
    b'"client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",\n"command_id": "891510ac-f3e4-11e8-af5b-de00688a4901",\n'
    b'"enable_dialogflow": false,\n"dialogflow_config": {\n"analyze_sentiment": false,\n'
    b'"partial_automated_agent_reply": false\n}\n}'
)
OK = {"data": {"result": "ok"}}


def start_url(gw: RunningGateway, call: str, prefix: str = "/v2", action: str = "streaming_start") -> str:
    return f"{gw.url}{prefix}/calls/{call}/actions/{action}"


async def post(client: httpx.AsyncClient, url: str, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(url, content=content, headers=headers or AUTH)


async def test_the_seed_request_is_accepted_unchanged_and_recorded_exactly(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        gw.ctx.clock_ms = lambda: NOW_MS
        response = await post(
            client, start_url(gw, "v3:call-1"), SEED_BODY, **AUTH, **{"Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()) == (200, OK)
        (record,) = await gw.read(gw.topics.events, 1)
    assert record.key == "v3:call-1"
    assert record.record == {
        "event_id": event_id("command", "v3:call-1", "891510ac-f3e4-11e8-af5b-de00688a4901"),
        "call_id": "v3:call-1",
        "cid": 1,
        "source": "TELNYX",
        "occurred_at": record.record["occurred_at"],
        "received_at": record.record["received_at"],
        "payload": ("io.switchboard.calls.VendorEvent", {"name": "streaming_start"}),
        "raw": SEED_BODY.decode(),
        "attributes": {
            "stream_url": "wss://www.example.com/websocket",
            "stream_track": "both_tracks",
            "codec": "default",
            "stream_bidirectional_mode": "mp3",
            "stream_bidirectional_codec": "PCMU",
            "stream_bidirectional_sampling_rate": "8000",
            "stream_bidirectional_target_legs": "opposite",
            "enable_dialogflow": "false",
            "dialogflow_config": '{"analyze_sentiment":false,"partial_automated_agent_reply":false}',
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "command_id": "891510ac-f3e4-11e8-af5b-de00688a4901",
        },
    }
    assert int(record.record["occurred_at"].timestamp() * 1000) == NOW_MS


async def test_assumption_a_repeated_command_id_answers_the_same_ok_and_records_once(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        first = await post(client, start_url(gw, "v3:dup"), SEED_BODY)
        again = await post(client, start_url(gw, "v3:dup", prefix=""), SEED_BODY)  # also without /v2
        other_action = await post(
            client,
            start_url(gw, "v3:dup", action="streaming_stop"),
            {"command_id": "891510ac-f3e4-11e8-af5b-de00688a4901"},
        )
        other_call = await post(client, start_url(gw, "v3:other"), SEED_BODY)
        assert [r.json() for r in (first, again, other_action, other_call)] == [OK] * 4
        records = await gw.read(gw.topics.events, 2)
        assert await gw.size(gw.topics.events) == 2
    assert sorted(r.key for r in records) == ["v3:dup", "v3:other"]


async def test_streaming_stop_is_recorded_and_commands_without_command_id_are_distinct(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        url = start_url(gw, "v3:stop", action="streaming_stop")
        body = {"client_state": "c3RvcA==", "stream_id": "s-1"}
        responses = [await post(client, url, body), await post(client, url, b"")]
        assert [r.status_code for r in responses] == [200, 200]
        records = await gw.read(gw.topics.events, 2)
    assert [r.record["payload"] for r in records] == [
        ("io.switchboard.calls.VendorEvent", {"name": "streaming_stop"})
    ] * 2
    assert records[0].record["attributes"] == {"client_state": "c3RvcA==", "stream_id": "s-1"}
    assert records[1].record["attributes"] == {}
    assert records[0].record["event_id"] != records[1].record["event_id"]


async def test_secrets_in_the_command_never_reach_kafka(settings: Settings) -> None:
    body = {"stream_url": "wss://gw/telnyx/media/1?token=key-tenant-1", "stream_auth_token": "per-call-secret"}
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        assert (await post(client, start_url(gw, "v3:secret"), body)).status_code == 200
        (record,) = await gw.read(gw.topics.events, 1)
    assert json.loads(record.record["raw"]) == {
        "stream_url": "wss://gw/telnyx/media/1?token=<redacted>",
        "stream_auth_token": "<redacted>",
    }
    assert record.record["attributes"]["stream_url"] == "wss://gw/telnyx/media/1?token=<redacted>"
    assert "stream_auth_token" not in record.record["attributes"]


async def refused(client: httpx.AsyncClient, url: str, body: bytes | dict[str, Any], **headers: str) -> tuple[int, Any]:
    response = await post(client, url, body, **headers)
    return response.status_code, response.json()


async def test_every_refusal_has_the_telnyx_error_shape_and_writes_nothing(settings: Settings) -> None:
    async with running_gateway(settings, max_frame_bytes=4096) as gw, httpx.AsyncClient() as client:
        accepted = await post(client, start_url(gw, "v3:owned"), {"command_id": "c-1"})
        assert accepted.status_code == 200
        url = start_url(gw, "v3:call")

        assert await refused(client, url, {"client_state": "###"}) == (
            422,
            {
                "errors": [
                    {
                        "code": "10015",
                        "title": "Invalid parameter",
                        "detail": "client_state '###' is not valid base64: Only base64 data is allowed",
                        "source": {"pointer": "/client_state"},
                    }
                ]
            },
        )
        status, body = await refused(client, url, {"stream_track": "all_tracks"})
        assert status == 422 and [e["source"] for e in body["errors"]] == [{"pointer": "/stream_track"}]
        assert "(got 'all_tracks')" in body["errors"][0]["detail"]
        status, body = await refused(client, url, {"stream_bidirectional_codec": "pcma"})  # case-sensitive
        assert status == 422 and body["errors"][0]["source"] == {"pointer": "/stream_bidirectional_codec"}
        status, body = await refused(client, url, {"stream_url": 42})
        assert (status, body["errors"][0]["code"], body["errors"][0]["title"]) == (422, "10003", "Invalid URL")
        assert body["errors"][0]["detail"] == "stream_url: Input should be a valid string (got 42)"
        status, body = await refused(client, url, {"stream_url": "http://not-a-socket"})
        assert status == 422 and body["errors"][0]["code"] == "10003"
        status, body = await refused(client, url, b'{"stream_track": ')
        assert status == 422 and body["errors"][0]["title"] == "Bad Request"
        assert body["errors"][0]["detail"].startswith("The request body is not valid JSON")
        assert await refused(client, url, b"[1]") == (
            422,
            {
                "errors": [
                    {
                        "code": "10015",
                        "title": "Bad Request",
                        "detail": "The body must be a JSON object, not list",
                        "source": {"pointer": "/"},
                    }
                ]
            },
        )
        assert await refused(client, url, {}, **{"X-Other": "1"}) == (
            401,
            {
                "errors": [
                    {
                        "code": "10009",
                        "title": "Authentication failed",
                        "detail": "Authorization: Bearer <API key> is missing or not a known key",
                    }
                ]
            },
        )
        assert (await refused(client, url, {}, Authorization="Bearer nope"))[0] == 401
        assert (await refused(client, url, {}, Authorization="Basic key-tenant-1"))[0] == 401
        other_tenant = await refused(client, start_url(gw, "v3:owned"), {}, Authorization="Bearer key-tenant-2")
        assert other_tenant == (
            403,
            {
                "errors": [
                    {
                        "code": "10010",
                        "title": "Authorization failed",
                        "detail": "call v3:owned belongs to another account",
                    }
                ]
            },
        )
        status, body = await refused(client, start_url(gw, "v3:call", action="hangup"), {})
        assert (status, body["errors"][0]["code"]) == (404, "10005")
        status, body = await refused(client, url, {"client_state": "QQ==" * 2000})
        assert (status, body["errors"][0]["title"]) == (413, "Request entity too large")
        assert "detail" not in body  # never FastAPI's own error body

        assert await gw.size(gw.topics.events) == 1
        (kept,) = await gw.read(gw.topics.events, 1)
    assert kept.key == "v3:owned"
