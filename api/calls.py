"""Call sessions, their speech/level segments and their conversation metrics."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api import cursor, queries
from api.deps import StoreDep, TenantId, TextPage, WindowDep
from api.errors import responses

router = APIRouter(prefix="/v1/clients/{cid}/calls", tags=["calls"])

_SESSION_EXAMPLE = {
    "call_id": "v3:T02l", "cid": 1, "state": "ENDED", "direction": "INBOUND", "from_number": "+13122010094",
    "to_number": "+13122123456", "participants": [{"role": "AGENT", "participant_id": "a-9"}], "agent_id": "a-9",
    "agent_team": "blue", "campaign_id": "spring", "sources": ["TELNYX"], "events": 7,
    "first_event_at": "2025-03-01T10:00:00Z", "started_at": "2025-03-01T10:00:00Z",
    "answered_at": "2025-03-01T10:00:03Z", "ended_at": "2025-03-01T10:01:00Z", "hold_count": 1,
    "hold_time_ms": 10000, "talk_agent_ms": 21000, "talk_customer_ms": 17000, "silence_ms": 9000,
    "overtalk_ms": 1200, "talk_ratio": 0.5526, "alert_count": 1, "open_alerts": 0,
}  # fmt: skip


@router.get(
    "/{call_id}",
    summary="One call session",
    responses={200: {"content": {"application/json": {"example": _SESSION_EXAMPLE}}}, **responses(401, 403, 404)},
)
def get_call(cid: TenantId, call_id: str, store: StoreDep) -> dict[str, Any]:
    """The session row of a call: state, parties, agent, timestamps, hold, talk metrics and alert counts."""
    session = queries.call_session(store, cid, call_id)
    if session is None:
        raise HTTPException(404, f"Call {call_id} not found")
    return session


@router.get("", summary="List call sessions", responses=responses(400, 401, 403))
def list_calls(
    cid: TenantId,
    store: StoreDep,
    window: WindowDep,
    page: TextPage,
    state: Annotated[str | None, Query(pattern="^(NEW|RINGING|ACTIVE|ON_HOLD|ENDED)$")] = None,
    agent: Annotated[str | None, Query(max_length=256, description="Agent id")] = None,
    has_alerts: Annotated[bool | None, Query(description="Only calls with (true) / without (false) alerts")] = None,
) -> dict[str, Any]:
    """Sessions whose first event is in [from, to), newest first; ``next_cursor`` fetches the next page."""
    rows = queries.sessions(store, cid, state=state, agent=agent, window=window, has_alerts=has_alerts, page=page)
    shown = rows[: page.limit]
    more = len(rows) > page.limit
    return {
        "calls": shown,
        "next_cursor": cursor.encode(shown[-1]["first_event_at"], shown[-1]["call_id"]) if more else None,
    }


@router.get("/{call_id}/segments", summary="Speech and level segments", responses=responses(400, 401, 403))
def get_segments(
    cid: TenantId,
    call_id: str,
    store: StoreDep,
    kind: Annotated[str | None, Query(pattern="^(SPEECH|LEVEL)$")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Segments in media order (sample offsets at ``sample_rate`` Hz, and ms)."""
    rows = queries.call_segments(store, cid, call_id, kind, limit, offset)
    next_offset = offset + len(rows) if len(rows) == limit else None
    return {"call_id": call_id, "segments": rows, "next_offset": next_offset}


@router.get("/{call_id}/metrics", summary="Conversation metrics and prosody", responses=responses(401, 403, 404))
def get_metrics(cid: TenantId, call_id: str, store: StoreDep) -> dict[str, Any]:
    """The call's current metrics (``final`` once its media ended; ``basic`` as an object) and prosody windows."""
    metrics = queries.call_metrics(store, cid, call_id)
    interims = queries.prosody_interims(store, cid, call_id)
    if metrics is None and not interims:
        raise HTTPException(404, f"No metrics for call {call_id}")
    if metrics is not None:
        metrics = {**metrics, "basic": json.loads(metrics["basic"] or "{}")}
    return {"call_id": call_id, "metrics": metrics, "interims": interims}
