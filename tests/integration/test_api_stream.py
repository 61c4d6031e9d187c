"""The live alert feed (Server-Sent Events) served by uvicorn, fed from the real alerts topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from tests.harness import serve
from tests.integration import api_data
from tests.integration.api_data import S, alert, started

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))
ONE = {"Authorization": "Bearer key-tenant-1"}


@pytest.fixture
async def api_url(settings: Settings, store: ClickHouseStore) -> AsyncIterator[str]:
    """The API served over HTTP; sessions of call-a (agent a-9) and call-b (agent a-2) are projected.

    One partition per topic, so the order alerts are produced in is the order the feed reads them.
    """
    topics = Topics.from_settings(settings)
    await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=1, replication=1)
    apply_migrations(store, load_migrations(MIGRATIONS))
    calls = [started(1, "call-a", S(0), "a-9", "blue"), started(1, "call-b", S(0), "a-2", "red")]
    await api_data.produce(settings, calls)
    await api_data.project(settings, store, settings.group("projector"), expected=len(calls))
    async with serve(create_app(settings, store)) as url:
        yield url


async def _events(lines: AsyncIterator[str], count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The next ``count`` SSE messages as (id, event, data), skipping comment lines."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if fields:
            out.append((fields["id"], fields["event"], json.loads(fields["data"])))
            fields = {}
            if len(out) == count:
                break
    return out


async def test_stream_delivers_alerts_produced_after_connecting_filtered(settings: Settings, api_url: str) -> None:
    await api_data.produce(settings, [alert(1, "call-a", "occ-old", "dead_air", "RAISED", 0, 10_000, S(10))])
    params = {"agent": "a-9", "rule_kind": "dead_air"}
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as client,
        client.stream("GET", "/v1/clients/1/alerts/stream", headers=ONE, params=params) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"  # the feed's offsets are pinned: what follows is delivered
        await api_data.produce(
            settings,
            [
                alert(2, "call-a", "occ-t2", "dead_air", "RAISED", 0, 10_000, S(20)),  # another tenant
                alert(1, "call-b", "occ-b", "dead_air", "RAISED", 0, 10_000, S(21)),  # another agent
                alert(1, "call-a", "occ-o", "overtalk", "RAISED", 0, 1_000, S(22)),  # another rule
                alert(1, "call-x", "occ-x", "dead_air", "RAISED", 0, 10_000, S(23)),  # no session: agent unknown
                alert(1, "call-a", "occ-1", "dead_air", "RAISED", 30_000, 40_000, S(40)),
                alert(1, "call-a", "occ-1", "dead_air", "CLEARED", 30_000, 45_000, S(45)),
            ],
        )
        async with asyncio.timeout(30):
            received = await _events(lines, 2)
    assert [(i, e) for i, e, _ in received] == [("occ-1.RAISED", "alert"), ("occ-1.CLEARED", "alert")]
    assert received[1][2] == {
        "alert_id": "occ-1", "call_id": "call-a", "rule_id": "de", "rule_kind": "dead_air", "severity": "WARNING",
        "status": "CLEARED", "start_ms": 30_000, "end_ms": 45_000, "detected_at": "2025-03-01T10:00:45.000Z",
        "details": {"min_ms": "10000"},
    }  # fmt: skip


async def test_stream_by_call_sees_only_that_call_of_its_tenant(settings: Settings, api_url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as client,
        client.stream("GET", "/v1/clients/1/alerts/stream", headers=ONE, params={"call_id": "call-b"}) as response,
    ):
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        await api_data.produce(
            settings,
            [
                alert(2, "call-b", "occ-t2", "dead_air", "RAISED", 0, 10_000, S(20)),
                alert(1, "call-a", "occ-a", "overtalk", "RAISED", 0, 1_000, S(21)),
                alert(1, "call-b", "occ-b", "overtalk", "RAISED", 0, 1_000, S(22)),
            ],
        )
        async with asyncio.timeout(30):
            received = await _events(lines, 1)
    assert [(i, d["call_id"]) for i, _, d in received] == [("occ-b.RAISED", "call-b")]


async def test_stream_refuses_bad_filters_and_other_tenants(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        bad = await client.get("/v1/clients/1/alerts/stream", headers=ONE, params={"rule_kind": "DEAD AIR"})
        other = await client.get("/v1/clients/2/alerts/stream", headers=ONE)
    assert (bad.status_code, bad.json()["message"].startswith("Invalid query.rule_kind")) == (400, True)
    assert other.json() == {"code": 403, "message": "This API key does not give access to client 2"}
