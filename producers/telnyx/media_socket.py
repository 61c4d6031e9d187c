"""One Telnyx media WebSocket (``/telnyx/media/{cid}``): authorise, read frames, produce records, send webhooks.

Every frame is handled completely — its records acknowledged by Kafka — before the next is read.
How each problem is answered (the socket is always accepted first, so the close code reaches Telnyx):

| problem | answer |
|---|---|
| tenant key missing/wrong, configured or per-call stream token mismatch, call of another tenant | close 1008 |
| binary frame | close 1003 |
| frame larger than ``max_frame_bytes`` | close 1009 |
| more messages than ``max_messages_per_s`` / ``max_messages_burst`` | close 1008 |
| invalid frame (JSON, types, base64) before ``start``; media/dtmf/mark/stop before ``start`` | close 1007 / 1002 |
| ``start`` with an encoding we cannot store (OPUS, AMR-WB, unknown) | PlatformAlarm ``stream_error``, close 1003 |
| invalid frame after ``start`` (JSON, types, base64, misaligned audio, 2nd start) | PlatformAlarm ``invalid_frame`` |
| ``error`` frame | PlatformAlarm ``stream_error`` |
| Kafka does not acknowledge | close 1011 (nothing is silently dropped) |

Whenever a started stream ends — ``stop`` (close 1000 after it), a drop without ``stop`` (reason
"socket closed") or one of the closes above — the tail audio is flushed, a StreamStopped event
(reason empty for ``stop``; drop/duplicate/late/filter counts in attributes) is produced and a
streaming.stopped (``stop``) or streaming.failed (anything else) webhook is queued.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import WebSocket, WebSocketDisconnect

from producers.context import GatewayContext
from producers.limits import TokenBucket
from producers.sink import KafkaUnavailableError
from producers.telnyx.calls import CallConfig, CallMemory
from producers.telnyx.errors import FrameError, TelnyxError, UnsupportedEncodingError
from producers.telnyx.media import Packet as AudioPacket
from producers.telnyx.media import StreamAssembler, audio_format
from producers.telnyx.models import (
    ConnectedFrame,
    DtmfFrame,
    ErrorFrame,
    Frame,
    MarkFrame,
    MediaFrame,
    StartFrame,
    StopFrame,
    parse_frame,
)
from producers.telnyx.translate import (
    KEPT_TRACKS,
    Record,
    StreamInfo,
    audio_chunk,
    call_event,
    event_id,
    started_events,
    stream_event,
    track_roles,
)
from producers.telnyx.webhooks import Webhook, WebhookSender, stream_payload
from schemas import AUDIO_CHUNK, CALL_EVENT

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-telnyx-streaming-auth-token"
# WebSocket close codes (RFC 6455 §7.4.1)
NORMAL, PROTOCOL_ERROR, UNSUPPORTED_DATA, INVALID_DATA = 1000, 1002, 1003, 1007
POLICY, TOO_BIG, INTERNAL = 1008, 1009, 1011
MAX_REASON_BYTES = 123  # RFC 6455: control frame payload <= 125 bytes, 2 of them the code


class StreamClosingError(TelnyxError):
    """The socket must be closed with ``code``; ``reason`` says why (also the StreamStopped reason)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"close {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass
class TelnyxEdge:
    """What every Telnyx endpoint of one gateway instance shares."""

    ctx: GatewayContext
    memory: CallMemory
    sender: WebhookSender


def same_secret(presented: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing value never matches."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def _short(reason: str) -> str:
    return reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


class MediaSession:
    """The state of one media socket, from upgrade to close."""

    def __init__(self, edge: TelnyxEdge, websocket: WebSocket) -> None:
        self.edge, self.ctx, self.ws = edge, edge.ctx, websocket
        settings = self.ctx.settings
        self.bucket = TokenBucket(rate=settings.max_messages_per_s, burst=settings.max_messages_burst)
        self.header_token = websocket.headers.get(TOKEN_HEADER)
        self.reached_at = f"{websocket.url.scheme}://{websocket.url.netloc}{websocket.url.path}"
        self.cid = 0
        self.info: StreamInfo | None = None
        self.config: CallConfig | None = None
        self.assembler: StreamAssembler | None = None
        self.finished = False
        self.disconnected = False

    async def run(self, cid_text: str) -> None:
        """Serve the socket until it stops, drops or must be closed."""
        try:
            code, reason = await self._serve(cid_text)
        except KafkaUnavailableError as exc:
            log.error("telnyx media socket: %s; closing with %d", exc, INTERNAL)
            code, reason = INTERNAL, "Kafka unavailable: audio could not be stored"
            self._webhook("streaming.failed", self.ctx.clock_ms(), reason)
        if code is None or self.disconnected:
            return
        try:
            await self.ws.close(code, _short(reason))
        except WebSocketDisconnect:
            log.info("telnyx media socket went away before close %d (%s) could be sent", code, reason)

    async def _serve(self, cid_text: str) -> tuple[int | None, str]:
        try:
            self.cid = self._authorise(cid_text)
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    self.disconnected = True
                    await self._end("socket closed", self.ctx.clock_ms())
                    return None, ""
                if await self._handle(self._text(message)):
                    return NORMAL, "stream stopped"
        except StreamClosingError as closing:
            log.warning("telnyx media socket for tenant %s: %s", cid_text, closing)
            await self._end(closing.reason, self.ctx.clock_ms())
            return closing.code, closing.reason

    def _authorise(self, cid_text: str) -> int:
        """The tenant of the path, once its key is presented (header or ``?token=``) and tokens match."""
        if not cid_text.isdigit():
            raise StreamClosingError(POLICY, f"tenant {cid_text[:40]!r} is not a client id")
        cid = int(cid_text)
        tenants, query_token = self.ctx.tenants, self.ws.query_params.get("token")
        if not (tenants.owns(cid, self.header_token) or tenants.owns(cid, query_token)):
            raise StreamClosingError(
                POLICY, f"tenant {cid} not authorised: give its API key as ?token= or {TOKEN_HEADER}"
            )
        configured = self.ctx.settings.telnyx_stream_auth_token
        if configured is not None and not same_secret(self.header_token, configured.get_secret_value()):
            raise StreamClosingError(POLICY, f"{TOKEN_HEADER} does not match the configured streaming token")
        return cid

    def _text(self, message: Any) -> str:
        if message.get("bytes") is not None:
            raise StreamClosingError(UNSUPPORTED_DATA, "binary frame: Telnyx media frames are JSON text")
        text = str(message.get("text") or "")
        size, limit = len(text.encode()), self.ctx.settings.max_frame_bytes
        if size > limit:
            raise StreamClosingError(TOO_BIG, f"frame of {size} bytes exceeds max_frame_bytes {limit}")
        if not self.bucket.allow(time.monotonic()):
            raise StreamClosingError(POLICY, f"message rate above {self.bucket.rate:g}/s (burst {self.bucket.burst})")
        return text

    async def _handle(self, text: str) -> bool:
        """Process one frame; True once the stream has stopped."""
        received = self.ctx.clock_ms()
        try:
            frame = parse_frame(text)
            if isinstance(frame, ConnectedFrame):
                self._connected(frame)
            elif isinstance(frame, StartFrame):
                await self._start(frame, text, received)
            elif isinstance(frame, StopFrame):
                self._require_start(frame)
                await self._end("", received, text)
                return True
            else:
                await self._event(self._require_start(frame), frame, text, received)
        except FrameError as exc:
            await self._invalid(exc, text, received)
        return False

    def _require_start(self, frame: Frame) -> StreamInfo:
        if self.info is None:
            raise StreamClosingError(PROTOCOL_ERROR, f"{frame.event} frame before start")
        return self.info

    def _connected(self, frame: ConnectedFrame) -> None:
        if frame.stream_auth_token is not None and not same_secret(frame.stream_auth_token, self.header_token or ""):
            raise StreamClosingError(POLICY, f"token in the connected frame differs from {TOKEN_HEADER}")

    async def _start(self, frame: StartFrame, text: str, received: int) -> None:
        if self.info is not None:
            raise FrameError(f"second start frame (stream {frame.stream_id}) on stream {self.info.stream_id}")
        start = frame.start
        config = self.edge.memory.calls.get(start.call_control_id, received)
        if config is not None and config.cid != self.cid:
            raise StreamClosingError(POLICY, f"call {start.call_control_id} belongs to another tenant")
        token = config.stream_auth_token if config is not None else None
        if token is not None and not same_secret(self.header_token, token):
            raise StreamClosingError(POLICY, f"{TOKEN_HEADER} does not match stream_auth_token of the call")
        roles, problems = track_roles(start.custom_parameters)
        for problem in problems:
            log.warning("telnyx stream %s: %s; default role kept", frame.stream_id, problem)
        try:
            fmt = audio_format(start.media_format.encoding, start.media_format.sample_rate, start.media_format.channels)
        except UnsupportedEncodingError as exc:
            await self._unsupported(frame, text, received, str(exc))
        self.config = config
        self.info = StreamInfo(
            call_control_id=start.call_control_id,
            cid=self.cid,
            stream_id=frame.stream_id,
            fmt=fmt,
            call_session_id=start.call_session_id,
            client_state=start.client_state,
            roles=roles,
        )
        kept = KEPT_TRACKS.get(config.stream_track or "") if config is not None else None
        self.assembler = StreamAssembler(fmt, chunk_ms=self.ctx.settings.audio_chunk_ms, tracks=kept)
        await self._produce([], started_events(self.info, frame, text, received))
        self._webhook("streaming.started", received, None)

    async def _unsupported(self, frame: StartFrame, text: str, received: int, error: str) -> NoReturn:
        ccid = frame.start.call_control_id
        alarm = call_event(
            event_id=event_id("stream", ccid, frame.stream_id, "unsupported"),
            call_id=ccid,
            cid=self.cid,
            kind="PlatformAlarm",
            payload={"alarm_type": "stream_error", "error": error},
            raw=text,
            received_ms=received,
            attributes={"stream_id": frame.stream_id},
        )
        await self._send(ccid, [], [alarm])
        raise StreamClosingError(UNSUPPORTED_DATA, error)

    async def _event(self, info: StreamInfo, frame: Frame, text: str, received: int) -> None:
        seq = str(frame.sequence_number) if frame.sequence_number is not None else f"t{received}"
        if isinstance(frame, MediaFrame):
            await self._media(info, frame, received)
            return
        if isinstance(frame, DtmfFrame):
            kind, payload, key = "Dtmf", {"digits": frame.dtmf.digit, "track": frame.dtmf.track}, f"dtmf/{seq}"
        elif isinstance(frame, ErrorFrame):
            kind, key = "PlatformAlarm", f"error/{seq}"
            payload = {"alarm_type": "stream_error", "error": frame.body.text()}
            log.warning("telnyx stream %s reported an error: %s", info.stream_id, frame.body.text())
        elif isinstance(frame, MarkFrame):
            kind, payload, key = "VendorEvent", {"name": "mark"}, f"mark/{seq}"
        else:
            kind, payload, key = "VendorEvent", {"name": frame.event}, f"{frame.event}/{seq}"
        await self._produce([], [stream_event(info, kind, payload, key=key, raw=text, received_ms=received)])

    async def _media(self, info: StreamInfo, frame: MediaFrame, received: int) -> None:
        assert self.assembler is not None  # set together with info
        media = frame.media
        packet = AudioPacket(
            track=media.track_name,
            order=media.chunk if media.chunk is not None else frame.sequence_number,
            timestamp_ms=media.timestamp,
            payload=media.audio(),
            received_at_ms=received,
        )
        pieces = self.assembler.push(packet)
        await self._produce([audio_chunk(info, piece) for piece in pieces], [])

    async def _invalid(self, exc: FrameError, text: str, received: int) -> None:
        if self.info is None:
            raise StreamClosingError(INVALID_DATA, f"invalid frame before start: {exc}")
        log.warning("telnyx stream %s: %s", self.info.stream_id, exc)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        alarm = stream_event(
            self.info,
            "PlatformAlarm",
            {"alarm_type": "invalid_frame", "error": str(exc)},
            key=f"invalid/{received}/{digest}",
            raw=text,
            received_ms=received,
        )
        await self._produce([], [alarm])

    async def _end(self, reason: str, received: int, text: str = "") -> None:
        """Flush the tail, record StreamStopped, queue the webhook (once; nothing before ``start``)."""
        if self.info is None or self.assembler is None or self.finished:
            return
        self.finished = True
        info, counters = self.info, self.assembler.counters
        audio = [audio_chunk(info, piece) for piece in self.assembler.flush()]
        counts = {name: str(value) for name, value in vars(counters).items()}
        stopped = stream_event(
            info,
            "StreamStopped",
            {"stream_id": info.stream_id, "reason": reason},
            key="stop",
            raw=text,
            received_ms=received,
            attributes=counts,
        )
        await self._produce(audio, [stopped])
        self._webhook("streaming.failed" if reason else "streaming.stopped", received, reason or None)

    async def _produce(self, audio: Sequence[Record], events: Sequence[Record]) -> None:
        assert self.info is not None
        await self._send(self.info.call_control_id, audio, events)

    async def _send(self, key: str, audio: Sequence[Record], events: Sequence[Record]) -> None:
        sink, topics = self.ctx.sink, self.ctx.topics
        if audio:
            await sink.send_many(topics.audio, [(key, AUDIO_CHUNK, record) for record in audio])
        if events:
            await sink.send_many(topics.events, [(key, CALL_EVENT, record) for record in events])

    def _webhook(self, event_type: str, at_ms: int, failure_reason: str | None) -> None:
        """Queue a streaming.* webhook for the started stream, to the call's or the configured URL."""
        info = self.info
        if info is None:
            return
        latest = self.edge.memory.calls.get(info.call_control_id, at_ms) or self.config
        url = (latest.webhook_url if latest else None) or self.ctx.settings.telnyx_webhook_url
        if url is None:
            return
        payload = stream_payload(
            info,
            stream_url=(latest.stream_url if latest else None) or self.reached_at,
            client_state=(latest.client_state if latest else None) or info.client_state,
            track=latest.stream_track if latest else None,
            failure_reason=failure_reason,
        )
        webhook_id = event_id("webhook", info.call_control_id, info.stream_id, event_type)
        self.edge.sender.enqueue(Webhook(url, event_type, webhook_id, at_ms, payload))
