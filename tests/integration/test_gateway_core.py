"""The gateway shell: served for real, health, vendor-specific 503 bodies chosen by path, services run for its life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi.responses import JSONResponse

from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.context import GatewayContext
from producers.gateway import create_gateway
from tests.harness import running_gateway, serve


async def test_gateway_serves_health_on_a_real_port(settings: Settings) -> None:
    async with running_gateway(settings) as gw, httpx.AsyncClient() as client:
        response = await client.get(f"{gw.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_registered_services_run_for_the_gateway_lifetime(settings: Settings) -> None:
    log: list[str] = []

    @asynccontextmanager
    async def service() -> AsyncIterator[None]:
        log.append("started")
        yield
        log.append("stopped")

    topics = Topics.from_settings(settings)  # the vendors' own services (result feeds) need their topics
    await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=1, replication=1)
    ctx = GatewayContext.build(settings, sink=None)  # type: ignore[arg-type]
    ctx.add_service(service)
    async with serve(create_gateway(ctx)):
        assert log == ["started"]
    assert log == ["started", "stopped"]


def test_unavailable_response_picks_the_longest_registered_prefix(settings: Settings) -> None:
    ctx = GatewayContext.build(settings, sink=None)  # type: ignore[arg-type]
    ctx.on_unavailable("/v1", lambda: JSONResponse({"who": "v1"}, status_code=503))
    ctx.on_unavailable("/v1/voicecallsession", lambda: JSONResponse({"who": "cresta"}, status_code=503))
    assert ctx.unavailable_response("/v1/voicecallsession/streamCallSession").body == b'{"who":"cresta"}'
    assert ctx.unavailable_response("/v1/other").body == b'{"who":"v1"}'
    assert ctx.unavailable_response("/client/1/process/stream") is None


def test_openapi_describes_every_http_endpoint_of_the_four_vendor_apis(settings: Settings) -> None:
    spec = create_gateway(GatewayContext.build(settings, sink=None)).openapi()  # type: ignore[arg-type]
    assert {(path, method) for path, ops in spec["paths"].items() for method in ops} == {
        ("/healthz", "get"),
        ("/client/{cid}/process/audio", "post"),
        ("/client/{cid}/process/stream", "post"),
        ("/mediaservice/{domain}/{name}", "post"),
        ("/v1/clients/{cid}/calls/{call_id}/commands/{op}", "post"),
        ("/calls/{call_control_id}/actions/{action}", "post"),
        ("/v2/calls/{call_control_id}/actions/{action}", "post"),
        ("/v1/voicecallsession/streamCallSession", "post"),
        ("/v1/voicecallsession/streamCallSessionAudio", "post"),
        ("/v1/voicecallsession/{profile}/sessionEvent:process", "post"),
    }
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary") or op.get("description"), f"{method.upper()} {path} is undocumented"
