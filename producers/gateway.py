"""The ingestion gateway app: shared error handling and health; vendor routers plug in here.

Kafka failures are mapped to the vendor 503 body in exactly one handler.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from producers.sink import KafkaUnavailableError, RecordSink

SERVICE_UNAVAILABLE = {
    "code": 503,
    "message": "The service is not available at the moment. Please try again later.",
}


def create_gateway(sink: RecordSink) -> FastAPI:
    """The gateway over a started producer."""
    app = FastAPI(title="Switchboard ingestion gateway", version="0.1.0")
    app.state.sink = sink

    @app.exception_handler(KafkaUnavailableError)
    async def kafka_unavailable(_: Request, exc: KafkaUnavailableError) -> JSONResponse:
        return JSONResponse(SERVICE_UNAVAILABLE, status_code=503)

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    return app
