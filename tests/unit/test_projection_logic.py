"""Projector logic without ClickHouse: per-partition batching and record-to-row mapping."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from projections.batch import Batcher, PendingBatch
from projections.rows import CALL_EVENT_COLUMNS, CALL_METRICS_COLUMNS, SPEECH_SEGMENT_COLUMNS, TABLES, RowError, to_row
from schemas import (
    ALERT,
    AUDIO_CHUNK,
    CALL_EVENT,
    CALL_METRICS,
    COMMAND,
    JOB_TRANSITION,
    PROSODY_INTERIM,
    SPEECH_SEGMENT,
    AvroCodec,
)

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 10, 0, 2, tzinfo=UTC)
EVENTS = "calls.events"
SPEECH = "calls.speech"


def summary(batches: list[PendingBatch]) -> list[tuple[str, int, int, int, int, list[Any]]]:
    return [(b.topic, b.partition, b.first_offset, b.last_offset, b.commit_offset, b.rows) for b in batches]


# ---------------------------------------------------------------- Batcher


def test_rows_are_grouped_per_topic_and_partition() -> None:
    batcher = Batcher(max_rows=100, max_age_ms=1_000)
    batcher.add(EVENTS, 0, 10, "a", now_ms=0)
    batcher.add(EVENTS, 1, 50, "b", now_ms=0)
    batcher.add(EVENTS, 0, 11, "c", now_ms=1)
    batcher.add(SPEECH, 0, 7, "d", now_ms=2)
    assert len(batcher) == 4
    assert sorted(summary(batcher.drain())) == [
        (EVENTS, 0, 10, 11, 12, ["a", "c"]),
        (EVENTS, 1, 50, 50, 51, ["b"]),
        (SPEECH, 0, 7, 7, 8, ["d"]),
    ]
    assert len(batcher) == 0


def test_batch_is_due_by_size() -> None:
    batcher = Batcher(max_rows=3, max_age_ms=60_000)
    for offset in range(3):
        batcher.add(EVENTS, 0, offset, f"r{offset}", now_ms=0)
    batcher.add(EVENTS, 1, 0, "other", now_ms=0)
    batcher.add(EVENTS, 1, 1, "other2", now_ms=0)
    due = batcher.due(now_ms=0)
    assert summary(due) == [(EVENTS, 0, 0, 2, 3, ["r0", "r1", "r2"])]
    assert len(batcher) == 2
    assert batcher.due(now_ms=0) == []


def test_batch_is_due_by_age_of_its_oldest_row() -> None:
    batcher = Batcher(max_rows=100, max_age_ms=1_000)
    batcher.add(EVENTS, 0, 5, "old", now_ms=10_000)
    batcher.add(EVENTS, 0, 6, "new", now_ms=10_900)
    batcher.add(EVENTS, 1, 0, "later", now_ms=10_500)
    assert batcher.due(now_ms=10_999) == []
    due = batcher.due(now_ms=11_000)
    assert summary(due) == [(EVENTS, 0, 5, 6, 7, ["old", "new"])]
    assert summary(batcher.due(now_ms=11_500)) == [(EVENTS, 1, 0, 0, 1, ["later"])]
    assert len(batcher) == 0


def test_new_batch_after_flush_restarts_its_clock() -> None:
    batcher = Batcher(max_rows=100, max_age_ms=1_000)
    batcher.add(EVENTS, 0, 1, "a", now_ms=0)
    assert len(batcher.due(now_ms=1_000)) == 1
    batcher.add(EVENTS, 0, 2, "b", now_ms=1_500)
    assert batcher.due(now_ms=2_000) == []
    assert summary(batcher.due(now_ms=2_500)) == [(EVENTS, 0, 2, 2, 3, ["b"])]


def test_skip_marker_advances_the_offset_without_a_row() -> None:
    batcher = Batcher(max_rows=2, max_age_ms=1_000)
    batcher.add(EVENTS, 0, 10, "a", now_ms=0)
    batcher.add(EVENTS, 0, 11, None, now_ms=0)
    batcher.add(EVENTS, 0, 12, None, now_ms=0)
    assert len(batcher) == 1
    assert batcher.due(now_ms=0) == []  # markers do not count toward max_rows
    [batch] = batcher.drain()
    assert batch.rows == ["a"]
    assert (batch.first_offset, batch.last_offset, batch.commit_offset) == (10, 12, 13)


def test_partition_with_only_skip_markers_still_flushes_its_offset() -> None:
    batcher = Batcher(max_rows=10, max_age_ms=500)
    batcher.add(EVENTS, 3, 40, None, now_ms=0)
    batcher.add(EVENTS, 3, 41, None, now_ms=100)
    assert len(batcher) == 0
    assert summary(batcher.due(now_ms=500)) == [(EVENTS, 3, 40, 41, 42, [])]


def test_out_of_order_offset_does_not_move_commit_backwards() -> None:
    batcher = Batcher(max_rows=10, max_age_ms=500)
    batcher.add(EVENTS, 0, 9, "late", now_ms=0)
    batcher.add(EVENTS, 0, 8, "early", now_ms=0)
    [batch] = batcher.drain()
    assert batch.commit_offset == 10
    assert batch.rows == ["late", "early"]


def test_drain_selected_partitions() -> None:
    batcher = Batcher(max_rows=10, max_age_ms=500)
    batcher.add(EVENTS, 0, 1, "a", now_ms=0)
    batcher.add(EVENTS, 1, 2, "b", now_ms=0)
    batcher.add(EVENTS, 2, 3, "c", now_ms=0)
    drained = batcher.drain([(EVENTS, 2), (EVENTS, 0), (EVENTS, 9), (SPEECH, 1)])
    assert summary(drained) == [(EVENTS, 2, 3, 3, 4, ["c"]), (EVENTS, 0, 1, 1, 2, ["a"])]
    assert len(batcher) == 1
    assert summary(batcher.drain()) == [(EVENTS, 1, 2, 2, 3, ["b"])]
    assert batcher.drain() == []


def test_discard_forgets_lost_partitions() -> None:
    batcher = Batcher(max_rows=10, max_age_ms=500)
    batcher.add(EVENTS, 0, 1, "a", now_ms=0)
    batcher.add(EVENTS, 1, 2, "b", now_ms=0)
    batcher.add(EVENTS, 1, 3, "c", now_ms=0)
    batcher.discard([(EVENTS, 1), (EVENTS, 7)])
    assert len(batcher) == 1
    assert summary(batcher.drain()) == [(EVENTS, 0, 1, 1, 2, ["a"])]
    # a partition re-assigned later starts a fresh batch at the re-read offset
    batcher.add(EVENTS, 1, 2, "b", now_ms=10)
    assert summary(batcher.drain()) == [(EVENTS, 1, 2, 2, 3, ["b"])]


def test_len_counts_rows_across_partitions() -> None:
    batcher = Batcher(max_rows=10, max_age_ms=500)
    assert len(batcher) == 0
    for partition in range(3):
        for offset in range(partition + 1):
            batcher.add(EVENTS, partition, offset, (partition, offset), now_ms=0)
    assert len(batcher) == 6


@pytest.mark.parametrize(("max_rows", "max_age_ms"), [(0, 100), (-1, 100), (10, 0), (10, -5)])
def test_invalid_limits_are_rejected(max_rows: int, max_age_ms: float) -> None:
    with pytest.raises(ValueError, match="max_rows must be >= 1 and max_age_ms > 0"):
        Batcher(max_rows=max_rows, max_age_ms=max_age_ms)


def test_smallest_valid_limits() -> None:
    batcher = Batcher(max_rows=1, max_age_ms=0.5)
    batcher.add(EVENTS, 0, 0, "a", now_ms=0)
    assert summary(batcher.due(now_ms=0)) == [(EVENTS, 0, 0, 0, 1, ["a"])]


# ---------------------------------------------------------------- to_row


def decoded_call_event(payload: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    codec = AvroCodec.default()
    record = {
        "event_id": "ev-1",
        "call_id": "call-42",
        "cid": 7,
        "source": "TWILIO",
        "occurred_at": T0,
        "received_at": T1,
        "payload": payload,
        "raw": '{"Event": "hangup"}',
        "attributes": {"traceId": "t-1"},
    }
    return codec.decode_as(CALL_EVENT, codec.encode(CALL_EVENT, record))


def test_call_event_row() -> None:
    record = decoded_call_event(("io.switchboard.calls.CallEnded", {"reason": "hangup", "duration_ms": 5000}))
    table, row = to_row(CALL_EVENT, record, partition=3, offset=1234)
    assert table == "call_events"
    assert len(row) == len(CALL_EVENT_COLUMNS) == 12
    values = dict(zip(CALL_EVENT_COLUMNS, row, strict=True))
    details = values.pop("details")
    assert json.loads(details) == {"reason": "hangup", "duration_ms": 5000}
    assert values == {
        "cid": 7,
        "call_id": "call-42",
        "event_id": "ev-1",
        "event_type": "CallEnded",
        "source": "TWILIO",
        "occurred_at": T0,
        "received_at": T1,
        "raw": '{"Event": "hangup"}',
        "attributes": {"traceId": "t-1"},
        "kafka_partition": 3,
        "kafka_offset": 1234,
    }


def test_call_event_row_with_nested_payload() -> None:
    payload = {"direction": "OUTBOUND", "participants": [{"role": "AGENT", "participant_id": "a1"}]}
    record = decoded_call_event(("io.switchboard.calls.CallStarted", payload))
    _, row = to_row(CALL_EVENT, record, partition=0, offset=0)
    values = dict(zip(CALL_EVENT_COLUMNS, row, strict=True))
    assert values["event_type"] == "CallStarted"
    assert json.loads(values["details"]) == {
        "from_number": None,
        "to_number": None,
        "direction": "OUTBOUND",
        "participants": [{"role": "AGENT", "participant_id": "a1"}],
        "answered": True,
    }


def test_call_event_row_with_empty_payload() -> None:
    _, row = to_row(CALL_EVENT, decoded_call_event(("io.switchboard.calls.CallHeld", {})), 1, 2)
    values = dict(zip(CALL_EVENT_COLUMNS, row, strict=True))
    assert (values["event_type"], values["details"]) == ("CallHeld", "{}")


def test_attributes_are_copied_not_shared() -> None:
    record = decoded_call_event(("io.switchboard.calls.CallHeld", {}))
    _, row = to_row(CALL_EVENT, record, 0, 0)
    attributes = row[CALL_EVENT_COLUMNS.index("attributes")]
    attributes["x"] = "y"
    assert record["attributes"] == {"traceId": "t-1"}


def test_speech_segment_row() -> None:
    record = {
        "segment_id": "seg-1",
        "call_id": "call-42",
        "cid": 7,
        "track": "inbound",
        "role": "CUSTOMER",
        "kind": "LEVEL",
        "start_sample": 800,
        "end_sample": 960,
        "sample_rate": 8000,
        "rms_dbfs": -15.0,
        "peak_dbfs": -12.0,
        "speech_probability": None,
        "detector": "level-meter:1",
    }
    table, row = to_row(SPEECH_SEGMENT, record, partition=1, offset=99)
    assert table == "speech_segments"
    assert len(row) == len(SPEECH_SEGMENT_COLUMNS) == 15
    assert dict(zip(SPEECH_SEGMENT_COLUMNS, row, strict=True)) == {
        **record,
        "kafka_partition": 1,
        "kafka_offset": 99,
    }
    assert row[:3] == [7, "call-42", "seg-1"]


@pytest.mark.parametrize("name", [AUDIO_CHUNK, COMMAND, "CallEvent", ""])
def test_unknown_record_has_no_row(name: str) -> None:
    with pytest.raises(RowError, match=re.escape(f"no projection for {name} records")):
        to_row(name, {"cid": 1}, 0, 0)


def _sql_columns(table: str) -> list[str]:
    migrations = resources.files("projections") / "migrations"
    sql = "\n".join(m.read_text(encoding="utf-8") for m in migrations.iterdir() if m.name.endswith(".sql"))
    body = re.search(r"CREATE TABLE IF NOT EXISTS \{db\}\." + table + r"\s*\((.*?)\n\)", sql, re.S)
    assert body is not None, f"no CREATE TABLE for {table}"
    return [line.split()[0] for line in body.group(1).strip().splitlines()]


@pytest.mark.parametrize("name", [CALL_EVENT, SPEECH_SEGMENT, JOB_TRANSITION, ALERT, PROSODY_INTERIM])
def test_columns_match_the_migration(name: str) -> None:
    table, columns = TABLES[name]
    assert _sql_columns(table) == list(columns)


def test_call_metrics_columns_match_the_migration_plus_its_computed_version() -> None:
    assert _sql_columns("call_metrics") == [*CALL_METRICS_COLUMNS, "version"]


def test_job_transition_and_alert_rows() -> None:
    transition = {
        "job_id": 9,
        "cid": 1,
        "from_status": None,
        "to_status": 0,
        "at": 5,
        "reason": "pending",
        "metadata": {"channels": "1"},
        "results": None,
    }
    assert to_row(JOB_TRANSITION, transition, 2, 40) == (
        "job_transitions",
        [1, 9, None, 0, 5, "pending", {"channels": "1"}, None, 2, 40],
    )
    alert = {
        "alert_id": "a",
        "rule_id": "r",
        "call_id": "c",
        "cid": 1,
        "severity": "INFO",
        "start_ms": 1,
        "end_ms": 2,
        "detected_at": 3,
        "details": {"k": "v"},
        "status": "CLEARED",
        "rule_kind": "dead_air",
    }
    assert to_row(ALERT, alert, 0, 7) == (
        "alerts",
        [1, "c", "a", "r", "dead_air", "INFO", "CLEARED", 1, 2, 3, {"k": "v"}, 0, 7],
    )


METRICS = {
    "call_id": "c", "cid": 3, "watermark_ms": 60_000, "final": True, "talk_agent_ms": 21_000,
    "talk_customer_ms": 17_000, "silence_ms": 9000, "overtalk_ms": 1200, "hold_ms": 15_000,
    "interruptions_agent": 2, "interruptions_customer": 1, "longest_monologue_agent_ms": 7000,
    "longest_monologue_customer_ms": 5000, "speaker_changes": 12, "talk_ratio": 0.5526, "beeps": 0, "rings": 1,
    "dtmf": "12#", "alerts": 2, "basic": '{"totalduration": 61.5}',
}  # fmt: skip


def test_call_metrics_and_prosody_interim_rows() -> None:
    assert to_row(CALL_METRICS, METRICS, 1, 70) == (
        "call_metrics",
        [3, "c", 60_000, True, 21_000, 17_000, 9000, 1200, 15_000, 2, 1, 7000, 5000, 12, 0.5526, 0, 1, "12#", 2,
         '{"totalduration": 61.5}', 1, 70],
    )  # fmt: skip
    interim = {"call_id": "c", "cid": 3, "role": "AGENT", "start_ms": 3000, "end_ms": 6000, "intensity": None,
               "vocal_variety": 4, "speaking_rate": "fast"}  # fmt: skip
    assert to_row(PROSODY_INTERIM, interim, 0, 5) == (
        "prosody_interims",
        [3, "c", "AGENT", 3000, 6000, None, 4, "fast", 0, 5],
    )


def test_decoded_call_metrics_and_interims_map_to_rows() -> None:
    codec = AvroCodec.default()
    window = {"call_id": "c", "cid": 3, "role": "CUSTOMER", "start_ms": 0, "end_ms": 3000}
    rows = {}
    for name, record in [(CALL_METRICS, METRICS), (PROSODY_INTERIM, window)]:
        decoded = codec.decode(codec.encode(name, record))
        table, row = to_row(decoded.name, decoded.record, 0, 1)
        assert (table, len(row)) == (TABLES[name][0], len(TABLES[name][1]))
        rows[table] = row
    assert rows["prosody_interims"][5:8] == [None, None, None]  # outputs that could not be estimated stay null


def test_record_missing_a_field_is_a_row_error_naming_it() -> None:
    partial = {k: v for k, v in METRICS.items() if k not in ("dtmf", "basic")}
    with pytest.raises(RowError, match=re.escape(f"{CALL_METRICS} record lacks dtmf, basic")):
        to_row(CALL_METRICS, partial, 0, 0)
