"""The read API: FastAPI app factory. GET only (plus the admin's read-only SQL POST); every data route is
tenant-scoped through the dependencies of api/deps.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import alerts, calls, oliver, sql
from api.errors import VendorError, error
from infra.settings import Settings
from infra.store import Store, StoreError


class ProjectorStats(Protocol):
    """What /metrics reports of a projector running in the same process."""

    rows_written: int
    dead_lettered: int

    def lag(self) -> Mapping[tuple[str, int], int]: ...


def create_app(
    settings: Settings, store: Store, *, projector: ProjectorStats | None = None, bootstrap: str | None = None
) -> FastAPI:
    """The API over an already-opened, migrated store.

    ``projector``: the in-process projector whose lag /metrics exposes (embedded mode). ``bootstrap``:
    the Kafka cluster of the live alert stream (default: ``settings.kafka_bootstrap``).
    """
    app = FastAPI(title="Switchboard read API", version="0.2.0")
    if bootstrap and bootstrap != settings.kafka_bootstrap:
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    app.state.settings = settings
    app.state.store = store

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(400, f"Invalid {where}: {first.get('msg', 'bad request')}")

    @app.exception_handler(VendorError)
    async def vendor_error(_: Request, exc: VendorError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return error(503, f"The store could not answer: {exc}")

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "clickhouse": getattr(store, "backend", "unknown")}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text: the in-process projector's lag per partition and its counters."""
        return PlainTextResponse(exposition(projector), media_type="text/plain; version=0.0.4")

    for module in (oliver, calls, alerts, sql):
        app.include_router(module.router)
    return app


def exposition(projector: ProjectorStats | None) -> str:
    """Prometheus text exposition (format 0.0.4) of the projector's numbers; empty without a projector."""
    if projector is None:
        return ""
    lines = [
        "# HELP switchboard_projector_lag Records behind the partition's last stable offset (not yet committed).",
        "# TYPE switchboard_projector_lag gauge",
    ]
    for (topic, partition), lag in sorted(projector.lag().items()):
        lines.append(f'switchboard_projector_lag{{topic="{topic}",partition="{partition}"}} {lag}')
    lines += [
        "# HELP switchboard_projector_rows_written_total Rows written to ClickHouse.",
        "# TYPE switchboard_projector_rows_written_total counter",
        f"switchboard_projector_rows_written_total {projector.rows_written}",
        "# HELP switchboard_projector_dead_lettered_total Records sent to the dead-letter topic.",
        "# TYPE switchboard_projector_dead_lettered_total counter",
        f"switchboard_projector_dead_lettered_total {projector.dead_lettered}",
    ]
    return "\n".join(lines) + "\n"
