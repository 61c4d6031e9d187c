"""streaming.* webhooks from the Telnyx media socket, received by a real HTTP peer."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from starlette.responses import JSONResponse, Response

from infra.settings import Settings
from producers.telnyx.translate import event_id
from tests.harness import PeerRequest, http_peer, running_gateway
from tests.integration.gateway.test_telnyx_media import (
    CONNECTED,
    SESSION,
    STREAM,
    attempt,
    command,
    socket,
    start,
    stop,
)


def signing_key(tmp_path: Path) -> tuple[Path, Ed25519PublicKey]:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "telnyx-webhooks.pem"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path, key.public_key()


def verify(request: PeerRequest, public: Ed25519PublicKey) -> None:
    """Raises InvalidSignature unless the body was signed as Telnyx signs webhooks."""
    timestamp = request.headers["telnyx-timestamp"]
    signature = base64.b64decode(request.headers["telnyx-signature-ed25519"])
    public.verify(signature, f"{timestamp}|".encode() + request.body)


async def test_started_and_stopped_are_signed_and_carry_the_latest_client_state(
    settings: Settings, tmp_path: Path
) -> None:
    key_path, public = signing_key(tmp_path)
    call = "v3:hooked"
    async with http_peer() as peer:
        hooks = f"{peer.url}/hooks"
        async with running_gateway(settings, telnyx_webhook_url=hooks, telnyx_webhook_private_key=key_path) as gw:
            stream_url = f"{gw.ws_url}/telnyx/media/1"
            await command(
                gw, call, {"stream_url": stream_url, "stream_track": "both_tracks", "client_state": "Zmlyc3Q="}
            )
            async with socket(gw) as ws:
                await ws.send(CONNECTED)
                await ws.send(start(call))
                await peer.wait_for(1)
                async with httpx.AsyncClient() as client:  # a later command replaces the call's client_state
                    response = await client.post(
                        f"{gw.url}/calls/{call}/actions/streaming_stop",
                        json={"client_state": "bGF0ZXN0"},
                        headers={"Authorization": "Bearer key-tenant-1"},
                    )
                    assert response.status_code == 200
                await ws.send(stop(call, 2))
                await ws.wait_closed()
            started, stopped = await peer.wait_for(2)
    for request in (started, stopped):
        assert (request.method, request.path) == ("POST", "/hooks")
        verify(request, public)
    base = {
        "call_control_id": call,
        "call_leg_id": None,
        "call_session_id": SESSION,
        "connection_id": None,
        "stream_url": stream_url,
        "stream_id": STREAM,
    }
    body = started.json()
    assert body == {
        "data": {
            "record_type": "event",
            "event_type": "streaming.started",
            "id": event_id("webhook", call, STREAM, "streaming.started"),
            "occurred_at": body["data"]["occurred_at"],
            "payload": base | {"client_state": "Zmlyc3Q="},
        },
        "meta": {"attempt": 1, "delivered_to": hooks},
    }
    assert body["data"]["occurred_at"].endswith("Z")
    assert stopped.json()["data"]["event_type"] == "streaming.stopped"
    assert stopped.json()["data"]["payload"] == base | {"client_state": "bGF0ZXN0"}


async def test_a_failed_delivery_is_retried_and_a_dropped_socket_is_reported_failed(settings: Settings) -> None:
    answers: list[int] = []

    def flaky(_: PeerRequest) -> Response:
        answers.append(500 if not answers else 200)
        return JSONResponse({}, status_code=answers[-1])

    call = "v3:dropped-hook"
    async with http_peer(flaky) as peer:
        per_call = f"{peer.url}/per-call"
        async with running_gateway(settings, telnyx_webhook_backoff_s=0.05) as gw:  # no default URL configured
            await command(gw, call, {"stream_track": "inbound_track", "webhook_url": per_call})
            async with socket(gw) as ws:
                await ws.send(start(call))
                first, retried = await peer.wait_for(2)
                await ws.close()  # no stop frame
            failed = (await peer.wait_for(3))[2]
    assert answers == [500, 200, 200]
    assert [r.path for r in (first, retried, failed)] == ["/per-call"] * 3
    assert "telnyx-signature-ed25519" not in first.headers  # no key configured: unsigned
    assert [r.json()["meta"] for r in (first, retried)] == [
        {"attempt": 1, "delivered_to": per_call},
        {"attempt": 2, "delivered_to": per_call},
    ]
    assert first.json()["data"] == retried.json()["data"]
    data = failed.json()["data"]
    assert data["event_type"] == "streaming.failed"
    assert data["payload"]["failure_reason"] == "socket closed"
    assert data["payload"]["stream_params"] == {"stream_url": f"{gw.ws_url}/telnyx/media/1", "track": "inbound_track"}
    assert data["payload"]["stream_type"] == "websocket"


async def test_no_webhook_url_means_no_webhooks_and_refused_sockets_send_none(settings: Settings) -> None:
    async with http_peer() as peer:
        async with running_gateway(settings) as gw:
            assert await attempt(gw, [CONNECTED, start("v3:quiet"), stop("v3:quiet", 2)]) == (1000, "stream stopped")
        async with running_gateway(settings, telnyx_webhook_url=f"{peer.url}/hooks") as gw:
            assert (await attempt(gw, [start("v3:x")], token=None))[0] == 1008
            assert await attempt(gw, [CONNECTED, start("v3:ok"), stop("v3:ok", 2)]) == (1000, "stream stopped")
            started, stopped = await peer.wait_for(2)
    assert [json.loads(r.body)["data"]["payload"]["call_control_id"] for r in peer.requests] == ["v3:ok", "v3:ok"]
    assert sorted(r.json()["data"]["event_type"] for r in (started, stopped)) == [
        "streaming.started",
        "streaming.stopped",
    ]
