"""The ingestion gateway app: shared error handling, health and life cycle; vendor routers plug in here.

Kafka failures are mapped to the vendor 503 body in exactly one handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from producers.context import GatewayContext
from producers.cresta import routes as cresta_routes
from producers.mediaservice import commands_routes
from producers.mediaservice import routes as mediaservice_routes
from producers.oliver import routes as oliver_routes
from producers.sink import KafkaUnavailableError
from producers.telnyx import routes as telnyx_routes

SERVICE_UNAVAILABLE = {
    "code": 503,
    "message": "The service is not available at the moment. Please try again later.",
}


def create_gateway(ctx: GatewayContext) -> FastAPI:
    """The gateway over a started producer, with every vendor API mounted."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for factory in ctx.services:
                await stack.enter_async_context(factory())
            yield

    app = FastAPI(title="Switchboard ingestion gateway", version="0.1.0", lifespan=lifespan)
    app.state.ctx = ctx

    @app.exception_handler(KafkaUnavailableError)
    async def kafka_unavailable(request: Request, exc: KafkaUnavailableError) -> Response:
        vendor = ctx.unavailable_response(request.url.path)
        return vendor if vendor is not None else JSONResponse(SERVICE_UNAVAILABLE, status_code=503)

    app.include_router(commands_routes.router(ctx))
    app.include_router(telnyx_routes.router(ctx))
    app.include_router(cresta_routes.router(ctx))
    app.include_router(oliver_routes.router(ctx))
    app.include_router(mediaservice_routes.router(ctx))

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    return app
