"""The command API: ``POST /v1/clients/{cid}/calls/{call_id}/commands/{op}`` queues a Command on calls.commands.

The answer (202) comes only after Kafka acknowledged the record; the dispatcher in the worker
sends it to the mediaservice (docs/commands.md). Errors use the API's shape
``{"code": <int>, "message": "..."}``, produced in one place: the route class below. Kafka
outages reach the gateway's one 503 handler.

Idempotency: the ``Idempotency-Key`` header or the body's ``command_id`` becomes the command id
(else a new uuid4). Repeating a request with the same id answers the same 202 and produces the
same Command again; the dispatcher executes a command id once.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from producers.context import GatewayContext
from producers.mediaservice.commands_models import MODELS, CommandBody
from producers.tenancy import bearer
from schemas import COMMAND

PATH = "/v1/clients/{cid}/calls/{call_id}/commands/{op}"
MAX_BODY_BYTES = 64 * 1024
MAX_CALL_ID_CHARS = 256
COMMAND_ID = re.compile(r"^[!-~]{1,128}$")
SHOWN_ERRORS = 5


class CommandRequestError(Exception):
    """A refused command request: the HTTP status and a message naming the bad value."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CommandRoute(APIRoute):
    """Answers ``CommandRequestError`` with ``{"code", "message"}``; everything else propagates."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except CommandRequestError as exc:
                return JSONResponse({"code": exc.status, "message": exc.message}, status_code=exc.status)

        return handle


def router(ctx: GatewayContext) -> APIRouter:
    """The command routes over the gateway's context."""
    api = APIRouter(route_class=CommandRoute)

    @api.post(PATH, status_code=202)
    async def issue_command(cid: str, call_id: str, op: str, request: Request) -> JSONResponse:
        tenant = authorised(ctx, request.headers.get("authorization"), cid)
        model = op_model(op)
        if len(call_id) > MAX_CALL_ID_CHARS:
            raise CommandRequestError(400, f"call_id is longer than {MAX_CALL_ID_CHARS} characters")
        body = parse_body(op, model, await request.body())
        command_id = choose_command_id(request.headers.get("idempotency-key"), body.command_id)
        record = {
            "command_id": command_id,
            "call_id": call_id,
            "cid": tenant,
            "domain": body.domain or "",
            "op": op,
            "body": json.dumps(body.vendor_body(), separators=(",", ":"), sort_keys=True),
            "requested_at": ctx.clock_ms(),
        }
        await ctx.sink.send(ctx.topics.commands, call_id, COMMAND, record)
        answer = {"command_id": command_id, "call_id": call_id, "op": op, "status": "queued"}
        return JSONResponse(answer, status_code=202)

    return api


def authorised(ctx: GatewayContext, header: str | None, cid: str) -> int:
    """The path's tenant when the bearer key is its key: 401 without a valid key, 403 for another tenant."""
    credential = bearer(header)
    if ctx.tenants.cid_for(credential) is None:
        raise CommandRequestError(401, "Missing or invalid bearer API key (Authorization: Bearer <key>)")
    if not cid.isdigit():
        raise CommandRequestError(400, f"Invalid cid {cid!r}: a client id is a number")
    if not ctx.tenants.owns(int(cid), credential):
        raise CommandRequestError(403, f"This API key does not give access to client {cid}")
    return int(cid)


def op_model(op: str) -> type[CommandBody]:
    """The body model of ``op``; 404 naming the valid ops otherwise."""
    model = MODELS.get(op)
    if model is None:
        raise CommandRequestError(404, f"Unknown command {op!r}; valid commands: {', '.join(sorted(MODELS))}")
    return model


def parse_body(op: str, model: type[CommandBody], raw: bytes) -> CommandBody:
    """The validated body (an empty body is ``{}``); 413 when too large, 400 naming the bad fields."""
    if len(raw) > MAX_BODY_BYTES:
        raise CommandRequestError(413, f"Body of {len(raw)} bytes exceeds the limit of {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        raise CommandRequestError(400, f"Invalid {op} body: {describe(exc.errors())}") from exc


def describe(errors: list[Any]) -> str:
    """The first validation errors as ``field: problem; ...``."""
    parts = []
    for error in errors[:SHOWN_ERRORS]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    more = len(errors) - SHOWN_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def choose_command_id(header: str | None, body_id: str | None) -> str:
    """Idempotency-Key header or body command_id (equal if both given); else a new uuid4."""
    if header is not None and not COMMAND_ID.match(header):
        raise CommandRequestError(400, f"Invalid Idempotency-Key {header!r}: 1-128 printable characters, no spaces")
    if header is not None and body_id is not None and header != body_id:
        raise CommandRequestError(400, f"Idempotency-Key {header!r} and command_id {body_id!r} differ")
    return header or body_id or str(uuid.uuid4())
