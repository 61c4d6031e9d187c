"""The Oliver process record and its error bodies, rebuilt from a ``jobs`` row (pure).

The gateway answers a create call with the process record (PROTOCOLS.md §1.2) and puts the
inputs on the queued JobTransition's metadata as strings; this module turns them back into the
same fields with the vendor's types, plus the job's current ``status`` / ``statusmsg``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

COMPLETED = 2
# Inputs echoed on the record, in the gateway's order, with their JSON type.
_ECHO: tuple[tuple[str, type[int] | type[str]], ...] = (
    ("channels", int),
    ("calldirection", int),
    ("agentId", str),
    ("agentTeam", str),
    ("customerId", str),
    ("customerInd", str),
    ("campaignId", str),
    ("name", str),
    ("ANI", str),
    ("calltype", str),
    ("calltime", str),
    ("timezone", int),
)


def iso_utc(at: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z`` (naive datetimes are UTC)."""
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def process_record(job: Mapping[str, Any]) -> dict[str, Any]:
    """The process record of a ``jobs`` row (job_id, cid, status, statusmsg, created_at, metadata, results).

    ``duration`` (s) is the stored audio's for a batch job; for a streaming job it is the call's
    ``basic.totalduration`` once results exist (0 before), as the vendor fills it on completion.
    """
    metadata: Mapping[str, str] = job["metadata"]
    pid = int(job["job_id"])
    record: dict[str, Any] = {
        "pid": pid,
        "id": pid,
        "cid": int(job["cid"]),
        "name": metadata.get("name", ""),
        "status": int(job["status"]),
        "statusmsg": job["statusmsg"],
        "duration": _duration(metadata, job.get("results")),
        "datetime": iso_utc(job["created_at"]),
        "uri": metadata.get("uri", ""),
    }
    for key, kind in _ECHO:
        if key in metadata:
            record[key] = _typed(metadata[key], kind)
    if "tasks" in metadata:
        record["tasks"] = json.loads(metadata["tasks"])
    if "mode" in metadata:
        record["mode"] = metadata["mode"]
    return record


def not_found(pid: int) -> dict[str, Any]:
    """The vendor's body for an unknown pid."""
    return {"code": 1, "type": "error", "message": f"Process with pid {pid} not found!"}


def not_ready(pid: int, reason: str) -> dict[str, Any]:
    """The vendor's body for results that cannot be sent (yet)."""
    message = f"Cannot send results for Process with pid {pid}. The reason is: {reason}"
    return {"code": 1, "type": "error", "message": message}


def _typed(value: str, kind: type[int] | type[str]) -> int | str:
    if kind is int:
        try:
            return int(value)
        except ValueError:
            return value
    return value


def _duration(metadata: Mapping[str, str], results: str | None) -> float:
    if "duration" in metadata:
        try:
            return float(metadata["duration"])
        except ValueError:
            return 0.0
    if results:
        basic = json.loads(results).get("basic") or {}
        total = basic.get("totalduration")
        if isinstance(total, int | float):
            return float(total)
    return 0.0
