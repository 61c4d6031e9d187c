"""Drive one Cresta stream over any transport: rate limit, session steps, Kafka sends, result and error chunks.

``StreamDriver`` turns request frames into response chunks: it parses each message, steps the pure
``CallSession``, sends the records the step returns through the ``RecordSink`` (which returns only
after Kafka acknowledged them) and only then builds the result chunks of the messages that step made
acknowledgeable. ``pump`` runs the driver over the remaining frames of a stream:

- while acknowledgements are outstanding and no message arrives for ``idle_s``, the partial audio
  aggregates are flushed, so a client that waits for each result is not stalled;
- the end of the frames closes the session (everything held is flushed, every accepted message is
  acknowledged);
- a refused message (any ``CrestaError``) first flushes what was accepted before (it stays on Kafka and
  is acknowledged), then yields the error chunk and ends the stream;
- Kafka not acknowledging yields the error chunk UNAVAILABLE (14) and ends the stream;
- the client going away (``ClientGoneError``) flushes what was accepted, with nobody left to answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Final

from producers.context import GatewayContext
from producers.cresta.framing import Frame
from producers.cresta.models import UNAVAILABLE_MESSAGE, Code, CrestaError, StreamRequest, parse_message
from producers.cresta.session import CallSession, Endpoint, Outcome, SessionState
from producers.limits import TokenBucket
from producers.sink import KafkaUnavailableError
from schemas import AUDIO_CHUNK, CALL_EVENT

log = logging.getLogger(__name__)

Chunk = dict[str, Any]


class ClientGoneError(CrestaError):
    """The client closed the connection before the stream ended."""

    def __init__(self, detail: str) -> None:
        super().__init__(Code.CANCELLED, f"the client closed the stream: {detail}")


def unavailable(exc: KafkaUnavailableError) -> Chunk:
    """The error chunk of a Kafka outage."""
    log.error("Cresta stream ended: %s", exc)
    return {"error": {"code": int(Code.UNAVAILABLE), "message": UNAVAILABLE_MESSAGE, "details": []}}


class StreamDriver:
    """One stream's session, rate limit and record sending."""

    def __init__(self, ctx: GatewayContext, cid: int, endpoint: Endpoint) -> None:
        self._ctx = ctx
        self._cid = cid
        self._endpoint = endpoint
        self._bucket = TokenBucket(ctx.settings.max_messages_per_s, ctx.settings.max_messages_burst)
        self._session: CallSession | None = None

    @property
    def ended(self) -> bool:
        """Whether CALL_END has been accepted."""
        return self._session is not None and self._session.state is SessionState.ENDED

    @property
    def waiting(self) -> bool:
        """Whether accepted messages still wait for their result chunk."""
        return self._session is not None and self._session.waiting

    async def accept(self, frame: Frame) -> list[Chunk]:
        """Process one message; the result chunks it made writable (records already acknowledged by Kafka)."""
        received_ms = self._ctx.clock_ms()
        if not self._bucket.allow(time.monotonic()):
            raise CrestaError(
                Code.RESOURCE_EXHAUSTED,
                f"message rate limit exceeded: at most {self._bucket.burst} messages at once and "
                f"{self._bucket.rate:g} per second on one stream",
            )
        message = parse_message(StreamRequest, frame.value)
        if self._session is None:
            self._session = CallSession.open(self._cid, self._endpoint, message, self._ctx.settings.audio_chunk_ms)
        return await self._send(self._session.accept(message, frame.text, received_ms))

    async def flush(self) -> list[Chunk]:
        """Flush the partial audio aggregates (idle stream)."""
        return await self._send(self._session.flush()) if self._session is not None else []

    async def close(self) -> list[Chunk]:
        """Flush everything held; the remaining result chunks."""
        return await self._send(self._session.close()) if self._session is not None else []

    async def _send(self, outcome: Outcome) -> list[Chunk]:
        assert self._session is not None
        sink, topics, key = self._ctx.sink, self._ctx.topics, self._session.ref.call_id
        if outcome.chunks:
            await sink.send_many(topics.audio, [(key, AUDIO_CHUNK, record) for record in outcome.chunks])
        if outcome.events:
            await sink.send_many(topics.events, [(key, CALL_EVENT, record) for record in outcome.events])
        return [self._session.result(sequence_id) for sequence_id in outcome.acks]


class _Idle:
    """Marker: no frame arrived within the idle time."""


IDLE: Final = _Idle()


class _Reader:
    """Reads the next frame in a task of its own, so waiting for it can time out without losing it."""

    def __init__(self, frames: AsyncIterator[Frame]) -> None:
        self._frames = frames
        self._task: asyncio.Task[Frame | None] | None = None

    async def next(self, timeout_s: float | None) -> Frame | _Idle | None:
        """The next frame, IDLE after ``timeout_s`` (None: wait for ever), None at the end of the frames."""
        if self._task is None:
            self._task = asyncio.ensure_future(_next(self._frames))
        done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
        if not done:
            return IDLE
        task, self._task = self._task, None
        return task.result()

    async def stop(self) -> None:
        """Cancel a pending read."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
            if not self._task.cancelled() and self._task.exception() is not None:
                log.warning("Cresta stream: read ended with %r after the stream stopped", self._task.exception())
            self._task = None


async def _next(frames: AsyncIterator[Frame]) -> Frame | None:
    return await anext(frames, None)


async def pump(
    driver: StreamDriver, frames: AsyncIterator[Frame], idle_s: float, stop_when_ended: bool
) -> AsyncGenerator[Chunk, None]:
    """Response chunks for the remaining ``frames``; an error chunk is the last one (see the module docstring)."""
    reader = _Reader(frames)
    closed = False
    try:
        while not (stop_when_ended and driver.ended):
            frame = await reader.next(idle_s if driver.waiting else None)
            if frame is None:
                break
            lines = await (driver.flush() if isinstance(frame, _Idle) else driver.accept(frame))
            for line in lines:
                yield line
        closed = True
        for line in await driver.close():
            yield line
    except ClientGoneError:
        pass  # the session is flushed below; there is nobody left to answer
    except KafkaUnavailableError as exc:
        closed = True
        yield unavailable(exc)
    except CrestaError as exc:
        closed = True
        for line in await _refuse(driver, exc):
            yield line
    finally:
        await reader.stop()
        if not closed:
            await _close_after_client_left(driver)


async def _refuse(driver: StreamDriver, error: CrestaError) -> list[Chunk]:
    """Results of what was accepted before ``error`` (flushed to Kafka first), then the error chunk."""
    try:
        lines = await driver.close()
    except KafkaUnavailableError as exc:
        return [unavailable(exc)]
    return [*lines, {"error": error.status()}]


async def _close_after_client_left(driver: StreamDriver) -> None:
    try:
        await driver.close()
    except KafkaUnavailableError:
        log.exception("Cresta stream: the client left and its last audio could not be flushed to Kafka")
