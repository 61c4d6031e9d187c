"""Pure parts of the read API: cursors, the Oliver process record, the SQL check, SSE and metrics text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from api import cursor
from api.alert_feed import AlertFilter, sse
from api.app import exposition
from api.process import not_found, not_ready, process_record
from api.sql import SqlError, select_only

AT = datetime(2025, 3, 1, 10, 0, 0, 123000)


def test_cursor_round_trip_and_naive_times_are_utc() -> None:
    token = cursor.encode(AT, "call-a")
    assert "=" not in token
    assert cursor.decode(token, str) == (int(AT.replace(tzinfo=UTC).timestamp() * 1000), "call-a")
    assert cursor.decode(cursor.encode(AT.replace(tzinfo=UTC), 77), int) == cursor.decode(cursor.encode(AT, 77), int)


@pytest.mark.parametrize("token", ["", "!!!", "bm90IGpzb24", "WzFd", "WyIxIiwiYSJd", "WzEsMl0", "WzEuNSwiYSJd"])
def test_foreign_cursors_are_refused_naming_them(token: str) -> None:
    # not base64 / not JSON / [1] / ["1","a"] / [1,2] (id must be text) / [1.5,"a"]
    with pytest.raises(cursor.CursorError, match="is not one this API issued"):
        cursor.decode(token, str)


def _job(metadata: dict[str, str], **over: Any) -> dict[str, Any]:
    row = {"job_id": 5, "cid": 2, "status": 1, "statusmsg": "processing", "created_at": AT, "metadata": metadata}
    return {**row, "results": None, **over}


def test_process_record_from_batch_metadata() -> None:
    metadata = {"channels": "2", "calldirection": "1", "agentId": "a", "name": "n", "timezone": "-3", "mode": "batch",
                "duration": "12.5", "uri": "file:///x.wav", "sample_rate": "8000", "extra": "kept out"}  # fmt: skip
    assert process_record(_job(metadata)) == {
        "pid": 5, "id": 5, "cid": 2, "name": "n", "status": 1, "statusmsg": "processing", "duration": 12.5,
        "datetime": "2025-03-01T10:00:00.123Z", "uri": "file:///x.wav", "channels": 2, "calldirection": 1,
        "agentId": "a", "timezone": -3, "mode": "batch",
    }  # fmt: skip


def test_stream_record_takes_tasks_and_the_result_duration() -> None:
    tasks = [{"name": "stream", "options": {"activate": True}}]
    metadata = {"channels": "1", "calldirection": "2", "tasks": json.dumps(tasks), "mode": "stream"}
    record = process_record(_job(metadata, results='{"basic": {"totalduration": 9.25}}'))
    assert (record["tasks"], record["duration"], record["uri"], record["name"]) == (tasks, 9.25, "", "")
    assert process_record(_job(metadata))["duration"] == 0.0


def test_vendor_error_bodies() -> None:
    assert not_found(35235) == {"code": 1, "type": "error", "message": "Process with pid 35235 not found!"}
    assert not_ready(11089, "Waiting for result")["message"] == (
        "Cannot send results for Process with pid 11089. The reason is: Waiting for result"
    )


@pytest.mark.parametrize(
    ("sql", "kept"),
    [
        ("SELECT 1;", "SELECT 1"),
        ("  /* c */ with x AS (SELECT 1) SELECT * FROM x ;  ", "with x AS (SELECT 1) SELECT * FROM x"),
        ("(SELECT 1)", "(SELECT 1)"),
        ("SELECT 'settings; format' AS s", "SELECT 'settings; format' AS s"),
    ],
)
def test_single_selects_pass(sql: str, kept: str) -> None:
    assert select_only(sql) == kept


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("ALTER TABLE t DELETE WHERE 1", "only SELECT statements are allowed, got ALTER"),
        ("-- SELECT\nDELETE FROM t", "only SELECT statements are allowed, got DELETE"),
        ("SELECT 1; SELECT 2", "only one statement is allowed"),
        ("SELECT * FROM t INTO OUTFILE 'x'", "INTO OUTFILE clauses are not allowed"),
        ("select 1 settings max_result_rows=0", "SETTINGS clauses are not allowed"),
        ("", "empty statement"),
    ],
)
def test_other_statements_fail(sql: str, reason: str) -> None:
    with pytest.raises(SqlError, match=reason):
        select_only(sql)


ALERT = {"alert_id": "o", "call_id": "c", "rule_id": "r", "rule_kind": "dead_air", "severity": "INFO", "cid": 1,
         "status": "RAISED", "start_ms": 1, "end_ms": 2, "detected_at": AT.replace(tzinfo=UTC),
         "details": {"k": "v"}}  # fmt: skip


def test_alert_filter_and_sse_message() -> None:
    assert AlertFilter(1).matches_record(ALERT)
    assert AlertFilter(1, call_id="c", rule_kind="dead_air").matches_record(ALERT)
    assert not AlertFilter(2).matches_record(ALERT)
    assert not AlertFilter(1, call_id="d").matches_record(ALERT)
    assert not AlertFilter(1, rule_kind="overtalk").matches_record(ALERT)
    head, data = sse(ALERT).rstrip("\n").rsplit("\n", 1)
    assert head == "id: o.RAISED\nevent: alert"
    assert json.loads(data.removeprefix("data: ")) == {
        "alert_id": "o", "call_id": "c", "rule_id": "r", "rule_kind": "dead_air", "severity": "INFO",
        "status": "RAISED", "start_ms": 1, "end_ms": 2, "detected_at": "2025-03-01T10:00:00.123Z",
        "details": {"k": "v"},
    }  # fmt: skip
    assert sse(ALERT).endswith("\n\n")


class Stats:
    rows_written = 7
    dead_lettered = 1

    def lag(self) -> dict[tuple[str, int], int]:
        return {("t.b", 1): 3, ("t.a", 0): 0}


def test_exposition_lists_lag_per_partition_in_order() -> None:
    lines = [line for line in exposition(Stats()).splitlines() if not line.startswith("#")]
    assert lines == [
        'switchboard_projector_lag{topic="t.a",partition="0"} 0',
        'switchboard_projector_lag{topic="t.b",partition="1"} 3',
        "switchboard_projector_rows_written_total 7",
        "switchboard_projector_dead_lettered_total 1",
    ]
    assert exposition(None) == ""
