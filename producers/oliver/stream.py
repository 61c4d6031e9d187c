"""One live audio WebSocket, ``/stream/{cid}`` (PROTOCOLS.md §1.4), after authentication.

Server messages (JSON text):

- ``{"status":"loaded","delay":"N"}`` while every stream slot of this gateway is taken, then
  ``{"status":"ready"}``;
- ``{"status":"accepting"}`` after a valid ``start`` (once CallStarted/StreamStarted are in Kafka);
- ``{"status":"ready"|"accepting","error":"client provided faulty parameters","detail":...}`` for a bad
  control message (``status`` is the state the socket stays in);
- ``{"status":"ready"}`` after ``end`` (once the audio tail and StreamStopped/CallEnded are in Kafka),
  with an ``error`` when bytes could not be forwarded; ``{"status":"ready","error":...}`` when a task
  ends by itself (no audio for ``oliver_idle_timeout_s``, audio not matching its format);
- result messages (see ``translate``) of every job started on the socket, until its ``is_final``;
- ``{"code":413|429,"message":...}`` then close 1009/1008 for an oversized frame or a rate-limit breach;
- the seed's 503 body then close 1013 when Kafka does not acknowledge: no audio is claimed accepted
  that Kafka has not acknowledged.

Audio received while no task is active is ignored (as the vendor does after its 30 s timeout); the
first such frame of an idle period is answered with a notice. A task whose client disconnects is ended
like ``end``: the audio received is flushed, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from producers.context import GatewayContext
from producers.limits import TokenBucket
from producers.oliver import translate
from producers.oliver.errors import FramingError
from producers.oliver.feed import FeedItem, ResultFeed
from producers.oliver.framing import Chunk, Framer, framer_for
from producers.oliver.jobs import JobDirectory
from producers.oliver.models import (
    FAULTY_PARAMETERS,
    SERVICE_UNAVAILABLE,
    JobInfo,
    StartControl,
    Status,
    describe,
)
from producers.sink import KafkaUnavailableError
from schemas import AUDIO_CHUNK, CALL_EVENT

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013


class StreamSlots:
    """This gateway's concurrent stream sockets (``oliver_max_streams``); the rest wait in line."""

    def __init__(self, capacity: int, loaded_delay_s: int) -> None:
        self._semaphore = asyncio.Semaphore(capacity)
        self.loaded_delay_s = loaded_delay_s

    @property
    def full(self) -> bool:
        return self._semaphore.locked()

    def delay_s(self) -> int:
        """Setup delay estimate (s): 0 while a slot is free."""
        return self.loaded_delay_s if self.full else 0

    def hold(self) -> asyncio.Semaphore:
        """Async context manager holding one slot."""
        return self._semaphore


@dataclass
class StreamServices:
    """What every socket of the gateway shares."""

    feed: ResultFeed
    directory: JobDirectory
    slots: StreamSlots


class _Refusal(Exception):
    """A protocol violation that closes the socket: Oliver error code, message, WebSocket close code."""

    def __init__(self, code: int, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


@dataclass
class _Task:
    job: JobInfo
    framer: Framer
    last_audio_s: float  # monotonic
    sequence: int = 0


class StreamSession:
    """The protocol state of one accepted socket of tenant ``cid``."""

    def __init__(self, ws: WebSocket, ctx: GatewayContext, cid: int, services: StreamServices) -> None:
        self.ws, self.ctx, self.cid, self.services = ws, ctx, cid, services
        settings = ctx.settings
        self.bucket = TokenBucket(settings.max_messages_per_s, settings.max_messages_burst)
        self.task: _Task | None = None
        self.results: dict[int, translate.ResultStream] = {}
        self.queue: asyncio.Queue[FeedItem] = asyncio.Queue()
        self.streamed: set[int] = set()
        self.noticed_ignored = False
        self.send_lock = asyncio.Lock()

    async def run(self) -> None:
        """Wait for a slot, then serve until the client leaves or a refusal closes the socket."""
        slots = self.services.slots
        if slots.full:
            await self._send({"status": "loaded", "delay": str(slots.delay_s())})
        async with slots.hold():
            await self._send({"status": "ready"})
            pusher = asyncio.create_task(self._push_results())
            try:
                await self._serve()
            finally:
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pusher
                for pid in self.results:
                    self.services.feed.unsubscribe(str(pid), self.queue)

    async def _serve(self) -> None:
        try:
            try:
                await self._loop()
            except _Refusal as refusal:
                log.info("oliver stream of client %s refused: %s", self.cid, refusal.message)
                await self._end_task(refusal.message)
                await self._close({"code": refusal.code, "message": refusal.message}, refusal.close_code)
        except KafkaUnavailableError as exc:
            log.error("oliver stream of client %s: %s", self.cid, exc)
            self.task = None  # nothing more can be written
            await self._close(SERVICE_UNAVAILABLE, CLOSE_TRY_AGAIN)

    async def _loop(self) -> None:
        while True:
            message = await self._receive()
            if message is None:
                await self._idle()
            elif message["type"] == "websocket.disconnect":
                await self._end_task("client disconnected")
                return
            elif message.get("bytes") is not None:
                data: bytes = message["bytes"]
                self._check_limits(len(data))
                await self._audio(data)
            else:
                text: str = message.get("text") or ""
                self._check_limits(len(text.encode()))
                await self._control(text)

    async def _receive(self) -> Message | None:
        """The next client message; None when the active task's idle time ran out first."""
        if self.task is None:
            return await self.ws.receive()
        remaining = self.task.last_audio_s + self.ctx.settings.oliver_idle_timeout_s - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                return await self.ws.receive()
        except TimeoutError:
            return None

    def _check_limits(self, size: int) -> None:
        settings = self.ctx.settings
        if size > settings.max_frame_bytes:
            limit = settings.max_frame_bytes
            raise _Refusal(413, f"a message of {size} bytes exceeds the limit of {limit} bytes", CLOSE_TOO_BIG)
        if not self.bucket.allow(time.monotonic()):
            rate, burst = settings.max_messages_per_s, settings.max_messages_burst
            raise _Refusal(429, f"more than {rate:g} messages/s (burst {burst}): rate limit exceeded", CLOSE_POLICY)

    async def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            await self._faulty(f"control message is not JSON: {text[:200]!r}")
            return
        control = message.get("control") if isinstance(message, dict) else None
        if control == "start":
            await self._start(message, text)
        elif control == "end":
            await self._end(text)
        else:
            await self._faulty(f"unknown control message {text[:200]!r}; expected control 'start' or 'end'")

    async def _start(self, message: dict[str, Any], raw: str) -> None:
        if self.task is not None:
            await self._faulty(f"the task of pid {self.task.job.pid} is active; send end first")
            return
        try:
            start = StartControl.model_validate(message)
        except ValidationError as exc:
            await self._faulty(describe(exc))
            return
        job, problem = await self._job(start)
        if job is None:
            await self._faulty(problem)
            return
        await self.services.feed.wait_ready(self.ctx.settings.produce_timeout_s)
        if job.pid not in self.results:
            self.results[job.pid] = translate.ResultStream(job.pid, job.tasks)
            self.services.feed.subscribe(str(job.pid), self.queue)
        events = translate.stream_started(job, start.format, job.channels, self.ctx.clock_ms(), raw)
        await self._send_events(job, events)
        framer = framer_for(start.format, job.channels, self.ctx.settings.audio_chunk_ms)
        self.task = _Task(job=job, framer=framer, last_audio_s=time.monotonic())
        self.streamed.add(job.pid)
        await self._send({"status": "accepting"})

    async def _job(self, start: StartControl) -> tuple[JobInfo | None, str]:
        """The job to stream, with the start's channel count applied; or None and why it is refused."""
        if start.pid in self.streamed:
            return None, f"pid {start.pid} was already streamed on this socket"
        job = await self.services.directory.find(start.pid)
        if job is None or job.cid != self.cid:
            return None, f"pid {start.pid} is not a streaming job of client {self.cid}"
        if Status(job.status).final:
            return None, f"job {start.pid} has ended (status {job.status})"
        if start.channels is not None and start.channels != job.channels:
            return None, f"channels {start.channels} contradicts the job's channels {job.channels}"
        return job, ""

    async def _audio(self, data: bytes) -> None:
        task = self.task
        if task is None:
            if not self.noticed_ignored:
                self.noticed_ignored = True
                await self._send({"status": "ready", "error": "audio received while no task is active is ignored"})
            return
        task.last_audio_s = time.monotonic()
        try:
            chunks = task.framer.feed(data)
        except FramingError as exc:
            reason, _ = await self._end_task(str(exc), aborted=True)
            await self._send({"status": "ready", "error": reason})
            return
        await self._write_chunks(task, chunks)

    async def _end(self, raw: str) -> None:
        if self.task is None:
            await self._faulty("no task is active to end")
            return
        reason, discarded = await self._end_task("", raw=raw)
        reply = {"status": "ready"}
        if reason:
            reply["error"] = reason
        elif discarded:
            reply["error"] = f"{discarded} trailing bytes did not form a whole sample frame and were not forwarded"
        await self._send(reply)

    async def _idle(self) -> None:
        assert self.task is not None
        pid, idle = self.task.job.pid, self.ctx.settings.oliver_idle_timeout_s
        reason = f"no audio for {idle:g} s"
        await self._end_task(reason)
        await self._send({"status": "ready", "error": f"{reason}: the task of pid {pid} ended"})

    async def _end_task(self, reason: str, *, raw: str = "", aborted: bool = False) -> tuple[str, int]:
        """Flush the active task's audio, then StreamStopped and CallEnded; (reason, bytes not forwarded)."""
        task, self.task = self.task, None
        self.noticed_ignored = False
        if task is None:
            return reason, 0
        framer = task.framer
        try:
            chunks = framer.abort() if aborted else framer.flush()
        except FramingError as exc:
            reason, chunks = str(exc), framer.abort()
        await self._write_chunks(task, chunks)
        duration_ms = framer.samples * 1000 // framer.sample_rate if framer.sample_rate else None
        events = translate.stream_stopped(task.job, reason, duration_ms, self.ctx.clock_ms(), raw)
        await self._send_events(task.job, events)
        return reason, framer.discarded

    async def _write_chunks(self, task: _Task, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        now = self.ctx.clock_ms()
        items = []
        for chunk in chunks:
            items.append((str(task.job.pid), AUDIO_CHUNK, translate.audio_chunk(task.job, chunk, task.sequence, now)))
            task.sequence += 1
        await self.ctx.sink.send_many(self.ctx.topics.audio, items)

    async def _send_events(self, job: JobInfo, events: list[dict[str, Any]]) -> None:
        await self.ctx.sink.send_many(self.ctx.topics.events, [(str(job.pid), CALL_EVENT, e) for e in events])

    async def _push_results(self) -> None:
        while True:
            key, name, record = await self.queue.get()
            stream = self.results.get(int(key)) if key.isdigit() else None
            message = stream.message(name, record) if stream is not None else None
            if stream is None or message is None:
                continue
            await self._send(message)
            if message["is_final"]:
                self.services.feed.unsubscribe(key, self.queue)
                del self.results[stream.pid]

    async def _faulty(self, detail: str) -> None:
        status = "accepting" if self.task is not None else "ready"
        await self._send({"status": status, "error": FAULTY_PARAMETERS, "detail": detail})

    async def _send(self, message: dict[str, Any]) -> None:
        """Send a JSON text message; a client that has gone is not an error (its disconnect ends the loop)."""
        async with self.send_lock:
            if self.ws.application_state != WebSocketState.CONNECTED:
                return
            with contextlib.suppress(WebSocketDisconnect):
                await self.ws.send_text(translate.dumps(message))

    async def _close(self, message: dict[str, Any], code: int) -> None:
        await self._send(message)
        async with self.send_lock:
            if self.ws.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(WebSocketDisconnect):
                    await self.ws.close(code)
