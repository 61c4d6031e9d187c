"""The ClickHouse store: one contract, two backends, both through clickhouse-connect.

Embedded (default): clickhouse-connect's chDB interface with a persistent data directory; only one
process may open it. Server: any ClickHouse reachable at ``SWITCHBOARD_CLICKHOUSE_URL``. The same
SQL and migrations run on both.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from infra.settings import Settings

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class StoreError(Exception):
    """A ClickHouse operation failed; the message names the statement or table."""


class Store(Protocol):
    """What the projector and the read API need from ClickHouse."""

    database: str

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, ALTER ...)."""

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows into ``database.table``."""

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a parameterised SELECT and return rows as dicts."""

    def close(self) -> None:
        """Release the connection / embedded engine."""


class ClickHouseStore:
    """The Store over a clickhouse-connect client (HTTP or embedded chDB).

    The embedded engine is used from several threads (threadpool routes, the projector); calls are
    serialised with a lock, which also keeps the chDB session single-threaded.
    """

    def __init__(self, client: Any, database: str, backend: str) -> None:
        if not _IDENTIFIER.match(database):
            raise StoreError(f"invalid database name {database!r}")
        self._client = client
        self.database = database
        self.backend = backend
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> ClickHouseStore:
        """Open the configured backend and make sure the database exists."""
        database = settings.clickhouse_database
        try:
            if settings.clickhouse_url:
                client = clickhouse_connect.get_client(dsn=settings.clickhouse_url)
                backend = "server"
            else:
                settings.clickhouse_path.mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(interface="chdb", path=str(settings.clickhouse_path))
                backend = "chdb"
        except (ClickHouseError, OSError) as exc:
            raise StoreError(
                f"cannot open ClickHouse ({'server' if settings.clickhouse_url else 'chdb'}): {exc}"
            ) from exc
        store = cls(client, database, backend)
        store.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        return store

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self._client.command(sql, parameters=dict(parameters or {}))
            except ClickHouseError as exc:
                raise StoreError(f"statement failed: {_short(sql)}: {exc}") from exc

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._lock:
            try:
                self._client.insert(table, list(rows), column_names=list(columns), database=self.database)
            except ClickHouseError as exc:
                raise StoreError(f"insert of {len(rows)} rows into {self.database}.{table} failed: {exc}") from exc

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            try:
                result = self._client.query(sql, parameters=dict(parameters or {}))
            except ClickHouseError as exc:
                raise StoreError(f"query failed: {_short(sql)}: {exc}") from exc
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def close(self) -> None:
        with self._lock:
            self._client.close()


def _short(sql: str) -> str:
    return " ".join(sql.split())[:160]


@dataclass(frozen=True)
class Migration:
    """One versioned migration: ``NNNN_name.sql`` whose statements may use ``{db}`` for the database."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        text = self.sql.replace("{db}", database)
        return [s.strip() for s in text.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(statement: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in statement.splitlines())


def load_migrations(folder: Path) -> list[Migration]:
    """Read ``NNNN_name.sql`` files in version order; a gap or a duplicate version is an error."""
    found = []
    for path in sorted(folder.iterdir()):
        match = _MIGRATION_FILE.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations in {folder} must be numbered 0001, 0002, ... without gaps; found {versions}")
    return found


def apply_migrations(store: Store, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations not yet recorded in ``schema_migrations``; return the versions applied.

    An applied migration whose file has changed since is an error: published tables change only
    through new migrations.
    """
    db = store.database
    store.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    applied = {
        int(r["version"]): str(r["checksum"])
        for r in store.query(f"SELECT version, checksum FROM {db}.schema_migrations")
    }
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise StoreError(f"migration {migration.version:04d}_{migration.name} was changed after it was applied")
            continue
        for statement in migration.statements(db):
            store.command(statement)
        store.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            ["version", "name", "checksum"],
        )
        done.append(migration.version)
    return done
