"""Kafka down: Telnyx commands get the Telnyx 503 body, the media socket closes with 1011."""

from __future__ import annotations

from pathlib import Path

import httpx

from infra.broker import LocalBroker
from infra.settings import Settings
from tests.conftest import JARS_DIR
from tests.harness import running_gateway
from tests.integration.gateway.test_telnyx_media import CONNECTED, attempt, start

DETAIL = "The command could not be stored (Kafka did not acknowledge it). Retry it with the same command_id."
TELNYX_503 = {"errors": [{"code": "90503", "title": "Service unavailable", "detail": DETAIL}]}


async def test_broker_down_gives_the_telnyx_503_and_closes_media_sockets_with_1011(
    tmp_path: Path, settings: Settings
) -> None:
    doomed = LocalBroker(workdir=tmp_path / "doomed", jars_dir=JARS_DIR, heap="256m").start()
    try:
        on_doomed = settings.model_copy(update={"kafka_bootstrap": doomed.bootstrap, "produce_timeout_s": 2.0})
        async with running_gateway(on_doomed) as gw:
            doomed.stop()
            async with httpx.AsyncClient() as client:
                for prefix in ("/v2", ""):
                    response = await client.post(
                        f"{gw.url}{prefix}/calls/v3:down/actions/streaming_start",
                        json={"command_id": "c-1"},
                        headers={"Authorization": "Bearer key-tenant-1"},
                    )
                    assert (response.status_code, response.json()) == (503, TELNYX_503)
            closed = await attempt(gw, [CONNECTED, start("v3:down")])
            assert closed == (1011, "Kafka unavailable: audio could not be stored")
    finally:
        doomed.stop()
