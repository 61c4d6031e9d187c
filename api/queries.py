"""Every SQL query of the read API: parameterised, returning plain rows (no domain objects).

Lists are newest first and paginated by keyset: ``after`` is the (epoch ms, id) of the last row of
the previous page (see api/cursor.py); each list returns up to ``limit + 1`` rows so the caller can
tell whether another page exists. Naive datetimes from ClickHouse are returned as UTC-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.store import Store

SEGMENT_KINDS = ("SPEECH", "LEVEL")
SESSION_STATES = ("NEW", "RINGING", "ACTIVE", "ON_HOLD", "ENDED")
ALERT_STATUSES = ("RAISED", "CLEARED")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR = datetime(2262, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    """Keyset page: at most ``limit`` rows after the row (``after_ms``, ``after_id``), or from the start."""

    limit: int = 100
    after_ms: int | None = None
    after_id: str | int | None = None

    def parameters(self, id_default: str | int) -> dict[str, Any]:
        return {
            "limit": self.limit + 1,
            "paged": int(self.after_ms is not None),
            "after_ms": self.after_ms or 0,
            "after_id": self.after_id if self.after_id is not None else id_default,
        }


@dataclass(frozen=True)
class Window:
    """Half-open time range [since, until); None = unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def parameters(self) -> dict[str, Any]:
        return {"since": _naive(self.since or _EPOCH), "until": _naive(self.until or _FAR)}


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for k, v in row.items()}


# ------------------------------------------------------------------------------------------- sessions

_SESSION_COLUMNS = """
    call_id, cid, state, direction, from_number, to_number, participants, agent_id, agent_team, campaign_id,
    sources, events, first_event_at, started_at, answered_at, ended_at, last_received_at,
    hold_count, hold_time_ms, on_hold_since, metrics_final, metrics_watermark_ms, talk_agent_ms, talk_customer_ms,
    silence_ms, overtalk_ms, media_hold_ms, talk_ratio, interruptions_agent, interruptions_customer, speaker_changes,
    alert_count, open_alerts
"""


def call_session(store: Store, cid: int, call_id: str) -> dict[str, Any] | None:
    """The ``sessions`` row of one call; None when the call has no events."""
    rows = store.query(
        f"""
        SELECT {_SESSION_COLUMNS}
        FROM {store.database}.sessions
        WHERE cid = {{cid:Int64}} AND call_id = {{call_id:String}}
        """,
        {"cid": cid, "call_id": call_id},
    )
    return _session(rows[0]) if rows else None


def sessions(
    store: Store,
    cid: int,
    *,
    state: str | None = None,
    agent: str | None = None,
    window: Window = Window(),
    has_alerts: bool | None = None,
    page: Page = Page(),
) -> list[dict[str, Any]]:
    """Sessions of a tenant whose first event is in ``window``, newest first (then call id descending)."""
    rows = store.query(
        f"""
        SELECT {_SESSION_COLUMNS}
        FROM {store.database}.sessions
        WHERE cid = {{cid:Int64}}
          AND ({{state:String}} = '' OR state = {{state:String}})
          AND ({{agent:String}} = '' OR agent_id = {{agent:String}})
          AND first_event_at >= {{since:DateTime64(3)}} AND first_event_at < {{until:DateTime64(3)}}
          AND ({{has_alerts:Int8}} < 0 OR (alert_count > 0) = {{has_alerts:Int8}})
          AND (NOT {{paged:UInt8}}
               OR (first_event_at, call_id) < (fromUnixTimestamp64Milli({{after_ms:Int64}}), {{after_id:String}}))
        ORDER BY first_event_at DESC, call_id DESC
        LIMIT {{limit:UInt32}}
        """,
        {
            "cid": cid,
            "state": state or "",
            "agent": agent or "",
            "has_alerts": -1 if has_alerts is None else int(has_alerts),
            **window.parameters(),
            **page.parameters(""),
        },
    )
    return [_session(r) for r in rows]


def _session(row: dict[str, Any]) -> dict[str, Any]:
    out = _utc(row)
    out["participants"] = [_party(p) for p in row["participants"]]
    return out


def _party(party: Any) -> dict[str, Any]:
    role, participant_id = (party["role"], party["participant_id"]) if isinstance(party, dict) else party
    return {"role": role, "participant_id": participant_id or None}


# ------------------------------------------------------------------------------------------- media analysis


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


def call_metrics(store: Store, cid: int, call_id: str) -> dict[str, Any] | None:
    """The current ``call_metrics`` row of one call (the latest watermark; the final one once the call ended)."""
    rows = store.query(
        f"""
        SELECT watermark_ms, final, talk_agent_ms, talk_customer_ms, silence_ms, overtalk_ms, hold_ms,
               interruptions_agent, interruptions_customer, longest_monologue_agent_ms,
               longest_monologue_customer_ms, speaker_changes, talk_ratio, beeps, rings, dtmf, alerts, basic
        FROM {store.database}.call_metrics FINAL
        WHERE cid = {{cid:Int64}} AND call_id = {{call_id:String}}
        """,
        {"cid": cid, "call_id": call_id},
    )
    return rows[0] if rows else None


def prosody_interims(store: Store, cid: int, call_id: str) -> list[dict[str, Any]]:
    """Prosody windows of one call in media order (then role)."""
    return store.query(
        f"""
        SELECT role, start_ms, end_ms, intensity, vocal_variety, speaking_rate
        FROM {store.database}.prosody_interims FINAL
        WHERE cid = {{cid:Int64}} AND call_id = {{call_id:String}}
        ORDER BY start_ms, role
        """,
        {"cid": cid, "call_id": call_id},
    )


# ------------------------------------------------------------------------------------------- jobs

_JOB_COLUMNS = (
    "job_id, cid, status, statusmsg, created_at, updated_at, started_at, finished_at, metadata, results, transitions"
)


def job(store: Store, cid: int, job_id: int) -> dict[str, Any] | None:
    """The current row of one job (folded from its transitions); None when the tenant has no such job."""
    rows = store.query(
        f"""
        SELECT {_JOB_COLUMNS}
        FROM {store.database}.jobs
        WHERE cid = {{cid:Int64}} AND job_id = {{job_id:Int64}}
        """,
        {"cid": cid, "job_id": job_id},
    )
    return _utc(rows[0]) if rows else None


def jobs(
    store: Store,
    cid: int,
    *,
    status: int | None = None,
    agent_id: str | None = None,
    campaign_id: str | None = None,
    window: Window = Window(),
    page: Page = Page(),
) -> list[dict[str, Any]]:
    """Jobs of a tenant created in ``window``, newest first (then pid descending)."""
    rows = store.query(
        f"""
        SELECT {_JOB_COLUMNS}
        FROM {store.database}.jobs
        WHERE cid = {{cid:Int64}}
          AND ({{any_status:UInt8}} OR status = {{status:Int8}})
          AND ({{agent:String}} = '' OR metadata['agentId'] = {{agent:String}})
          AND ({{campaign:String}} = '' OR metadata['campaignId'] = {{campaign:String}})
          AND created_at >= {{since:DateTime64(3)}} AND created_at < {{until:DateTime64(3)}}
          AND (NOT {{paged:UInt8}}
               OR (created_at, job_id) < (fromUnixTimestamp64Milli({{after_ms:Int64}}), {{after_id:Int64}}))
        ORDER BY created_at DESC, job_id DESC
        LIMIT {{limit:UInt32}}
        """,
        {
            "cid": cid,
            "any_status": int(status is None),
            "status": status or 0,
            "agent": agent_id or "",
            "campaign": campaign_id or "",
            **window.parameters(),
            **page.parameters(0),
        },
    )
    return [_utc(r) for r in rows]


# ------------------------------------------------------------------------------------------- alerts


def alerts(
    store: Store,
    cid: int,
    *,
    call_id: str | None = None,
    rule_kind: str | None = None,
    status: str | None = None,
    agent: str | None = None,
    window: Window = Window(),
    page: Page | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alert occurrences of a tenant (latest status of each) detected in ``window``, newest first.

    Without ``page`` at most ``limit`` rows; with it, the keyset page (``limit + 1`` rows).
    """
    page = page or Page(limit=limit - 1)
    rows = store.query(
        f"""
        SELECT alert_id, call_id, rule_id, rule_kind, severity, status, start_ms, end_ms, detected_at, details
        FROM {store.database}.alerts FINAL
        WHERE cid = {{cid:Int64}}
          AND ({{call_id:String}} = '' OR call_id = {{call_id:String}})
          AND ({{rule_kind:String}} = '' OR rule_kind = {{rule_kind:String}})
          AND ({{status:String}} = '' OR status = {{status:String}})
          AND ({{agent:String}} = '' OR call_id IN (
                SELECT call_id FROM {store.database}.sessions
                WHERE cid = {{cid:Int64}} AND agent_id = {{agent:String}}))
          AND detected_at >= {{since:DateTime64(3)}} AND detected_at < {{until:DateTime64(3)}}
          AND (NOT {{paged:UInt8}}
               OR (detected_at, alert_id) < (fromUnixTimestamp64Milli({{after_ms:Int64}}), {{after_id:String}}))
        ORDER BY detected_at DESC, alert_id DESC
        LIMIT {{limit:UInt32}}
        """,
        {
            "cid": cid,
            "call_id": call_id or "",
            "rule_kind": rule_kind or "",
            "status": status or "",
            "agent": agent or "",
            **window.parameters(),
            **page.parameters(""),
        },
    )
    return [_utc(r) for r in rows]


def agent_of(store: Store, cid: int, call_id: str) -> str:
    """The agent id of a call's session ('' when unknown)."""
    rows = store.query(
        f"SELECT agent_id FROM {store.database}.sessions WHERE cid = {{cid:Int64}} AND call_id = {{call_id:String}}",
        {"cid": cid, "call_id": call_id},
    )
    return str(rows[0]["agent_id"]) if rows else ""


# ------------------------------------------------------------------------------------------- admin SQL


def read_only(store: Store, select: str, *, max_execution_s: int, max_rows: int) -> list[dict[str, Any]]:
    """Run one SELECT (already checked by api/sql.py) as a subquery under read-only limits.

    The statement runs with ClickHouse ``readonly=1``, a time limit and a result-row limit that
    throws (never a silently truncated answer).
    """
    return store.query(
        f"SELECT * FROM ({select}) SETTINGS readonly = 1, max_execution_time = {int(max_execution_s)}, "
        f"max_result_rows = {int(max_rows)}, result_overflow_mode = 'throw'"
    )
