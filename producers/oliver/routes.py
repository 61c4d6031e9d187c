"""Oliver API routes: create a batch job from an uploaded file, create a streaming job, the live audio WebSocket.

Errors are answered in Oliver's shape ``{"code": <HTTP status>, "message": "..."}``. A router cannot
register exception handlers, so the endpoints parse their own parameters (pydantic models in
``models``) and raise ``OliverError``s, which ``OliverRoute`` turns into responses for exactly these
paths; FastAPI's 422 never appears because no parameter is declared for FastAPI to validate.
``KafkaUnavailableError`` is left to the gateway's one handler, which answers with the seed's 503 body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, QueryParams

from producers.context import GatewayContext
from producers.oliver import translate
from producers.oliver.audio_probe import probe
from producers.oliver.blobs import BlobStore, LocalBlobStore
from producers.oliver.errors import BadRequestError, ForbiddenError, OliverError, UnauthorizedError
from producers.oliver.feed import ResultFeed
from producers.oliver.jobs import JobDirectory
from producers.oliver.models import AUTH_HEADER, Mode, ProcessParams, StreamParams
from producers.oliver.stream import StreamServices, StreamSession, StreamSlots
from producers.oliver.upload import receive_file
from schemas import JOB_TRANSITION, AvroCodec


def error_response(error: OliverError) -> JSONResponse:
    """Oliver's error body with the error's HTTP status."""
    return JSONResponse({"code": error.status, "message": str(error)}, status_code=error.status)


class OliverRoute(APIRoute):
    """Answers the ``OliverError`` an endpoint raises as Oliver's error body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except OliverError as exc:
                return error_response(exc)

        return guarded


def authenticate(ctx: GatewayContext, cid_text: str, headers: Headers, query: QueryParams) -> int:
    """The path's tenant if ``X-Auth-Token`` (header or query parameter) is its key; 401 missing/unknown, 403 other."""
    token = headers.get(AUTH_HEADER) or query.get(AUTH_HEADER)
    if not token:
        raise UnauthorizedError(f"{AUTH_HEADER} is missing")
    if ctx.tenants.cid_for(token) is None:
        raise UnauthorizedError(f"{AUTH_HEADER} is not a valid key")
    try:
        cid = int(cid_text)
    except ValueError:
        raise BadRequestError(f"cid must be a long, got {cid_text!r}") from None
    if not ctx.tenants.owns(cid, token):
        raise ForbiddenError(f"{AUTH_HEADER} is not the key of client {cid}")
    return cid


def router(ctx: GatewayContext, store: BlobStore | None = None) -> APIRouter:
    """The Oliver endpoints over ``ctx``; registers the result feed as a gateway service."""
    settings = ctx.settings
    codec = AvroCodec.default()
    feed = ResultFeed(
        settings.kafka_bootstrap,
        settings.group("oliver-feed"),
        [ctx.topics.speech, ctx.topics.alerts, ctx.topics.transitions],
        codec,
    )
    ctx.add_service(feed.running)
    directory = JobDirectory(
        settings.kafka_bootstrap,
        ctx.topics.transitions,
        codec,
        feed.jobs,
        timeout_s=settings.produce_timeout_s,
        max_age_ms=settings.oliver_job_max_age_s * 1000,
        clock_ms=ctx.clock_ms,
    )
    services = StreamServices(feed, directory, StreamSlots(settings.oliver_max_streams, settings.oliver_loaded_delay_s))
    blobs = store or LocalBlobStore(settings.blobs_path)
    api = APIRouter(route_class=OliverRoute)

    @api.post("/client/{cid}/process/audio")
    async def submit_audio(cid: str, request: Request) -> JSONResponse:
        """A batch job from the multipart part ``file``; answered once its JobTransition is in Kafka."""
        tenant = authenticate(ctx, cid, request.headers, request.query_params)
        params = ProcessParams.from_query(request.query_params.multi_items())
        pid = ctx.ids.next_id()
        async with blobs.upload(tenant) as upload:
            filename = await receive_file(request, upload, settings.max_upload_bytes)
            info = await asyncio.to_thread(probe, upload.path)
            if info.channels != params.channels:
                raise BadRequestError(f"the file has {info.channels} channel(s) but channels={params.channels}")
            uri = await upload.commit(pid, info.extension(filename))
            at = ctx.clock_ms()
            audio = {**info.metadata(), "uri": uri, **({"filename": filename} if filename else {})}
            transition = translate.queued_transition(pid, tenant, at, translate.batch_metadata(params, audio))
            await ctx.sink.send(ctx.topics.transitions, str(pid), JOB_TRANSITION, transition)
        record = translate.process_record(pid, tenant, at, params, Mode.BATCH, duration_s=info.duration_s, uri=uri)
        return JSONResponse(record)

    @api.post("/client/{cid}/process/stream")
    async def create_stream(cid: str, request: Request) -> JSONResponse:
        """A streaming job; the answer says where to stream (``stream_url``) and the setup ``delay`` (s)."""
        tenant = authenticate(ctx, cid, request.headers, request.query_params)
        params = StreamParams.from_query(request.query_params.multi_items())
        pid, at = ctx.ids.next_id(), ctx.clock_ms()
        transition = translate.queued_transition(pid, tenant, at, translate.stream_metadata(params))
        await ctx.sink.send(ctx.topics.transitions, str(pid), JOB_TRANSITION, transition)
        record = translate.process_record(pid, tenant, at, params, Mode.STREAM, duration_s=0.0, uri="")
        scheme = "wss" if request.url.scheme == "https" else "ws"
        host = request.headers.get("host") or request.url.netloc
        record.update(stream_url=f"{scheme}://{host}/stream/{tenant}", delay=services.slots.delay_s())
        return JSONResponse(record)

    @api.websocket("/stream/{cid}")
    async def stream(websocket: WebSocket, cid: str) -> None:
        """The live audio socket; an unauthenticated handshake is refused with Oliver's error body."""
        try:
            tenant = authenticate(ctx, cid, websocket.headers, websocket.query_params)
        except OliverError as exc:
            await websocket.send_denial_response(error_response(exc))
            return
        await websocket.accept()
        await StreamSession(websocket, ctx, tenant, services).run()

    return api
