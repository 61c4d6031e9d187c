"""Kafka gone under a running gateway: the Oliver endpoints answer the seed's 503; the socket is told, then closed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from infra.broker import LocalBroker
from infra.settings import Settings
from tests.conftest import JARS_DIR
from tests.harness import running_gateway
from tests.unit.producers.test_oliver_framing import pcm, wav_bytes

SEED_503 = {"code": 503, "message": "The service is not available at the moment. Please try again later."}
HEADERS = {"X-Auth-Token": "key-tenant-1"}
PARAMS = {"channels": "1", "calldirection": "1"}


async def test_broker_down_gives_the_seed_503_and_claims_no_audio(tmp_path: Path, settings: Settings) -> None:
    doomed = LocalBroker(workdir=tmp_path / "doomed", jars_dir=JARS_DIR, heap="256m")
    await asyncio.to_thread(doomed.start)
    try:
        local = settings.model_copy(update={"kafka_bootstrap": doomed.bootstrap, "produce_timeout_s": 2.0})
        async with running_gateway(local) as gw, httpx.AsyncClient(timeout=30) as client:
            created = await client.post(f"{gw.url}/client/1/process/stream", params=PARAMS, headers=HEADERS)
            pid = created.json()["pid"]
            async with connect(f"{gw.ws_url}/stream/1", additional_headers=HEADERS) as ws:
                assert json.loads(await ws.recv()) == {"status": "ready"}
                await ws.send(json.dumps({"control": "start", "pid": pid}))
                assert json.loads(await ws.recv()) == {"status": "accepting"}
                await asyncio.to_thread(doomed.stop)
                await ws.send(pcm(1600, 1))  # one whole 200 ms chunk: produced at once, never acknowledged
                async with asyncio.timeout(30):
                    assert json.loads(await ws.recv()) == SEED_503
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            stream = await client.post(f"{gw.url}/client/1/process/stream", params=PARAMS, headers=HEADERS)
            assert (stream.status_code, stream.json()) == (503, SEED_503)
            upload = await client.post(
                f"{gw.url}/client/1/process/audio",
                params=PARAMS,
                headers=HEADERS,
                files={"file": ("a.wav", wav_bytes(800, 1))},
            )
            assert (upload.status_code, upload.json()) == (503, SEED_503)
            assert not any(p.is_file() for p in local.blobs_path.rglob("*"))  # the committed file was removed
    finally:
        await asyncio.to_thread(doomed.stop)
