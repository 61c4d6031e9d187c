"""The callback endpoints: ``POST /mediaservice/{domain}/{callbackName}``.

The customer configures ``callbackBaseUrl = https://<gateway>/mediaservice/<domain>``; the platform
posts each callback (newCall, callEvent, getIvrCommand, ...) to ``<callbackBaseUrl>/<name>`` and its
alarms to the path the domain's policy names (``alarm_path``, default ``alarm``). A domain is served
only when ``<policies_path>/<domain>.json`` exists; the policy names the tenant (cid) and answers the
decision callbacks (policy.py, decide.py). Every callback becomes one CallEvent on calls.events,
keyed by the call id (translate.py).

Never blocking the platform: a callback is answered within ``mediaservice_answer_timeout_s``
whatever Kafka does. Kafka gets that time minus a reserve (a quarter, at most ``RESERVE_S``) for
the spool and the answer; a record Kafka has not acknowledged by then is appended to the durable
spool (fsync'd) and the callback answered anyway (decision callbacks with the policy's decision,
the others ``{}``). The outbox's drainer delivers spooled records in order once Kafka is back
(outbox.py). Only when the spool cannot be written either is the answer 503.

Refusals (JSON ``{"code": <status>, "message": ...}``, nothing written): 401 callback auth (auth.py),
404 unknown domain or callback, 413 body over ``MAX_BODY_BYTES``, 400 a body that is not a JSON
object, has a field of the wrong type (named) or carries no call id, 500 a policy file that never loaded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from producers.context import GatewayContext
from producers.mediaservice import decide
from producers.mediaservice.auth import CallbackAuthError, verifier
from producers.mediaservice.models import (
    ALARM,
    MODELS,
    CallbackBody,
    CallbackError,
    CallEvent,
    GetCallIdentifier,
    GetIvrCommand,
    NewCall,
    NewRemoteCall,
)
from producers.mediaservice.outbox import Outbox, OutboxError
from producers.mediaservice.policy import Policy, PolicyError, PolicyStore
from producers.mediaservice.translate import Inbound, MissingCallIdError, Options, call_id, to_record
from schemas import CALL_EVENT, AvroCodec

log = logging.getLogger(__name__)

PREFIX = "/mediaservice"
MAX_BODY_BYTES = 256 * 1024
RESERVE_S = 0.5
SHOWN_ERRORS = 5


class CallbackRefused(CallbackError):
    """A callback refused with an HTTP status and a message naming the bad value."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _refusal(exc: Exception) -> tuple[int, str, dict[str, str]]:
    if isinstance(exc, CallbackRefused):
        return exc.status, exc.message, {}
    if isinstance(exc, CallbackAuthError):
        return 401, str(exc), {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, MissingCallIdError):
        return 400, str(exc), {}
    if isinstance(exc, PolicyError):
        return 500, "The domain's policy file is not valid; see the gateway log", {}
    return 503, str(exc), {}


class CallbackRoute(APIRoute):
    """Answers the callback edge's own errors as ``{"code", "message"}``; Kafka errors reach the gateway."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (CallbackRefused, CallbackAuthError, MissingCallIdError, PolicyError, OutboxError) as exc:
                status, message, headers = _refusal(exc)
                return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)

        return handle


def kafka_budget(answer_timeout_s: float) -> float:
    """Seconds Kafka gets before a record is spooled instead."""
    return answer_timeout_s - min(RESERVE_S, answer_timeout_s / 4)


def router(ctx: GatewayContext) -> APIRouter:
    """The callback routes; registers the outbox drainer as a gateway service."""
    settings = ctx.settings
    check = verifier(
        settings.mediaservice_callback_auth,
        settings.mediaservice_callback_secret.get_secret_value() if settings.mediaservice_callback_secret else None,
        settings.mediaservice_callback_public_key,
    )
    policies = PolicyStore(settings.policies_path)
    outbox = Outbox(settings, settings.data_dir / "spool" / "mediaservice")
    ctx.add_service(outbox.running)
    codec = AvroCodec.default()
    api = APIRouter(route_class=CallbackRoute)

    @api.post(PREFIX + "/{domain}/{name}")
    async def callback(domain: str, name: str, request: Request) -> JSONResponse:
        deadline = asyncio.get_running_loop().time() + kafka_budget(settings.mediaservice_answer_timeout_s)
        check.verify(request.headers.get("authorization"))
        policy = policies.get(domain)
        if policy is None:
            raise CallbackRefused(404, f"Unknown mediaservice domain {domain!r}: no policy file {domain}.json")
        kind = callback_kind(name, policy)
        raw = await read_body(request)
        parsed, body = parse_body(kind, raw)
        key = call_id(kind, body)
        decision = decide_for(policy, body, key, domain)
        inbound = Inbound(kind, body, parsed, raw, domain, policy.cid, ctx.clock_ms())
        options = Options(policy.roles.caller, policy.roles.callee, policy.session_duration_unit)
        record = to_record(inbound, options, decision)
        acked = await outbox.deliver(ctx.topics.events, key, codec.encode(CALL_EVENT, record), deadline)
        log.debug("mediaservice %s %s for call %s: %s", domain, kind, key, "acked" if acked else "spooled")
        return JSONResponse(decision if decision is not None else {})

    return api


def callback_kind(name: str, policy: Policy) -> str:
    """The canonical callback name of a path name (the domain's alarm path is the alarm callback)."""
    if name == policy.alarm_path:
        return ALARM
    if name == ALARM or name not in MODELS:
        known = ", ".join(sorted({*MODELS, policy.alarm_path} - {ALARM}))
        raise CallbackRefused(404, f"Unknown mediaservice callback {name!r}; callbacks: {known}")
    return name


async def read_body(request: Request) -> str:
    """The body as text, at most ``MAX_BODY_BYTES`` (413 beyond)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise CallbackRefused(413, f"Body of {declared} bytes exceeds the limit of {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise CallbackRefused(413, f"Body exceeds the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CallbackRefused(400, f"Body is not UTF-8 JSON: {exc}") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_body(kind: str, raw: str) -> tuple[dict[str, Any], CallbackBody]:
    """The JSON object and its validated model; 400 naming the bad fields."""
    try:
        parsed = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise CallbackRefused(400, f"Invalid {kind} body: not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise CallbackRefused(400, f"Invalid {kind} body: expected a JSON object, got {type(parsed).__name__}")
    try:
        return parsed, MODELS[kind].model_validate(parsed)
    except ValidationError as exc:
        raise CallbackRefused(400, f"Invalid {kind} body: {describe(exc.errors())}") from exc


def describe(errors: list[Any]) -> str:
    """The first validation errors as ``field: problem; ...``."""
    shown = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e['msg']}" for e in errors[:SHOWN_ERRORS]]
    more = len(errors) - SHOWN_ERRORS
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def decide_for(policy: Policy, body: CallbackBody, key: str, domain: str) -> dict[str, Any] | None:
    """Our answer to a decision callback; None for the notification callbacks."""
    if isinstance(body, NewCall):
        return decide.new_call(policy, body, key, domain)
    if isinstance(body, CallEvent):
        return decide.call_event(policy, body, key, domain)
    if isinstance(body, GetIvrCommand):
        return decide.ivr_command(policy, body, key, domain)
    if isinstance(body, GetCallIdentifier):
        return decide.call_identifier(policy, body, key, domain)
    if isinstance(body, NewRemoteCall):
        return decide.remote_call(policy, body, key, domain)
    return None
