"""Oliver-style process lookup: the process record, its call-level result and the list of a tenant's processes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import cursor, queries
from api.deps import IntPage, OliverTenant, StoreDep, WindowDep
from api.errors import VendorError, responses
from api.process import COMPLETED, not_found, not_ready, process_record

router = APIRouter(tags=["oliver"])

_RECORD_EXAMPLE = {
    "pid": 48213, "id": 48213, "cid": 1002, "name": "call-77", "status": 2, "statusmsg": "completed",
    "duration": 61.5, "datetime": "2025-03-01T10:00:00.000Z", "uri": "file:///blobs/1002/48213.wav", "channels": 2,
    "calldirection": 1, "agentId": "a-9", "campaignId": "spring", "mode": "batch",
}  # fmt: skip
_NOT_FOUND = {"code": 1, "type": "error", "message": "Process with pid 35235 not found!"}
_WAITING = {
    "code": 1,
    "type": "error",
    "message": "Cannot send results for Process with pid 11089. The reason is: Waiting for result",
}
# Statuses whose result may still come (pending, processing, failed: the vendor's tooling keeps polling).
_WAITING_STATUSES = (0, 1, -1)


def _vendor(status: int, description: str, example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": description, "content": {"application/json": {"example": example}}}}


@router.get(
    "/client/{cid}/process/{pid}",
    summary="Process record",
    responses={
        200: {"content": {"application/json": {"example": _RECORD_EXAMPLE}}},
        **_vendor(404, "Unknown pid (the vendor's body)", _NOT_FOUND),
        **responses(400, 401, 403),
    },
)
def get_process(cid: OliverTenant, pid: int, store: StoreDep) -> dict[str, Any]:
    """The process record as the create call returned it, with the current ``status`` and ``statusmsg``."""
    row = queries.job(store, cid, pid)
    if row is None:
        raise VendorError(404, not_found(pid))
    return process_record(row)


@router.get(
    "/client/{cid}/process/{pid}/result",
    summary="Call-level result",
    responses={
        200: {"content": {"application/json": {"example": {"basic": {"totalduration": 61.5, "speakerchanges": 12}}}}},
        **_vendor(404, "Unknown pid", _NOT_FOUND),
        **_vendor(503, "Not completed yet (status 0, 1 or -1): poll again", _WAITING),
        **_vendor(405, "Aborted (status -2): there will be no result", {**_WAITING, "message": "... aborted"}),
        **responses(400, 401, 403),
    },
)
def get_result(cid: OliverTenant, pid: int, store: StoreDep) -> Any:
    """The call-level result document (``basic`` block, metrics, alerts) of a completed process."""
    row = queries.job(store, cid, pid)
    if row is None:
        raise VendorError(404, not_found(pid))
    if row["status"] != COMPLETED or row["results"] is None:
        waiting = row["status"] in _WAITING_STATUSES or row["status"] == COMPLETED
        reason = "Waiting for result" if waiting else f"Process {row['statusmsg']}"
        raise VendorError(503 if waiting else 405, not_ready(pid, reason))
    return json.loads(row["results"])


@router.get("/client/{cid}/processes", summary="List processes", responses=responses(400, 401, 403))
def list_processes(
    cid: OliverTenant,
    store: StoreDep,
    window: WindowDep,
    page: IntPage,
    status: Annotated[int | None, Query(ge=-2, le=2, description="Oliver status: 0, 1, 2, -1, -2")] = None,
    agent_id: Annotated[str | None, Query(alias="agentId", max_length=256)] = None,
    campaign_id: Annotated[str | None, Query(alias="campaignId", max_length=256)] = None,
) -> dict[str, Any]:
    """Process records of the tenant created in [from, to), newest first; ``next_cursor`` fetches the next page."""
    rows = queries.jobs(store, cid, status=status, agent_id=agent_id, campaign_id=campaign_id, window=window, page=page)
    shown = rows[: page.limit]
    more = len(rows) > page.limit
    return {
        "processes": [process_record(r) for r in shown],
        "next_cursor": cursor.encode(shown[-1]["created_at"], int(shown[-1]["job_id"])) if more else None,
    }
