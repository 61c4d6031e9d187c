"""HTTP and WebSocket endpoints of the Cresta VoiceCallSession API.

- ``POST /v1/voicecallsession/streamCallSession`` and ``.../streamCallSessionAudio``: the request body is
  a stream of JSON objects (NDJSON or any whitespace separation), read and processed as it arrives; the
  response is ``200`` NDJSON, one ``{"result":...}`` or ``{"error":...}`` per line. Errors found before
  the response starts (credential, empty body, a first message that is not a valid streamingConfig)
  are a plain HTTP status with a google.rpc.Status body. The session ends when the body ends.
- The same paths over WebSocket: one message per text (or UTF-8 binary) frame, one response per
  frame. A bad credential refuses the handshake with 401 and a Status body. The server closes the
  socket after CALL_END has been answered (1000) or after an error chunk (1008; 1011 INTERNAL,
  1013 UNAVAILABLE). A client that closes first gets no further results, but what it sent is flushed.
- ``POST /v1/voicecallsession/{profile}/sessionEvent:process``: one sessionEvent → ``{}``.

Credentials: ``Authorization: Bearer <token>`` or the deprecated ``Authorization: ApiKey <key>``, both
resolved to the tenant by ``Tenants.cid_for``. Kafka outages answer 503 with a Status body (code 14)
before a stream starts, and an error chunk (code 14) after.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from typing import Any

import orjson
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from producers.context import GatewayContext
from producers.cresta.framing import Frame, JsonObjectSplitter, decode_object, too_large
from producers.cresta.models import (
    UNAVAILABLE_MESSAGE,
    Code,
    CrestaError,
    ProcessSessionEventRequest,
    parse_message,
)
from producers.cresta.session import Endpoint
from producers.cresta.stream import ClientGoneError, StreamDriver, pump
from producers.cresta.translate import process_event_record
from producers.tenancy import bearer
from schemas import CALL_EVENT

PREFIX = "/v1/voicecallsession"
NDJSON = "application/x-ndjson"
WS_CLOSE_CODES = {Code.INTERNAL: 1011, Code.UNAVAILABLE: 1013}
WS_POLICY_VIOLATION = 1008


def status_response(error: CrestaError) -> JSONResponse:
    """The plain HTTP answer of an error found before a response started."""
    headers = {"WWW-Authenticate": "Bearer"} if error.code is Code.UNAUTHENTICATED else None
    return JSONResponse(error.status(), status_code=error.http_status, headers=headers)


def unavailable_response() -> JSONResponse:
    """The 503 Status body of a Kafka outage (registered with the gateway's one handler)."""
    return status_response(CrestaError(Code.UNAVAILABLE, UNAVAILABLE_MESSAGE))


class NdjsonResponse(Response):
    """200, one JSON object per line, as the chunks are produced.

    Unlike ``StreamingResponse`` it does not listen for ``http.disconnect`` meanwhile: the stream
    itself is still reading the request body, and learns about a disconnect from it.
    """

    media_type = NDJSON

    def __init__(self, lines: AsyncGenerator[dict[str, Any], None]) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers()  # no body: no content-length, so the server sends the response chunked
        self._lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async with aclosing(self._lines) as lines:
            async for line in lines:
                await send({"type": "http.response.body", "body": orjson.dumps(line) + b"\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def router(ctx: GatewayContext) -> APIRouter:
    """The Cresta endpoints over ``ctx``; registers the Cresta 503 body for Kafka outages."""
    ctx.on_unavailable(PREFIX, unavailable_response)
    api = APIRouter()
    limit = ctx.settings.max_frame_bytes
    idle_s = ctx.settings.cresta_idle_flush_ms / 1000

    def tenant(authorization: str | None) -> int:
        cid = ctx.tenants.cid_for(bearer(authorization, "Bearer") or bearer(authorization, "ApiKey"))
        if cid is None:
            raise CrestaError(
                Code.UNAUTHENTICATED,
                "missing or unknown credential: send Authorization: Bearer <token> (or the deprecated ApiKey <key>)",
            )
        return cid

    async def open_http(request: Request, endpoint: Endpoint) -> Response:
        driver = StreamDriver(ctx, tenant(request.headers.get("authorization")), endpoint)
        frames = http_frames(request, limit)
        first = await anext(frames, None)
        if first is None:
            raise CrestaError(Code.INVALID_ARGUMENT, "the request body holds no message")
        lines = await driver.accept(first)
        return NdjsonResponse(_chain(lines, pump(driver, frames, idle_s, stop_when_ended=False)))

    async def serve_ws(websocket: WebSocket, endpoint: Endpoint) -> None:
        try:
            cid = tenant(websocket.headers.get("authorization"))
        except CrestaError as error:
            await deny(websocket, error)
            return
        await websocket.accept()
        driver = StreamDriver(ctx, cid, endpoint)
        close_code = 1000
        try:
            async with aclosing(pump(driver, ws_frames(websocket, limit), idle_s, stop_when_ended=True)) as lines:
                async for line in lines:
                    await websocket.send_text(orjson.dumps(line).decode())
                    if "error" in line:
                        close_code = WS_CLOSE_CODES.get(line["error"]["code"], WS_POLICY_VIOLATION)
        except WebSocketDisconnect:
            return  # the client left while we answered; pump has flushed what it sent
        if websocket.client_state is WebSocketState.CONNECTED:
            await websocket.close(close_code)

    @api.post(f"{PREFIX}/streamCallSession")
    async def stream_call_session(request: Request) -> Response:
        return await answer(open_http(request, Endpoint.STREAM))

    @api.post(f"{PREFIX}/streamCallSessionAudio")
    async def stream_call_session_audio(request: Request) -> Response:
        return await answer(open_http(request, Endpoint.AUDIO))

    @api.websocket(f"{PREFIX}/streamCallSession")
    async def stream_call_session_ws(websocket: WebSocket) -> None:
        await serve_ws(websocket, Endpoint.STREAM)

    @api.websocket(f"{PREFIX}/streamCallSessionAudio")
    async def stream_call_session_audio_ws(websocket: WebSocket) -> None:
        await serve_ws(websocket, Endpoint.AUDIO)

    @api.post(PREFIX + "/{profile}/sessionEvent:process")
    async def process_session_event(profile: str, request: Request) -> Response:
        async def process() -> Response:
            cid = tenant(request.headers.get("authorization"))
            frame = decode_object(await read_body(request, limit), 1, limit)
            message = parse_message(ProcessSessionEventRequest, frame.value)
            record = process_event_record(
                cid, profile, message.session_event, message.audio_streaming_mode, frame.text, ctx.clock_ms()
            )
            await ctx.sink.send(ctx.topics.events, record["call_id"], CALL_EVENT, record)
            return JSONResponse({})

        return await answer(process())

    return api


async def answer(handler: Awaitable[Response]) -> Response:
    """The handler's response, or the Status response of the ``CrestaError`` it raised."""
    try:
        return await handler
    except CrestaError as error:
        return status_response(error)


async def deny(websocket: WebSocket, error: CrestaError) -> None:
    """Refuse a WebSocket handshake with the HTTP status and Status body (close 1008 without the extension)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(status_response(error))
    else:
        await websocket.close(WS_POLICY_VIOLATION, error.message[:120])


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole request body; RESOURCE_EXHAUSTED as soon as it exceeds ``max_bytes``."""
    body = bytearray()
    async for data in request.stream():
        body += data
        if len(body) > max_bytes:
            raise too_large(len(body), max_bytes)
    return bytes(body)


async def http_frames(request: Request, max_bytes: int) -> AsyncGenerator[Frame, None]:
    """The messages of a streaming request body, as they arrive."""
    splitter = JsonObjectSplitter(max_bytes)
    stream = request.stream()
    while True:
        try:
            data = await anext(stream, None)
        except ClientDisconnect as exc:
            raise ClientGoneError("HTTP client disconnected") from exc
        if data is None:
            break
        for frame in splitter.feed(data):
            yield frame
    splitter.end()


async def ws_frames(websocket: WebSocket, max_bytes: int) -> AsyncGenerator[Frame, None]:
    """The messages of a WebSocket, one per frame."""
    index = 0
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise ClientGoneError(f"WebSocket closed with code {message.get('code', 1000)}")
        index += 1
        data = message.get("text")
        yield decode_object(data if data is not None else message.get("bytes") or b"", index, max_bytes)


async def _chain(
    first: list[dict[str, Any]], rest: AsyncGenerator[dict[str, Any], None]
) -> AsyncGenerator[dict[str, Any], None]:
    async with aclosing(rest):
        for line in first:
            yield line
        async for line in rest:
            yield line
