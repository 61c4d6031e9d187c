"""The API's command models agree with the dispatcher's op table; the sender's URL and signing."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from processors.commands import OPS, Dispatch
from processors.dispatch import Dispatcher, DispatchError, JwtSigner
from producers.mediaservice.commands_models import MODELS, PlaceIvrCall, StartRecording


def test_the_api_and_the_dispatcher_know_the_same_ops() -> None:
    assert set(MODELS) == set(OPS)


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_id_the_dispatcher_fills_is_an_optional_field_of_the_model(op: str) -> None:
    fields = MODELS[op].model_fields
    for name in OPS[op]:
        assert name in fields and not fields[name].is_required()


def test_vendor_body_leaves_out_our_own_fields_and_omitted_ones() -> None:
    body = StartRecording.model_validate({"recordingFileName": "a.mp3", "command_id": "k", "domain": "d.example"})
    assert body.vendor_body() == {"recordingFileName": "a.mp3"}
    call = PlaceIvrCall.model_validate({"destAddr": "sip:a@b", "xHeaders": {"x-a": ["1", "2"]}, "sipFrom": None})
    assert call.vendor_body() == {"destAddr": "sip:a@b", "xHeaders": {"x-a": ["1", "2"]}}


def private_key_pem() -> tuple[bytes, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, key.public_key()


async def test_url_quotes_the_domain_and_no_key_means_no_authorization() -> None:
    action = Dispatch(command_id="k", call_id="c", cid=1, op="hangupcall", domain="a.example", body={})
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(client, "https://api.example/mediaservice/")
        assert dispatcher.url(action) == "https://api.example/mediaservice/a.example/hangupcall"
        assert dispatcher.headers() == {}


async def test_a_configured_key_signs_an_rs256_jwt_with_iat_and_exp(tmp_path: Path) -> None:
    pem, public = private_key_pem()
    (tmp_path / "key.pem").write_bytes(pem)
    signer = JwtSigner.from_file(tmp_path / "key.pem")
    async with httpx.AsyncClient() as client:
        headers = Dispatcher(client, "http://x", signer, clock_ms=lambda: 1_700_000_000_500).headers()
    scheme, token = headers["Authorization"].split(" ")
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_exp": False})
    assert scheme == "Bearer" and claims == {"iat": 1_700_000_000, "exp": 1_700_000_060}
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


def test_an_unusable_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(DispatchError, match=r"bad\.pem cannot sign RS256 JWTs"):
        JwtSigner.from_file(tmp_path / "bad.pem")
    with pytest.raises(DispatchError, match=r"missing\.pem cannot sign"):
        JwtSigner.from_file(tmp_path / "missing.pem")
