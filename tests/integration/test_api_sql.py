"""The admin's read-only SQL endpoint, and the example queries of docs/tables.md, on projected data."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from tests.integration import api_data

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))
DOC = Path(__file__).parents[2] / "docs" / "tables.md"
ADMIN = {"Authorization": "Bearer admin-key"}
EXAMPLE = re.compile(r"```sql\n-- example: (\w+)\n(.*?)```", re.DOTALL)

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "talk_ratio_by_team": [
        {"agent_team": "blue", "calls": 1, "talk_ratio": 0.5526},  # call-a: 21 s / (21 + 17) s
        {"agent_team": "red", "calls": 1, "talk_ratio": 0.25},  # call-b: 10 s / (10 + 30) s
    ],
    "dead_air_per_campaign_per_day": [
        {"campaign": "spring", "day": date(2025, 3, 1), "dead_air_alerts": 1},  # occ-1 (RAISED then CLEARED)
        {"campaign": "spring", "day": date(2025, 3, 2), "dead_air_alerts": 1},  # occ-3
    ],
    "hold_time_distribution": [{"hold": "0: none", "calls": 1}, {"hold": "1: under 30 s", "calls": 1}],
    "job_turnaround": [
        {"mode": "batch", "jobs": 1, "avg_turnaround_s": 40.0, "max_turnaround_s": 40.0},  # 77 (79 aborted)
        {"mode": "stream", "jobs": 1, "avg_turnaround_s": 90.0, "max_turnaround_s": 90.0},  # 80 (78 pending)
    ],
}


@pytest.fixture
async def projected(settings: Settings, store: ClickHouseStore) -> ClickHouseStore:
    specs = Topics.from_settings(settings).specs()
    await ensure_topics(str(settings.kafka_bootstrap), specs, partitions=3, replication=1)
    apply_migrations(store, load_migrations(MIGRATIONS))
    await api_data.produce(settings)
    await api_data.project(settings, store, settings.group("projector"))
    return store


@pytest.fixture
async def client(settings: Settings, projected: ClickHouseStore) -> AsyncIterator[httpx.AsyncClient]:
    admin = settings.model_copy(update={"admin_keys": {SecretStr("admin-key")}, "sql_max_rows": 5})
    transport = httpx.ASGITransport(app=create_app(admin, projected))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


def test_every_example_of_the_docs_is_checked() -> None:
    assert sorted(name for name, _ in EXAMPLE.findall(DOC.read_text())) == sorted(EXPECTED)


async def test_doc_examples_answer_the_known_numbers(projected: ClickHouseStore) -> None:
    for name, sql in EXAMPLE.findall(DOC.read_text()):
        rows = projected.query(sql.replace("switchboard.", f"{projected.database}."))
        assert (name, rows) == (name, EXPECTED[name])


async def test_admin_runs_a_select_over_all_tenants(client: httpx.AsyncClient, projected: ClickHouseStore) -> None:
    db = projected.database
    sql = f"SELECT cid, state, count() AS calls FROM {db}.sessions GROUP BY cid, state ORDER BY cid, state"
    answer = await client.post("/v1/sql", headers=ADMIN, json={"sql": f"-- per tenant\n{sql};"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "rows": [
            {"cid": 1, "state": "ACTIVE", "calls": 1},
            {"cid": 1, "state": "ENDED", "calls": 2},
            {"cid": 2, "state": "ENDED", "calls": 1},
            {"cid": 2, "state": "ON_HOLD", "calls": 1},
        ],
        "count": 4,
    }


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO x VALUES (1)", "only SELECT statements are allowed, got INSERT"),
        ("drop table x", "only SELECT statements are allowed, got DROP"),
        ("SELECT 1; DROP TABLE x", "only one statement is allowed"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS clauses are not allowed"),
        ("SELECT 1 FORMAT JSON", "FORMAT clauses are not allowed"),
        ("  -- nothing\n", "empty statement"),
    ],
)
async def test_statements_other_than_one_select_are_refused(client: httpx.AsyncClient, sql: str, reason: str) -> None:
    answer = await client.post("/v1/sql", headers=ADMIN, json={"sql": sql})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith(f"Invalid sql: {reason}")


async def test_limits_and_clickhouse_errors_are_400(client: httpx.AsyncClient) -> None:
    many = await client.post("/v1/sql", headers=ADMIN, json={"sql": "SELECT number FROM system.numbers LIMIT 6"})
    assert many.status_code == 400 and "TOO_MANY_ROWS_OR_BYTES" in many.json()["message"]  # max 5, never truncated
    five = await client.post("/v1/sql", headers=ADMIN, json={"sql": "SELECT number FROM system.numbers LIMIT 5"})
    assert five.json() == {"rows": [{"number": n} for n in range(5)], "count": 5}
    semicolon_in_text = await client.post("/v1/sql", headers=ADMIN, json={"sql": "SELECT 'a;b' AS s"})
    assert semicolon_in_text.json() == {"rows": [{"s": "a;b"}], "count": 1}
    unknown = await client.post("/v1/sql", headers=ADMIN, json={"sql": "SELECT * FROM nowhere.nothing"})
    assert unknown.status_code == 400 and unknown.json()["message"].startswith("Query refused by ClickHouse")


async def test_only_admin_keys_may_run_sql(client: httpx.AsyncClient) -> None:
    body = {"sql": "SELECT 1"}
    tenant = await client.post("/v1/sql", headers={"Authorization": "Bearer key-tenant-1"}, json=body)
    assert tenant.json() == {
        "code": 403,
        "message": "Read-only SQL needs an admin key; tenant keys cannot run free SQL",
    }
    assert (await client.post("/v1/sql", json=body)).status_code == 401
    assert (await client.post("/v1/sql", headers={"Authorization": "Bearer nope"}, json=body)).status_code == 401
    missing = await client.post("/v1/sql", headers=ADMIN, json={})
    assert missing.status_code == 400 and missing.json()["message"].startswith("Invalid body.sql")
    assert (await client.get("/v1/sql", headers=ADMIN)).status_code == 405


async def test_openapi_lists_every_route_with_examples(settings: Settings, store: ClickHouseStore) -> None:
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    assert sorted(paths) == [
        "/client/{cid}/process/{pid}",
        "/client/{cid}/process/{pid}/result",
        "/client/{cid}/processes",
        "/healthz",
        "/metrics",
        "/v1/clients/{cid}/alerts",
        "/v1/clients/{cid}/alerts/stream",
        "/v1/clients/{cid}/calls",
        "/v1/clients/{cid}/calls/{call_id}",
        "/v1/clients/{cid}/calls/{call_id}/metrics",
        "/v1/clients/{cid}/calls/{call_id}/segments",
        "/v1/sql",
    ]
    assert all(set(ops) <= {"get"} for path, ops in paths.items() if path != "/v1/sql")
    assert set(paths["/v1/sql"]) == {"post"}
    missing = paths["/client/{cid}/process/{pid}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert missing["example"] == {"code": 1, "type": "error", "message": "Process with pid 35235 not found!"}
    body = paths["/v1/sql"]["post"]["requestBody"]["content"]["application/json"]
    assert "sessions by state" in body["examples"]
    assert (
        paths["/v1/clients/{cid}/calls"]["get"]["responses"]["400"]["content"]["application/json"]["example"]["code"]
        == 400
    )
