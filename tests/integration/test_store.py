"""The store contract: runs against whichever ClickHouse backend is configured (chDB by default)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from infra.settings import Settings
from infra.store import ClickHouseStore, Migration, StoreError, apply_migrations, load_migrations
from projections.rows import CALL_EVENT_COLUMNS

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))


def test_migrations_apply_once_and_create_the_tables(store: ClickHouseStore) -> None:
    migrations = load_migrations(MIGRATIONS)
    assert apply_migrations(store, migrations) == [m.version for m in migrations]
    assert apply_migrations(store, migrations) == []
    tables = {r["name"] for r in store.query(f"SHOW TABLES FROM {store.database}")}
    assert {"call_events", "speech_segments", "schema_migrations"} <= tables


def test_a_changed_applied_migration_is_refused(store: ClickHouseStore) -> None:
    first = Migration(1, "demo", "CREATE TABLE IF NOT EXISTS {db}.demo (a Int32) ENGINE = MergeTree ORDER BY a")
    apply_migrations(store, [first])
    edited = Migration(1, "demo", first.sql + " SETTINGS index_granularity = 1024")
    with pytest.raises(StoreError, match="0001_demo was changed after it was applied"):
        apply_migrations(store, [edited])


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0003_c.sql").write_text("SELECT 1")
    with pytest.raises(StoreError, match=r"without gaps; found \[1, 3\]"):
        load_migrations(tmp_path)


def test_insert_and_parameterised_query(store: ClickHouseStore) -> None:
    apply_migrations(store, load_migrations(MIGRATIONS))
    at = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    row = [7, "call-'quoted", "e1", "CallStarted", "TELNYX", at, at, "{}", "{}", {"k": "v"}, 0, 5]
    columns = list(CALL_EVENT_COLUMNS)
    store.insert("call_events", [row], columns)
    store.insert("call_events", [row], columns)  # the same record delivered twice
    found = store.query(
        f"SELECT call_id, event_type, occurred_at, attributes FROM {store.database}.call_events FINAL "
        "WHERE cid = {cid:Int64} AND call_id = {call_id:String}",
        {"cid": 7, "call_id": "call-'quoted"},
    )
    assert found == [
        {
            "call_id": "call-'quoted",
            "event_type": "CallStarted",
            "occurred_at": at.replace(tzinfo=found[0]["occurred_at"].tzinfo),
            "attributes": {"k": "v"},
        }
    ]
    assert found[0]["occurred_at"].timestamp() == at.timestamp()


def test_bad_sql_is_a_store_error_naming_the_statement(store: ClickHouseStore) -> None:
    with pytest.raises(StoreError, match="query failed: SELECT nope FROM"):
        store.query("SELECT nope FROM nowhere_at_all")


def test_embedded_data_survives_reopen(settings: Settings) -> None:
    if settings.clickhouse_url:
        pytest.fail("this test is about the embedded backend; run it without SWITCHBOARD_CLICKHOUSE_URL")
    first = ClickHouseStore.open(settings)
    apply_migrations(first, load_migrations(MIGRATIONS))
    first.close()
    again = ClickHouseStore.open(settings)
    try:
        assert apply_migrations(again, load_migrations(MIGRATIONS)) == []
        assert again.backend == "chdb"
    finally:
        again.close()
