"""Stream life-cycle webhooks (streaming.started / .stopped / .failed), sent in the background.

``WebhookSender.enqueue`` never blocks: the media socket hands a ``Webhook`` over and goes on.
A service (``running``, registered with the gateway) takes them from a bounded queue and POSTs
each to its URL with httpx, retrying non-2xx answers and connection errors with exponential
backoff (``attempts`` in all, ``meta.attempt`` counting them); a full queue drops the webhook
with an error log. Bodies follow PROTOCOLS.md §3.2. With a signing key, every attempt carries
``telnyx-timestamp`` (unix s) and ``telnyx-signature-ed25519`` = base64(Ed25519 signature of
``f"{timestamp}|{raw body}"``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from producers.telnyx.errors import WebhookKeyError
from producers.telnyx.translate import StreamInfo, redact_url

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
CONCURRENCY = 16
TIMEOUT_S = 5.0
MAX_BACKOFF_S = 30.0
SHUTDOWN_GRACE_S = 2.0


@dataclass(frozen=True)
class Webhook:
    """One life-cycle event to deliver; ``webhook_id`` stays the same over retries."""

    url: str
    event_type: str
    webhook_id: str
    occurred_at_ms: int
    payload: Mapping[str, Any]


def iso_ms(at_ms: int) -> str:
    """``2025-03-01T10:00:01.613Z`` for a unix time in ms."""
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def envelope(hook: Webhook, attempt: int) -> dict[str, Any]:
    """The JSON body of delivery attempt ``attempt`` (1-based)."""
    return {
        "data": {
            "record_type": "event",
            "event_type": hook.event_type,
            "id": hook.webhook_id,
            "occurred_at": iso_ms(hook.occurred_at_ms),
            "payload": dict(hook.payload),
        },
        "meta": {"attempt": attempt, "delivered_to": hook.url},
    }


def stream_payload(
    info: StreamInfo, *, stream_url: str, client_state: str | None, track: str | None, failure_reason: str | None
) -> dict[str, Any]:
    """The ``payload`` of a streaming.* webhook; ``failure_reason`` given: the streaming.failed fields too."""
    url = redact_url(stream_url)
    payload: dict[str, Any] = {
        "call_control_id": info.call_control_id,
        "call_leg_id": None,  # not on the media socket
        "call_session_id": info.call_session_id,
        "client_state": client_state,
        "connection_id": None,  # not on the media socket
        "stream_url": url,
        "stream_id": info.stream_id,
    }
    if failure_reason is not None:
        payload |= {
            "failure_reason": failure_reason,
            "stream_params": {"stream_url": url, "track": track},
            "stream_type": "websocket",
        }
    return payload


def signature_headers(key: Ed25519PrivateKey, body: bytes, timestamp_s: int) -> dict[str, str]:
    """Telnyx signature headers for ``body`` sent at ``timestamp_s``."""
    signed = key.sign(f"{timestamp_s}|".encode() + body)
    return {"telnyx-timestamp": str(timestamp_s), "telnyx-signature-ed25519": base64.b64encode(signed).decode()}


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``; WebhookKeyError names the file when it is not one."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise WebhookKeyError(f"cannot load webhook signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise WebhookKeyError(f"webhook signing key {path} is a {type(key).__name__}, not an Ed25519 private key")
    return key


class WebhookSender:
    """Queue + background delivery of webhooks."""

    def __init__(
        self,
        key_path: Path | None,
        *,
        attempts: int,
        backoff_s: float,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self.key_path = key_path
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.clock_s = clock_s
        self.dropped = 0
        self._queue: asyncio.Queue[Webhook] | None = None

    def enqueue(self, hook: Webhook) -> bool:
        """Hand ``hook`` to the sender without waiting; False (and an error log) if it cannot take it."""
        if self._queue is None:
            log.error("webhook %s for %s dropped: the sender is not running", hook.event_type, hook.url)
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait(hook)
        except asyncio.QueueFull:
            log.error("webhook %s for %s dropped: %d webhooks already queued", hook.event_type, hook.url, QUEUE_SIZE)
            self.dropped += 1
            return False
        return True

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Deliver queued webhooks while the block runs; on exit wait briefly for those in flight."""
        key = load_signing_key(self.key_path) if self.key_path is not None else None
        queue: asyncio.Queue[Webhook] = asyncio.Queue(QUEUE_SIZE)
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            worker = asyncio.create_task(self._dispatch(queue, client, key))
            self._queue = queue
            try:
                yield
            finally:
                self._queue = None
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)

    async def _dispatch(
        self, queue: asyncio.Queue[Webhook], client: httpx.AsyncClient, key: Ed25519PrivateKey | None
    ) -> None:
        slots = asyncio.Semaphore(CONCURRENCY)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                hook = await queue.get()
                await slots.acquire()
                task = asyncio.create_task(self._deliver(client, key, hook))
                in_flight.add(task)

                def finished(done: asyncio.Task[None]) -> None:
                    in_flight.discard(done)
                    slots.release()

                task.add_done_callback(finished)
        finally:
            if queue.qsize():
                log.error("%d queued webhooks not sent: the gateway is stopping", queue.qsize())
            if in_flight:
                _, late = await asyncio.wait(in_flight, timeout=SHUTDOWN_GRACE_S)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)

    async def _deliver(self, client: httpx.AsyncClient, key: Ed25519PrivateKey | None, hook: Webhook) -> None:
        for attempt in range(1, self.attempts + 1):
            body = orjson.dumps(envelope(hook, attempt))
            headers = {"content-type": "application/json"}
            if key is not None:
                headers |= signature_headers(key, body, int(self.clock_s()))
            try:
                response = await client.post(hook.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return
                outcome = f"HTTP {response.status_code}"
            log.warning(
                "webhook %s %s attempt %d/%d to %s failed: %s",
                hook.event_type,
                hook.webhook_id,
                attempt,
                self.attempts,
                hook.url,
                outcome,
            )
            if attempt < self.attempts:
                await asyncio.sleep(min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1)))
        log.error(
            "webhook %s %s to %s given up after %d attempts", hook.event_type, hook.webhook_id, hook.url, self.attempts
        )
