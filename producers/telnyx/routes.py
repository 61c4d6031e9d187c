"""Telnyx endpoints of the gateway: Call Control streaming commands and the media WebSocket.

- ``POST [/v2]/calls/{call_control_id}/actions/streaming_start`` and ``.../streaming_stop``:
  ``Authorization: Bearer <tenant API key>``. The accepted command is produced as a CallEvent
  (VendorEvent ``streaming_start``/``streaming_stop``) keyed by call_control_id before the 200
  ``{"data": {"result": "ok"}}``. A repeated ``command_id`` for the same call is answered with the
  same 200 and produces nothing when this instance has seen it (in-process TTL/LRU); across
  instances the duplicate gets the same content-derived event id and is dropped downstream.
- ``POST [/v2]/calls/{call_control_id}/actions/<other>``: 404.
- ``WS /telnyx/media/{cid}``: the ``stream_url`` to give Telnyx (see media_socket.py).

Errors use Telnyx's JSON:API body ``{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}``:
401 ``10009`` (no/unknown key), 403 ``10010`` (the call was started by another tenant on this
instance), 404 ``10005``, 413 ``10015`` (body above ``max_frame_bytes``), 422 ``10015`` (malformed
JSON, wrong type, bad enum, invalid base64 ``client_state``), ``10004`` (missing) or ``10003`` (bad
URL), and 503 ``90503`` when Kafka does not acknowledge (retry with the same ``command_id``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from producers.context import GatewayContext
from producers.telnyx.calls import CallConfig, CallMemory
from producers.telnyx.media_socket import MediaSession, TelnyxEdge
from producers.telnyx.models import MAX_ID_CHARS, ApiError, Command, StreamingStart, StreamingStop, validation_errors
from producers.telnyx.translate import command_event, redacted_body
from producers.telnyx.webhooks import WebhookSender
from producers.tenancy import bearer
from schemas import CALL_EVENT

OK = {"data": {"result": "ok"}}
PREFIXES = ("/calls/", "/v2/calls/")
UNAVAILABLE = ApiError(
    "90503",
    "Service unavailable",
    "The command could not be stored (Kafka did not acknowledge it). Retry it with the same command_id.",
)


def errors(status: int, *found: ApiError) -> JSONResponse:
    """A Telnyx JSON:API error response."""
    return JSONResponse({"errors": [error.to_json() for error in found]}, status_code=status)


def unavailable() -> Response:
    """The 503 body of the Telnyx paths."""
    return errors(503, UNAVAILABLE)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            return None
    return bytes(body)


def parse_command(body: bytes, model: type[Command]) -> tuple[Command, dict[str, Any]] | JSONResponse:
    """The validated command and its JSON object, or the 422 response."""
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        return errors(422, ApiError("10015", "Bad Request", f"The request body is not valid JSON: {exc}", "/"))
    if not isinstance(data, dict):
        return errors(
            422, ApiError("10015", "Bad Request", f"The body must be a JSON object, not {type(data).__name__}", "/")
        )
    try:
        return model.model_validate(data), data
    except ValidationError as exc:
        return errors(422, *validation_errors(exc))


def remembered(known: CallConfig | None, cid: int, command: Command) -> CallConfig:
    """The call's configuration after ``command``; a command without client_state keeps the previous one."""
    base = known if known is not None else CallConfig(cid=cid)
    client_state = command.client_state or base.client_state
    if isinstance(command, StreamingStart):
        return CallConfig(
            cid=cid,
            stream_track=command.stream_track,
            stream_url=command.stream_url,
            stream_auth_token=command.stream_auth_token,
            client_state=client_state,
            webhook_url=command.webhook_url or base.webhook_url,
        )
    return dataclasses.replace(base, client_state=client_state)


async def accept_command(edge: TelnyxEdge, request: Request, call_control_id: str, action: str) -> Response:
    """Authenticate, validate, deduplicate and produce one streaming command."""
    ctx, memory = edge.ctx, edge.memory
    cid = ctx.tenants.cid_for(bearer(request.headers.get("authorization")))
    if cid is None:
        detail = "Authorization: Bearer <API key> is missing or not a known key"
        return errors(401, ApiError("10009", "Authentication failed", detail))
    if action not in ("streaming_start", "streaming_stop"):
        detail = f"action {action[:40]!r} is not supported here (streaming_start, streaming_stop)"
        return errors(404, ApiError("10005", "Resource not found", detail))
    if len(call_control_id) > MAX_ID_CHARS:
        detail = f"call_control_id of {len(call_control_id)} chars is longer than {MAX_ID_CHARS}"
        return errors(422, ApiError("10015", "Invalid parameter", detail))
    body = await read_body(request, ctx.settings.max_frame_bytes)
    if body is None:
        detail = f"The request body is larger than {ctx.settings.max_frame_bytes} bytes"
        return errors(413, ApiError("10015", "Request entity too large", detail, "/"))
    parsed = parse_command(body, StreamingStart if action == "streaming_start" else StreamingStop)
    if isinstance(parsed, JSONResponse):
        return parsed
    command, data = parsed
    now = ctx.clock_ms()
    known = memory.calls.get(call_control_id, now)
    if known is not None and known.cid != cid:
        detail = f"call {call_control_id} belongs to another account"
        return errors(403, ApiError("10010", "Authorization failed", detail))
    seen = (call_control_id, command.command_id) if command.command_id is not None else None
    if seen is not None and memory.commands.get(seen, now):
        return JSONResponse(OK)
    raw = redacted_body(body, data)
    record = command_event(
        call_control_id=call_control_id, cid=cid, action=action, command=command, raw=raw, received_ms=now
    )
    await ctx.sink.send(ctx.topics.events, call_control_id, CALL_EVENT, record)
    if seen is not None:
        memory.commands.put(seen, True, now)
    memory.calls.put(call_control_id, remembered(known, cid, command), now)
    return JSONResponse(OK)


def router(ctx: GatewayContext) -> APIRouter:
    """The Telnyx routes; registers the webhook sender service and the Telnyx 503 body."""
    settings = ctx.settings
    sender = WebhookSender(
        settings.telnyx_webhook_private_key,
        attempts=settings.telnyx_webhook_attempts,
        backoff_s=settings.telnyx_webhook_backoff_s,
    )
    edge = TelnyxEdge(ctx=ctx, memory=CallMemory.create(), sender=sender)
    ctx.add_service(sender.running)
    for prefix in PREFIXES:
        ctx.on_unavailable(prefix, unavailable)

    api = APIRouter(tags=["telnyx"])

    async def command(request: Request, call_control_id: str, action: str) -> Response:
        return await accept_command(edge, request, call_control_id, action)

    async def media(websocket: WebSocket, cid: str) -> None:
        await websocket.accept()
        await MediaSession(edge, websocket).run(cid)

    for prefix in PREFIXES:
        api.add_api_route(f"{prefix}{{call_control_id}}/actions/{{action}}", command, methods=["POST"])
    api.add_api_websocket_route("/telnyx/media/{cid}", media)
    return api
