"""Callback verification, pluggable by ``mediaservice_callback_auth`` (PROTOCOLS.md 2.1).

The platform signs callbacks with a private key configured on the service; the carrier is an
assumption: an RS256 JWT in ``Authorization: Bearer <jwt>``. Modes:

- ``off``: every callback is accepted (development only);
- ``shared_secret``: ``Authorization: Bearer <secret>``, compared in constant time;
- ``jwt``: the bearer token is an RS256 JWT verified with the configured PEM public key. The signature
  must verify; ``exp``, ``nbf`` and ``iat`` are checked when present (``LEEWAY_S`` of clock skew allowed);
  ``aud`` is not checked (its value is unconfirmed). The token is not bound to the body.

A refused callback raises ``CallbackAuthError``; the routes answer 401.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from producers.mediaservice.models import CallbackError
from producers.tenancy import bearer

LEEWAY_S = 30.0  # accepted clock skew for exp / nbf / iat, s


class CallbackAuthError(CallbackError):
    """A callback without valid credentials (or a verifier that cannot be configured)."""


class CallbackVerifier(Protocol):
    """Checks the ``Authorization`` header of one callback; raises ``CallbackAuthError`` to refuse it."""

    def verify(self, authorization: str | None) -> None: ...


class AcceptAll:
    """``off``: no verification."""

    def verify(self, authorization: str | None) -> None:
        return None


class SharedSecret:
    """``shared_secret``: ``Authorization: Bearer <secret>``."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise CallbackAuthError("mediaservice_callback_auth=shared_secret needs mediaservice_callback_secret")
        self._secret = secret.encode()

    def verify(self, authorization: str | None) -> None:
        presented = bearer(authorization)
        if presented is None:
            raise CallbackAuthError("Missing bearer token (Authorization: Bearer <secret>)")
        if not hmac.compare_digest(presented.encode(), self._secret):
            raise CallbackAuthError("Invalid bearer token")


class JwtVerifier:
    """``jwt``: RS256 JWT in ``Authorization: Bearer``, verified with a PEM public key."""

    def __init__(self, public_key_pem: bytes) -> None:
        try:
            key = load_pem_public_key(public_key_pem)
        except ValueError as exc:
            raise CallbackAuthError(f"mediaservice callback public key is not a PEM public key: {exc}") from exc
        if not isinstance(key, RSAPublicKey):
            raise CallbackAuthError(f"mediaservice callback public key must be RSA (RS256), got {type(key).__name__}")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> JwtVerifier:
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise CallbackAuthError(f"cannot read mediaservice callback public key {path}: {exc}") from exc

    def verify(self, authorization: str | None) -> None:
        token = bearer(authorization)
        if token is None:
            raise CallbackAuthError("Missing bearer JWT (Authorization: Bearer <jwt>)")
        try:
            jwt.decode(token, self._key, algorithms=["RS256"], leeway=LEEWAY_S, options={"verify_aud": False})
        except jwt.ExpiredSignatureError as exc:
            raise CallbackAuthError("Bearer JWT has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise CallbackAuthError(f"Invalid bearer JWT: {exc}") from exc


def verifier(mode: str, secret: str | None, public_key: Path | None) -> CallbackVerifier:
    """The verifier of ``mode`` (off | shared_secret | jwt); a misconfiguration raises ``CallbackAuthError``."""
    if mode == "off":
        return AcceptAll()
    if mode == "shared_secret":
        return SharedSecret(secret or "")
    if mode == "jwt":
        if public_key is None:
            raise CallbackAuthError("mediaservice_callback_auth=jwt needs mediaservice_callback_public_key")
        return JwtVerifier.from_file(public_key)
    raise CallbackAuthError(f"unknown mediaservice_callback_auth {mode!r}; expected off, shared_secret or jwt")
