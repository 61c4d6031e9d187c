"""Callback verification modes: off, shared secret, RS256 JWT (keys generated here with cryptography)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from producers.mediaservice.auth import AcceptAll, CallbackAuthError, JwtVerifier, SharedSecret, verifier


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    return jwt.encode({"iss": "iotcomms", **claims}, key, algorithm="RS256")


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


def test_off_accepts_anything() -> None:
    AcceptAll().verify(None)
    assert isinstance(verifier("off", None, None), AcceptAll)


def test_shared_secret_needs_the_exact_bearer_secret() -> None:
    check = SharedSecret("s3cret")
    check.verify("Bearer s3cret")
    check.verify("bearer s3cret")
    with pytest.raises(CallbackAuthError, match="Missing bearer token"):
        check.verify(None)
    with pytest.raises(CallbackAuthError, match="Missing bearer token"):
        check.verify("Basic s3cret")
    with pytest.raises(CallbackAuthError, match="Invalid bearer token"):
        check.verify("Bearer s3cret2")


def test_jwt_signed_with_the_matching_key_is_accepted(key: rsa.RSAPrivateKey) -> None:
    check = JwtVerifier(public_pem(key))
    check.verify(f"Bearer {token(key)}")
    check.verify(f"Bearer {token(key, exp=int(time.time()) + 60, aud='anyone')}")


def test_expired_or_foreign_or_unsigned_jwts_are_refused(key: rsa.RSAPrivateKey) -> None:
    check = JwtVerifier(public_pem(key))
    with pytest.raises(CallbackAuthError, match="Bearer JWT has expired"):
        check.verify(f"Bearer {token(key, exp=int(time.time()) - 3600)}")
    with pytest.raises(CallbackAuthError, match="Invalid bearer JWT: Signature verification failed"):
        check.verify(f"Bearer {token(rsa_key())}")
    with pytest.raises(CallbackAuthError, match="Invalid bearer JWT: The specified alg value is not allowed"):
        check.verify(f"Bearer {jwt.encode({'iss': 'x'}, 'a-shared-secret-of-at-least-32-bytes', algorithm='HS256')}")
    with pytest.raises(CallbackAuthError, match="Invalid bearer JWT"):
        check.verify("Bearer not-a-jwt")
    with pytest.raises(CallbackAuthError, match="Missing bearer JWT"):
        check.verify(None)


def test_jwt_mode_is_configured_from_a_pem_file(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = tmp_path / "callback.pem"
    pem.write_bytes(public_pem(key))
    check = verifier("jwt", None, pem)
    check.verify(f"Bearer {token(key)}")
    with pytest.raises(CallbackAuthError, match="needs mediaservice_callback_public_key"):
        verifier("jwt", None, None)
    with pytest.raises(CallbackAuthError, match="cannot read mediaservice callback public key"):
        verifier("jwt", None, tmp_path / "missing.pem")
    with pytest.raises(CallbackAuthError, match="not a PEM public key"):
        JwtVerifier(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    ed_pem = ed.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(CallbackAuthError, match="must be RSA"):
        JwtVerifier(ed_pem)


def test_misconfigured_modes_fail_at_start_up() -> None:
    with pytest.raises(CallbackAuthError, match="needs mediaservice_callback_secret"):
        verifier("shared_secret", None, None)
    with pytest.raises(CallbackAuthError, match="unknown mediaservice_callback_auth 'hmac'"):
        verifier("hmac", None, None)
