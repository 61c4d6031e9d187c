"""Alerts: the filtered list (from the ``alerts`` table) and the live feed (from the alerts topic)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from api import cursor, queries
from api.alert_feed import AlertFilter, AlertStream, FeedError
from api.deps import SettingsDep, StoreDep, TenantId, TextPage, WindowDep
from api.errors import responses
from infra.topics import Topics

router = APIRouter(prefix="/v1/clients/{cid}/alerts", tags=["alerts"])

RuleKind = Annotated[str | None, Query(pattern="^[a-z0-9_]{1,64}$", description="dead_air, overtalk, ...")]
CallId = Annotated[str | None, Query(min_length=1, max_length=256)]
Agent = Annotated[str | None, Query(min_length=1, max_length=256, description="Agent id of the call's session")]

_ALERT_EXAMPLE = {
    "alert_id": "c-1:da:10000", "call_id": "c-1", "rule_id": "da", "rule_kind": "dead_air", "severity": "WARNING",
    "status": "CLEARED", "start_ms": 10000, "end_ms": 22000, "detected_at": "2025-03-01T10:00:22Z",
    "details": {"min_ms": "10000"},
}  # fmt: skip
_SSE_EXAMPLE = 'id: c-1:da:10000.RAISED\nevent: alert\ndata: {"alert_id":"c-1:da:10000","status":"RAISED",...}\n\n'
_UNAVAILABLE = {"code": 503, "message": "The alert stream is not available: ..."}


@router.get(
    "",
    summary="List alerts",
    responses={
        200: {"content": {"application/json": {"example": {"alerts": [_ALERT_EXAMPLE], "next_cursor": None}}}},
        **responses(400, 401, 403),
    },
)
def list_alerts(
    cid: TenantId,
    store: StoreDep,
    window: WindowDep,
    page: TextPage,
    call_id: CallId = None,
    rule_kind: RuleKind = None,
    status: Annotated[str | None, Query(pattern="^(RAISED|CLEARED)$")] = None,
    agent: Agent = None,
) -> dict[str, Any]:
    """Alert occurrences (latest status of each) detected in [from, to), newest first."""
    rows = queries.alerts(
        store, cid, call_id=call_id, rule_kind=rule_kind, status=status, agent=agent, window=window, page=page
    )
    shown = rows[: page.limit]
    more = len(rows) > page.limit
    return {
        "alerts": shown,
        "next_cursor": cursor.encode(shown[-1]["detected_at"], shown[-1]["alert_id"]) if more else None,
    }


@router.get(
    "/stream",
    summary="Live alerts (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}},
        **responses(400, 401, 403),
        503: {"description": "Kafka unreachable", "content": {"application/json": {"example": _UNAVAILABLE}}},
    },
)
async def stream_alerts(
    cid: TenantId,
    store: StoreDep,
    settings: SettingsDep,
    call_id: CallId = None,
    rule_kind: RuleKind = None,
    agent: Agent = None,
) -> StreamingResponse:
    """Alerts (RAISED and CLEARED) produced after the request, as ``event: alert`` messages with JSON data."""

    async def agent_of(call: str) -> str:
        return await asyncio.to_thread(queries.agent_of, store, cid, call)

    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise HTTPException(503, "The alert stream needs SWITCHBOARD_KAFKA_BOOTSTRAP")
    wanted = AlertFilter(cid, call_id or "", rule_kind or "", agent or "")
    topic = Topics.from_settings(settings).alerts
    feed = AlertStream(bootstrap, topic, wanted, agent_of, keepalive_s=settings.alert_stream_keepalive_s)
    try:
        await feed.open()
    except (KafkaError, FeedError) as exc:
        raise HTTPException(503, f"The alert stream is not available: {exc}") from exc
    return StreamingResponse(
        feed.events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
