"""Tenant resolution: which tenant (cid) a presented credential belongs to.

Every vendor protocol carries its secret differently (``X-Auth-Token``, ``Authorization: Bearer``,
``Authorization: ApiKey``); all of them resolve here against Switchboard's per-tenant keys, compared
in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr


class Tenants:
    """The configured tenant keys."""

    def __init__(self, keys: Mapping[int, SecretStr]) -> None:
        self._keys = {cid: key.get_secret_value().encode() for cid, key in keys.items()}

    def cid_for(self, credential: str | None) -> int | None:
        """The tenant whose key equals ``credential``; None when none does."""
        if not credential:
            return None
        presented = credential.encode()
        found: int | None = None
        for cid, key in self._keys.items():  # no early exit: time does not depend on which key matched
            if hmac.compare_digest(presented, key):
                found = cid
        return found

    def owns(self, cid: int, credential: str | None) -> bool:
        """Whether ``credential`` is the key of tenant ``cid``."""
        key = self._keys.get(cid)
        return key is not None and credential is not None and hmac.compare_digest(credential.encode(), key)


def bearer(header: str | None, scheme: str = "Bearer") -> str | None:
    """The credential of an ``Authorization: <scheme> <credential>`` header (scheme case-insensitive)."""
    if not header:
        return None
    given, _, credential = header.strip().partition(" ")
    if given.lower() != scheme.lower() or not credential.strip():
        return None
    return credential.strip()
