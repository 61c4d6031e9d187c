"""Mapping of decoded records to table rows (pure). Column lists match projections/migrations/*.sql."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from schemas import ALERT, CALL_EVENT, CALL_METRICS, JOB_TRANSITION, PROSODY_INTERIM, SPEECH_SEGMENT, union_branch

CALL_EVENT_COLUMNS = (
    "cid",
    "call_id",
    "event_id",
    "event_type",
    "source",
    "occurred_at",
    "received_at",
    "details",
    "raw",
    "attributes",
    "kafka_partition",
    "kafka_offset",
)
SPEECH_SEGMENT_COLUMNS = (
    "cid",
    "call_id",
    "segment_id",
    "track",
    "role",
    "kind",
    "start_sample",
    "end_sample",
    "sample_rate",
    "rms_dbfs",
    "peak_dbfs",
    "speech_probability",
    "detector",
    "kafka_partition",
    "kafka_offset",
)

JOB_TRANSITION_COLUMNS = (
    "cid",
    "job_id",
    "from_status",
    "to_status",
    "at",
    "reason",
    "metadata",
    "results",
    "kafka_partition",
    "kafka_offset",
)
ALERT_COLUMNS = (
    "cid",
    "call_id",
    "alert_id",
    "rule_id",
    "rule_kind",
    "severity",
    "status",
    "start_ms",
    "end_ms",
    "detected_at",
    "details",
    "kafka_partition",
    "kafka_offset",
)

# call_metrics also has a MATERIALIZED ``version`` column computed by ClickHouse (not inserted).
CALL_METRICS_COLUMNS = (
    "cid",
    "call_id",
    "watermark_ms",
    "final",
    "talk_agent_ms",
    "talk_customer_ms",
    "silence_ms",
    "overtalk_ms",
    "hold_ms",
    "interruptions_agent",
    "interruptions_customer",
    "longest_monologue_agent_ms",
    "longest_monologue_customer_ms",
    "speaker_changes",
    "talk_ratio",
    "beeps",
    "rings",
    "dtmf",
    "alerts",
    "basic",
    "kafka_partition",
    "kafka_offset",
)
PROSODY_INTERIM_COLUMNS = (
    "cid",
    "call_id",
    "role",
    "start_ms",
    "end_ms",
    "intensity",
    "vocal_variety",
    "speaking_rate",
    "kafka_partition",
    "kafka_offset",
)

TABLES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    CALL_EVENT: ("call_events", CALL_EVENT_COLUMNS),
    SPEECH_SEGMENT: ("speech_segments", SPEECH_SEGMENT_COLUMNS),
    JOB_TRANSITION: ("job_transitions", JOB_TRANSITION_COLUMNS),
    ALERT: ("alerts", ALERT_COLUMNS),
    CALL_METRICS: ("call_metrics", CALL_METRICS_COLUMNS),
    PROSODY_INTERIM: ("prosody_interims", PROSODY_INTERIM_COLUMNS),
}


class RowError(Exception):
    """A record cannot be turned into a row of any table."""


def to_row(name: str, record: Mapping[str, Any], partition: int, offset: int) -> tuple[str, list[Any]]:
    """(table, row values in that table's column order) for one decoded record."""
    if name == CALL_EVENT:
        event_type, details = union_branch(record["payload"])
        return "call_events", [
            record["cid"],
            record["call_id"],
            record["event_id"],
            event_type,
            record["source"],
            record["occurred_at"],
            record["received_at"],
            orjson.dumps(details).decode(),
            record["raw"],
            dict(record["attributes"]),
            partition,
            offset,
        ]
    if name == SPEECH_SEGMENT:
        return "speech_segments", [
            record["cid"],
            record["call_id"],
            record["segment_id"],
            record["track"],
            record["role"],
            record["kind"],
            record["start_sample"],
            record["end_sample"],
            record["sample_rate"],
            record["rms_dbfs"],
            record["peak_dbfs"],
            record["speech_probability"],
            record["detector"],
            partition,
            offset,
        ]
    if name == JOB_TRANSITION:
        return "job_transitions", [
            record["cid"],
            record["job_id"],
            record["from_status"],
            record["to_status"],
            record["at"],
            record["reason"],
            dict(record["metadata"]),
            record["results"],
            partition,
            offset,
        ]
    if name == ALERT:
        return "alerts", [
            record["cid"],
            record["call_id"],
            record["alert_id"],
            record["rule_id"],
            record["rule_kind"],
            record["severity"],
            record["status"],
            record["start_ms"],
            record["end_ms"],
            record["detected_at"],
            dict(record["details"]),
            partition,
            offset,
        ]
    if name in (CALL_METRICS, PROSODY_INTERIM):
        table, columns = TABLES[name]
        return table, [*_fields(name, record, columns[:-2]), partition, offset]
    raise RowError(f"no projection for {name} records")


def _fields(name: str, record: Mapping[str, Any], fields: tuple[str, ...]) -> list[Any]:
    missing = [f for f in fields if f not in record]
    if missing:
        raise RowError(f"{name} record lacks {', '.join(missing)}")
    return [record[f] for f in fields]
