"""The read API over HTTP (ASGI transport) on tables filled by the real projector from the real broker.

The records are tests/integration/api_data.py; every expected value below follows from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from infra.settings import Settings
from infra.store import ClickHouseStore, apply_migrations, load_migrations
from infra.topics import Topics, ensure_topics
from tests.factories import T0
from tests.integration import api_data
from tests.integration.api_data import DAY, RESULTS_77, RESULTS_80, S, created_record

MIGRATIONS = Path(str(resources.files("projections").joinpath("migrations")))
ONE = {"Authorization": "Bearer key-tenant-1"}
TWO = {"Authorization": "Bearer key-tenant-2"}


def iso(at: timedelta) -> str:
    return (T0 + at).isoformat().replace("+00:00", "Z")


@dataclass
class Api:
    client: httpx.AsyncClient
    store: ClickHouseStore
    settings: Settings

    async def get(self, path: str, headers: dict[str, str] | None = ONE, **params: Any) -> httpx.Response:
        return await self.client.get(path, headers=headers, params=params)

    async def ok(self, path: str, **params: Any) -> Any:
        answer = await self.get(path, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
async def api(settings: Settings, store: ClickHouseStore) -> AsyncIterator[Api]:
    """Records produced, projected by a real projector, and the API over the store."""
    await ensure_topics(
        str(settings.kafka_bootstrap), Topics.from_settings(settings).specs(), partitions=3, replication=1
    )
    apply_migrations(store, load_migrations(MIGRATIONS))
    await api_data.produce(settings)
    await api_data.project(settings, store, settings.group("projector-a"))
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield Api(client, store, settings)


# ------------------------------------------------------------------------------------------- sessions


async def test_session_of_a_complete_call(api: Api) -> None:
    session = await api.ok("/v1/clients/1/calls/call-a")
    parties = sorted((p["role"], p["participant_id"]) for p in session.pop("participants"))
    assert parties == [("AGENT", "a-9"), ("CUSTOMER", "c-7")]
    assert session == {
        "call_id": "call-a", "cid": 1, "state": "ENDED", "direction": "INBOUND",
        "from_number": "+13122010094", "to_number": "+13122123456", "agent_id": "a-9", "agent_team": "blue",
        "campaign_id": "spring", "sources": ["MEDIASERVICE", "TELNYX"], "events": 9,
        "first_event_at": iso(S(0)), "started_at": iso(S(0)),
        "answered_at": iso(S(3)), "ended_at": iso(S(60)),
        "last_received_at": iso(S(60.005)),
        "hold_count": 2, "hold_time_ms": 15_000, "on_hold_since": None,
        "metrics_final": True, "metrics_watermark_ms": 60_000, "talk_agent_ms": 21_000, "talk_customer_ms": 17_000,
        "silence_ms": 9000, "overtalk_ms": 1200, "media_hold_ms": 15_000, "talk_ratio": 0.5526,
        "interruptions_agent": 2, "interruptions_customer": 1, "speaker_changes": 12,
        "alert_count": 2, "open_alerts": 1,
    }  # fmt: skip


async def test_session_states_and_tenant_scoping(api: Api) -> None:
    active = await api.ok("/v1/clients/1/calls/call-c")
    assert (active["state"], active["ended_at"], active["metrics_final"], active["alert_count"]) == (
        "ACTIVE", None, None, 0
    )  # fmt: skip
    other = await api.get("/v1/clients/2/calls/call-a", headers=TWO)
    assert other.status_code == 200
    assert (other.json()["agent_id"], other.json()["alert_count"], other.json()["events"]) == ("z-1", 1, 2)
    held = (await api.get("/v1/clients/2/calls/call-d", headers=TWO)).json()
    assert (held["state"], held["hold_count"], held["hold_time_ms"], held["on_hold_since"]) == (
        "ON_HOLD",
        1,
        0,
        iso(S(10)),
    )  # fmt: skip  (an open hold counts once the call ended)
    assert (await api.get("/v1/clients/2/calls/call-b", headers=TWO)).json() == {
        "code": 404, "message": "Call call-b not found"
    }  # fmt: skip


async def test_session_list_filters_and_pages(api: Api) -> None:
    async def ids(**params: Any) -> list[str]:
        return [c["call_id"] for c in (await api.ok("/v1/clients/1/calls", **params))["calls"]]

    assert await ids() == ["call-b", "call-c", "call-a"]
    assert await ids(state="ENDED") == ["call-b", "call-a"]
    assert await ids(agent="a-9") == ["call-c", "call-a"]
    assert await ids(has_alerts="true") == ["call-b", "call-a"]
    assert await ids(has_alerts="false") == ["call-c"]
    assert await ids(**{"from": iso(S(100)), "to": iso(DAY)}) == ["call-c"]
    first = await api.ok("/v1/clients/1/calls", limit=2)
    assert [c["call_id"] for c in first["calls"]] == ["call-b", "call-c"]
    second = await api.ok("/v1/clients/1/calls", limit=2, cursor=first["next_cursor"])
    assert ([c["call_id"] for c in second["calls"]], second["next_cursor"]) == (["call-a"], None)
    tenant2 = (await api.get("/v1/clients/2/calls", headers=TWO)).json()["calls"]
    assert [(c["call_id"], c["state"]) for c in tenant2] == [("call-d", "ON_HOLD"), ("call-a", "ENDED")]


# ------------------------------------------------------------------------------------------- media analysis


async def test_segments_and_metrics_of_a_call(api: Api) -> None:
    speech = (await api.ok("/v1/clients/1/calls/call-a/segments", kind="SPEECH"))["segments"]
    assert [(s["role"], s["start_ms"], s["end_ms"]) for s in speech] == [
        ("AGENT", 0.0, 1000.0),
        ("CUSTOMER", 1000.0, 3000.0),
    ]
    body = await api.ok("/v1/clients/1/calls/call-a/metrics")
    metrics = body["metrics"]
    assert (metrics["final"], metrics["watermark_ms"], metrics["talk_agent_ms"], metrics["talk_customer_ms"]) == (
        True,
        60_000,
        21_000,
        17_000,
    )  # fmt: skip  (the late interim with watermark 10 s did not replace the final row)
    assert (metrics["dtmf"], metrics["rings"], metrics["basic"]) == ("12#", 1, {"totalduration": 61.5})
    assert body["interims"] == [
        {"role": "AGENT", "start_ms": 0, "end_ms": 3000, "intensity": 5, "vocal_variety": 4, "speaking_rate": "fast"},
        {"role": "CUSTOMER", "start_ms": 0, "end_ms": 3000, "intensity": None, "vocal_variety": None,
         "speaking_rate": None},
    ]  # fmt: skip
    assert (await api.get("/v1/clients/1/calls/call-c/metrics")).status_code == 404
    assert (await api.get("/v1/clients/2/calls/call-a/metrics", headers=TWO)).status_code == 404


# ------------------------------------------------------------------------------------------- alerts


async def test_alert_list_filters_and_pages(api: Api) -> None:
    async def ids(**params: Any) -> list[tuple[str, str]]:
        rows = (await api.ok("/v1/clients/1/alerts", **params))["alerts"]
        return [(a["alert_id"], a["status"]) for a in rows]

    assert await ids() == [("occ-3", "RAISED"), ("occ-2", "RAISED"), ("occ-1", "CLEARED")]
    assert await ids(agent="a-9") == [("occ-2", "RAISED"), ("occ-1", "CLEARED")]
    assert await ids(rule_kind="dead_air") == [("occ-3", "RAISED"), ("occ-1", "CLEARED")]
    assert await ids(status="RAISED") == [("occ-3", "RAISED"), ("occ-2", "RAISED")]
    assert await ids(call_id="call-b") == [("occ-3", "RAISED")]
    assert await ids(**{"from": iso(DAY)}) == [("occ-3", "RAISED")]
    assert await ids(**{"to": iso(S(22))}) == []  # detected at exactly 22 s: the end is exclusive
    first = await api.ok("/v1/clients/1/alerts", limit=2)
    second = await api.ok("/v1/clients/1/alerts", limit=2, cursor=first["next_cursor"])
    assert [a["alert_id"] for a in first["alerts"] + second["alerts"]] == ["occ-3", "occ-2", "occ-1"]
    assert second["next_cursor"] is None
    occ1 = second["alerts"][0]
    assert (occ1["start_ms"], occ1["end_ms"], occ1["details"], occ1["detected_at"]) == (
        10_000, 22_000, {"min_ms": "10000"}, iso(S(22))
    )  # fmt: skip
    tenant2 = (await api.get("/v1/clients/2/alerts", headers=TWO)).json()["alerts"]
    assert [a["alert_id"] for a in tenant2] == ["occ-9"]


# ------------------------------------------------------------------------------------------- Oliver


async def test_process_record_is_the_created_one_with_its_current_status(api: Api) -> None:
    for pid, status, message, extra in [
        (77, 2, "completed", {}),
        (79, -2, "aborted", {}),
        (80, 2, "completed", {"duration": 90.0}),  # a streaming job's duration is known from its results
        (78, 0, "pending", {}),
    ]:
        record = await api.ok(f"/client/1/process/{pid}")
        assert record == {**created_record(pid), "status": status, "statusmsg": message, **extra}
    by_header = await api.get("/client/1/process/77", headers={"X-Auth-Token": "key-tenant-1"})
    by_query = await api.get("/client/1/process/77", headers=None, **{"X-Auth-Token": "key-tenant-1"})
    assert by_header.json() == by_query.json() == await api.ok("/client/1/process/77")


async def test_process_result_and_the_vendor_error_bodies(api: Api) -> None:
    assert await api.ok("/client/1/process/77/result") == RESULTS_77
    assert await api.ok("/client/1/process/80/result") == RESULTS_80
    waiting = await api.get("/client/1/process/78/result")
    assert waiting.status_code == 503
    assert waiting.json() == {
        "code": 1,
        "type": "error",
        "message": "Cannot send results for Process with pid 78. The reason is: Waiting for result",
    }
    aborted = await api.get("/client/1/process/79/result")
    assert aborted.status_code == 405
    assert aborted.json()["message"] == "Cannot send results for Process with pid 79. The reason is: Process aborted"
    for path in ("/client/1/process/35235", "/client/1/process/35235/result"):
        missing = await api.get(path)
        assert missing.status_code == 404
        assert missing.json() == {"code": 1, "type": "error", "message": "Process with pid 35235 not found!"}
    other = await api.get("/client/2/process/77", headers={"X-Auth-Token": "key-tenant-2"})
    assert other.status_code == 404 and other.json()["message"] == "Process with pid 77 not found!"


async def test_process_list_filters_and_pages(api: Api) -> None:
    async def pids(**params: Any) -> list[int]:
        return [p["pid"] for p in (await api.ok("/client/1/processes", **params))["processes"]]

    assert await pids() == [78, 80, 79, 77]
    assert await pids(status=2) == [80, 77]
    assert await pids(agentId="a-9") == [78, 80, 77]
    assert await pids(campaignId="spring") == [77]
    assert await pids(**{"from": iso(S(5)), "to": iso(S(20))}) == [80, 79]
    first = await api.ok("/client/1/processes", limit=3)
    second = await api.ok("/client/1/processes", limit=3, cursor=first["next_cursor"])
    assert [p["pid"] for p in first["processes"]] == [78, 80, 79]
    assert ([p["pid"] for p in second["processes"]], second["next_cursor"]) == ([77], None)
    assert first["processes"][1] == {**created_record(80), "status": 2, "statusmsg": "completed", "duration": 90.0}
    assert (await api.get("/client/2/processes", headers=TWO)).json() == {"processes": [], "next_cursor": None}


# ------------------------------------------------------------------------------------------- access and parameters

TENANT_ROUTES = [
    "/v1/clients/1/calls",
    "/v1/clients/1/calls/call-a",
    "/v1/clients/1/calls/call-a/segments",
    "/v1/clients/1/calls/call-a/metrics",
    "/v1/clients/1/alerts",
    "/v1/clients/1/alerts/stream",
    "/client/1/process/77",
    "/client/1/process/77/result",
    "/client/1/processes",
]


async def test_every_route_refuses_other_tenants_and_missing_keys(api: Api) -> None:
    for path in TENANT_ROUTES:
        for headers, status in [(TWO, 403), (None, 401), ({"Authorization": "Bearer nope"}, 401)]:
            answer = await api.get(path, headers=headers)
            assert (path, answer.status_code, answer.json()["code"]) == (path, status, status)
    forbidden = await api.get("/client/1/process/77", headers={"X-Auth-Token": "key-tenant-2"})
    assert forbidden.json() == {"code": 403, "message": "This API key does not give access to client 1"}


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/v1/clients/1/calls", {"limit": 0}, "query.limit"),
        ("/v1/clients/1/calls", {"limit": 1001}, "query.limit"),
        ("/v1/clients/1/calls", {"state": "SLEEPING"}, "query.state"),
        ("/v1/clients/1/calls", {"has_alerts": "maybe"}, "query.has_alerts"),
        ("/v1/clients/1/calls", {"from": "yesterday"}, "query.from"),
        ("/v1/clients/1/calls", {"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, "query.from"),
        ("/v1/clients/1/calls", {"cursor": "not-a-cursor"}, "query.cursor"),
        ("/v1/clients/1/alerts", {"status": "OPEN"}, "query.status"),
        ("/v1/clients/1/alerts", {"rule_kind": "Dead Air"}, "query.rule_kind"),
        ("/v1/clients/1/alerts", {"cursor": "WzEsMl0"}, "query.cursor"),  # [1,2]: the id must be text here
        ("/v1/clients/1/calls/call-a/segments", {"kind": "NOISE"}, "query.kind"),
        ("/client/1/processes", {"status": 5}, "query.status"),
        ("/client/1/processes", {"cursor": "WzEsImEiXQ"}, "query.cursor"),  # [1,"a"]: the pid must be a number
        ("/client/1/process/abc", {}, "path.pid"),
        ("/v1/clients/x/calls", {}, "path.cid"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    api: Api, path: str, params: dict[str, Any], named: str
) -> None:
    answer = await api.get(path, **params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == 400 and body["message"].startswith(f"Invalid {named}"), body


# ------------------------------------------------------------------------------------------- replay


async def test_a_full_replay_changes_no_answer(api: Api) -> None:
    paths = [
        "/v1/clients/1/calls", "/v1/clients/1/calls/call-a", "/v1/clients/1/calls/call-a/metrics",
        "/v1/clients/1/calls/call-a/segments", "/v1/clients/1/alerts", "/client/1/processes",
        "/client/1/process/77/result",
    ]  # fmt: skip
    before = [await api.ok(p) for p in paths]
    await api_data.project(api.settings, api.store, api.settings.group("projector-b"))  # every record again
    db = api.store.database
    raw = api.store.query(f"SELECT count() AS n FROM {db}.call_metrics")[0]["n"]
    assert raw >= 4  # the duplicates are physically there until merged ...
    assert [await api.ok(p) for p in paths] == before  # ... and invisible through every view
