"""Cresta endpoints when Kafka stops acknowledging: 503 Status before a stream starts, error chunk 14 after.

Uses a broker of its own, started and stopped here (the session broker is shared).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from infra.broker import LocalBroker
from infra.settings import Settings
from producers.cresta.models import UNAVAILABLE_MESSAGE
from tests.conftest import JARS_DIR
from tests.integration.gateway.test_cresta_stream import KEY, STREAM, config, event, gateway, ndjson, post, result

UNAVAILABLE = {"code": 14, "message": UNAVAILABLE_MESSAGE, "details": []}
PROCESS = "/v1/voicecallsession/default/sessionEvent:process"


async def test_broker_down(tmp_path: Path, settings: Settings) -> None:
    with LocalBroker(workdir=tmp_path / "doomed", jars_dir=JARS_DIR, heap="256m") as doomed:
        own = settings.model_copy(update={"kafka_bootstrap": doomed.bootstrap, "produce_timeout_s": 2.0})
        async with gateway(own) as gw:
            assert ndjson(await post(gw, STREAM, [config("1"), event("2", "CALL_START")])) == [result("1"), result("2")]
            assert await gw.size(gw.topics.events) == 1
            doomed.stop()

            # Before the first byte: the HTTP status and the Status body.
            async with httpx.AsyncClient(timeout=30) as client:
                unary = await client.post(
                    gw.url + PROCESS,
                    json={"sessionEvent": {"eventType": "CALL_END", "platformCallId": "c-77"}},
                    headers=KEY,
                )
            assert (unary.status_code, unary.json()) == (503, UNAVAILABLE)
            first_needs_kafka = json.dumps(
                {**json.loads(config("1")), "sessionEvent": {"eventType": "CALL_START", "platformCallId": "c-77"}}
            )
            refused = await post(gw, STREAM, [first_needs_kafka])
            assert (refused.status_code, refused.json()) == (503, UNAVAILABLE)

            # After it: an error chunk ends the stream.
            lines = ndjson(await post(gw, STREAM, [config("1"), event("2", "CALL_HOLD"), event("3", "CALL_END")]))
            assert lines == [result("1"), {"error": UNAVAILABLE}]

            async with connect(gw.ws_url + STREAM, additional_headers=KEY) as ws:
                await ws.send(config("1"))
                assert json.loads(await ws.recv()) == result("1")
                await ws.send(event("2", "CALL_END"))
                assert json.loads(await ws.recv()) == {"error": UNAVAILABLE}
                try:
                    extra = await ws.recv()
                except ConnectionClosed:
                    extra = None
                assert extra is None
            assert ws.close_code == 1013
