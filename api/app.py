"""The read API: FastAPI app factory. GET only; every data route is tenant-scoped through ``TenantId``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import queries
from api.deps import StoreDep, TenantId
from infra.settings import Settings
from infra.store import Store


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def create_app(settings: Settings, store: Store) -> FastAPI:
    """The API over an already-opened, migrated store."""
    app = FastAPI(title="Switchboard read API", version="0.1.0")
    app.state.settings = settings
    app.state.store = store

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"Invalid {where}: {first.get('msg', 'bad request')}")

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "clickhouse": getattr(store, "backend", "unknown")}

    @app.get("/v1/clients/{cid}/calls/{call_id}")
    def get_call(cid: TenantId, call_id: str, store: StoreDep) -> dict[str, Any]:
        session = queries.call_session(store, cid, call_id)
        if session is None:
            raise HTTPException(404, f"Call {call_id} not found")
        return session

    @app.get("/v1/clients/{cid}/calls/{call_id}/segments")
    def get_segments(
        cid: TenantId,
        call_id: str,
        store: StoreDep,
        kind: Annotated[str | None, Query(pattern="^(SPEECH|LEVEL)$")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        rows = queries.call_segments(store, cid, call_id, kind, limit, offset)
        next_offset = offset + len(rows) if len(rows) == limit else None
        return {"call_id": call_id, "segments": rows, "next_offset": next_offset}

    return app
