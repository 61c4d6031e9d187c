"""Telnyx webhook bodies and signatures (pure parts of the sender)."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from producers.telnyx.errors import WebhookKeyError
from producers.telnyx.media import audio_format
from producers.telnyx.translate import StreamInfo
from producers.telnyx.webhooks import Webhook, envelope, iso_ms, load_signing_key, signature_headers, stream_payload

INFO = StreamInfo("v3:x", 1, "s-1", audio_format("PCMU", 8000, 1), call_session_id="sess", client_state="aGF2ZQ==")


def test_envelope_follows_protocols_3_2() -> None:
    payload = stream_payload(
        INFO,
        stream_url="wss://gw/telnyx/media/1?token=k",
        client_state="c3RhdGU=",
        track="both_tracks",
        failure_reason="socket closed",
    )
    hook = Webhook("https://hooks.example/t", "streaming.failed", "id-1", 1_740_823_201_613, payload)
    assert envelope(hook, 2) == {
        "data": {
            "record_type": "event",
            "event_type": "streaming.failed",
            "id": "id-1",
            "occurred_at": "2025-03-01T10:00:01.613Z",
            "payload": {
                "call_control_id": "v3:x",
                "call_leg_id": None,
                "call_session_id": "sess",
                "client_state": "c3RhdGU=",
                "connection_id": None,
                "stream_url": "wss://gw/telnyx/media/1?token=<redacted>",
                "stream_id": "s-1",
                "failure_reason": "socket closed",
                "stream_params": {"stream_url": "wss://gw/telnyx/media/1?token=<redacted>", "track": "both_tracks"},
                "stream_type": "websocket",
            },
        },
        "meta": {"attempt": 2, "delivered_to": "https://hooks.example/t"},
    }


def test_started_and_stopped_payloads_have_no_failure_fields() -> None:
    payload = stream_payload(INFO, stream_url="wss://gw/m", client_state=None, track=None, failure_reason=None)
    assert set(payload) == {
        "call_control_id",
        "call_leg_id",
        "call_session_id",
        "client_state",
        "connection_id",
        "stream_url",
        "stream_id",
    }


def test_signature_verifies_with_the_public_key_over_timestamp_bar_body() -> None:
    key = Ed25519PrivateKey.generate()
    body = orjson.dumps({"data": {"id": "x"}})
    headers = signature_headers(key, body, 1_740_823_201)
    assert headers["telnyx-timestamp"] == "1740823201"
    key.public_key().verify(base64.b64decode(headers["telnyx-signature-ed25519"]), b"1740823201|" + body)


def test_signing_key_must_be_an_ed25519_pem(tmp_path: Path) -> None:
    good = tmp_path / "ed.pem"
    good.write_bytes(Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    assert isinstance(load_signing_key(good), Ed25519PrivateKey)
    rsa = tmp_path / "rsa.pem"
    rsa_key = generate_private_key(public_exponent=65537, key_size=2048)
    rsa.write_bytes(rsa_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(WebhookKeyError, match=r"rsa.pem is a .*RSAPrivateKey.*, not an Ed25519 private key"):
        load_signing_key(rsa)
    with pytest.raises(WebhookKeyError, match=r"cannot load webhook signing key .*missing\.pem"):
        load_signing_key(tmp_path / "missing.pem")


def test_iso_ms_is_utc_with_milliseconds() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
