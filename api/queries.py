"""Every SQL query of the read API: parameterised, returning plain rows (no domain objects)."""

from __future__ import annotations

from typing import Any

from infra.store import Store

SEGMENT_KINDS = ("SPEECH", "LEVEL")


def call_session(store: Store, cid: int, call_id: str) -> dict[str, Any] | None:
    """Session view of one call, folded from its events; None when the call has no events."""
    rows = store.query(
        f"""
        SELECT
            call_id,
            cid,
            count() AS events,
            minIf(occurred_at, event_type = 'CallStarted') AS started_at,
            maxIf(occurred_at, event_type = 'CallEnded') AS ended_at,
            countIf(event_type = 'CallStarted') > 0 AS has_start,
            countIf(event_type = 'CallEnded') > 0 AS has_end,
            argMaxIf(event_type, (occurred_at, kafka_offset), event_type IN ('CallHeld', 'CallResumed'))
                AS last_hold_event,
            multiIf(has_end, 'ENDED', last_hold_event = 'CallHeld', 'ON_HOLD', has_start, 'ACTIVE', 'NEW')
                AS state,
            groupUniqArray(source) AS sources,
            max(received_at) AS last_received_at
        FROM {store.database}.call_events FINAL
        WHERE cid = {{cid:Int64}} AND call_id = {{call_id:String}}
        GROUP BY call_id, cid
        """,
        {"cid": cid, "call_id": call_id},
    )
    if not rows:
        return None
    row = rows[0]
    return {
        "call_id": row["call_id"],
        "cid": row["cid"],
        "state": row["state"],
        "events": row["events"],
        "started_at": row["started_at"] if row["has_start"] else None,
        "ended_at": row["ended_at"] if row["has_end"] else None,
        "sources": sorted(row["sources"]),
        "last_received_at": row["last_received_at"],
    }


def call_segments(
    store: Store, cid: int, call_id: str, kind: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Segments of one call in media order (then track), optionally of one kind; ``offset`` rows skipped."""
    return store.query(
        f"""
        SELECT segment_id, track, role, kind, start_sample, end_sample, sample_rate,
               round(start_sample * 1000 / sample_rate, 3) AS start_ms,
               round(end_sample * 1000 / sample_rate, 3) AS end_ms,
               rms_dbfs, peak_dbfs, speech_probability, detector
        FROM {store.database}.speech_segments FINAL
        WHERE cid = {{cid:Int64}} AND call_id = {{call_id:String}}
          AND ({{kind:String}} = '' OR kind = {{kind:String}})
        ORDER BY start_sample, track, segment_id
        LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}
        """,
        {"cid": cid, "call_id": call_id, "kind": kind or "", "limit": limit, "offset": offset},
    )


def job(store: Store, cid: int, job_id: int) -> dict[str, Any] | None:
    """The current row of one job (folded from its transitions); None when the tenant has no such job."""
    rows = store.query(
        f"""
        SELECT job_id, cid, status, statusmsg, created_at, updated_at, started_at, finished_at,
               metadata, results, transitions
        FROM {store.database}.jobs
        WHERE cid = {{cid:Int64}} AND job_id = {{job_id:Int64}}
        """,
        {"cid": cid, "job_id": job_id},
    )
    return rows[0] if rows else None


def alerts(
    store: Store,
    cid: int,
    *,
    call_id: str | None = None,
    rule_kind: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alert occurrences of a tenant (latest status of each), newest detection first."""
    return store.query(
        f"""
        SELECT alert_id, call_id, rule_id, rule_kind, severity, status, start_ms, end_ms, detected_at, details
        FROM {store.database}.alerts FINAL
        WHERE cid = {{cid:Int64}}
          AND ({{call_id:String}} = '' OR call_id = {{call_id:String}})
          AND ({{rule_kind:String}} = '' OR rule_kind = {{rule_kind:String}})
          AND ({{status:String}} = '' OR status = {{status:String}})
        ORDER BY detected_at DESC, alert_id
        LIMIT {{limit:UInt32}}
        """,
        {"cid": cid, "call_id": call_id or "", "rule_kind": rule_kind or "", "status": status or "", "limit": limit},
    )
