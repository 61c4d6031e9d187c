"""The HTTP sender of mediaservice commands: POST, sign, retry, and one CommandResult per attempt.

``Dispatcher.execute`` posts a ``Dispatch`` to ``{mediaservice_url}/{domain}/{op}`` and yields a
CommandResult record after every attempt. Which outcomes are retried and how long to wait are
decided by the pure ``processors.commands`` (``classify_*``, ``RetryPolicy``).

Authorization (PROTOCOLS.md 2.1): ``Bearer <JWT>`` signed RS256 with the configured private key.
The claims are an assumption (the vendor does not publish them): ``iat`` and ``exp`` = iat + 60 s.
Without a key no Authorization header is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import jwt

from processors.commands import (
    Dispatch,
    Record,
    RetryPolicy,
    Verdict,
    classify_status,
    classify_transport,
    result_record,
)

log = logging.getLogger(__name__)

JWT_LIFETIME_S = 60
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # s; a read timeout is an unknown outcome, never retried
# Failures before any byte of the request left: nothing can have been executed, so they are retried.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class DispatchError(Exception):
    """The dispatcher cannot be set up (unreadable or invalid signing key)."""


class JwtSigner:
    """Signs the ``Authorization`` JWT of each request (RS256; claims iat and exp, seconds)."""

    def __init__(self, private_key_pem: bytes, lifetime_s: int = JWT_LIFETIME_S) -> None:
        self._key = private_key_pem
        self._lifetime_s = lifetime_s

    @classmethod
    def from_file(cls, path: Path) -> JwtSigner:
        """A signer over a PEM private key file; checks that the key signs."""
        try:
            signer = cls(path.read_bytes())
            signer.token(0)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise DispatchError(f"mediaservice private key {path} cannot sign RS256 JWTs: {exc}") from exc
        return signer

    def token(self, now_s: int) -> str:
        """A JWT issued at ``now_s`` (UTC seconds)."""
        return jwt.encode({"iat": now_s, "exp": now_s + self._lifetime_s}, self._key, algorithm="RS256")


def wall_clock_ms() -> int:
    """Current UTC time in ms."""
    return time.time_ns() // 1_000_000


class Dispatcher:
    """Sends commands over one ``httpx.AsyncClient`` (owned by the caller)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        signer: JwtSigner | None = None,
        policy: RetryPolicy | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._signer = signer
        self._policy = policy or RetryPolicy()
        self._clock_ms = clock_ms

    def url(self, action: Dispatch) -> str:
        """``{mediaservice_url}/{domain}/{op}``."""
        return f"{self._base_url}/{quote(action.domain, safe='')}/{action.op}"

    def headers(self) -> dict[str, str]:
        """Request headers: the signed JWT when a key is configured."""
        if self._signer is None:
            return {}
        return {"Authorization": f"Bearer {self._signer.token(self._clock_ms() // 1000)}"}

    async def execute(self, action: Dispatch) -> AsyncIterator[Record]:
        """Attempt the command until it succeeds or fails for good; yield each attempt's CommandResult."""
        attempt = 0
        while True:
            attempt += 1
            verdict, status, text = await self._attempt(action)
            verdict = self._policy.final(verdict, attempt)
            log.info("command %s %s attempt %d: %s %s", action.command_id, action.op, attempt, verdict, status)
            yield result_record(
                action,
                attempt=attempt,
                success=verdict is Verdict.SUCCEEDED,
                http_status=status,
                response=text,
                completed_at_ms=self._clock_ms(),
            )
            if verdict is not Verdict.RETRY:
                return
            await asyncio.sleep(self._policy.backoff_ms(attempt) / 1000)

    async def _attempt(self, action: Dispatch) -> tuple[Verdict, int | None, str]:
        try:
            response = await self._client.post(self.url(action), json=dict(action.body), headers=self.headers())
        except NOT_SENT as exc:
            return classify_transport(request_sent=False), None, f"not sent: {type(exc).__name__}: {exc}"
        except httpx.TransportError as exc:
            return classify_transport(request_sent=True), None, f"outcome unknown: {type(exc).__name__}: {exc}"
        return classify_status(response.status_code, response.text), response.status_code, response.text
