"""Uploaded-file jobs end to end: the Oliver upload at the gateway, the real worker running the job,
its transitions and results on jobs.transitions; a job whose audio is gone fails with the reason."""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from producers.sink import RecordSink
from schemas import JOB_TRANSITION, AvroCodec
from tests.harness import read_to_end, running_gateway
from tests.speech import RATE, Utterance, build
from tests.workers import WorkerProcess

TOKEN = {"X-Auth-Token": "key-tenant-1"}
SCRIPT = [
    Utterance("AGENT", 0.5, "Thank you for calling, this is Anna speaking"),
    Utterance("CUSTOMER", 3.5, "Hi Anna, I would like to cancel my subscription"),
    Utterance("AGENT", 18.5, "I am sorry to hear that, may I ask why"),
]


def stereo_wav() -> bytes:
    conv = build(SCRIPT, seconds=22.0, seed=3)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(conv.stereo().astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path)
    try:
        yield process
    finally:
        process.stop()


async def transitions_of(bootstrap: str, topic: str, job_id: int, until_status: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        mine = [r.record for r in await read_to_end(bootstrap, topic) if r.record["job_id"] == job_id]
        if any(t["to_status"] == until_status for t in mine):
            return mine
        await asyncio.sleep(0.5)
    raise AssertionError(f"job {job_id} never reached status {until_status}")


async def test_an_uploaded_stereo_file_is_processed_to_results(settings: Settings, worker: WorkerProcess) -> None:
    async with running_gateway(settings) as gw:
        worker.start()
        await asyncio.to_thread(worker.wait_for, "Worker ready")
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{gw.url}/client/1/process/audio",
                params={"channels": 2, "calldirection": 1, "agentId": "anna", "name": "cancel-1"},
                headers=TOKEN,
                files={"file": ("cancel.wav", stereo_wav(), "audio/wav")},
            )
        assert response.status_code == 200, response.text
        pid = response.json()["pid"]
        history = await transitions_of(gw.bootstrap, gw.topics.transitions, pid, until_status=2)
    assert [(t["from_status"], t["to_status"]) for t in history] == [(None, 0), (0, 1), (1, 2)]
    results = json.loads(history[-1]["results"])
    assert results["basic"]["totalduration"] == 22.0
    assert results["basic"]["id"] == {"agent": 0, "customer": 1}
    assert results["file"] == {"format": "wav", "sample_rate": RATE, "channels": 2}
    assert results["segments"] >= 3
    assert results["metrics"]["talk_agent_ms"] > results["metrics"]["talk_customer_ms"] > 1500
    dead_air = [a for a in results["alerts"] if a["kind"] == "dead_air"]  # default rules: 10 s of silence
    assert len(dead_air) == 1 and 6.0 < dead_air[0]["st"] < 7.5


async def test_a_job_whose_audio_is_gone_fails_with_the_reason(settings: Settings, worker: WorkerProcess) -> None:
    async with running_gateway(settings) as gw:
        worker.start()
        await asyncio.to_thread(worker.wait_for, "Worker ready")
        producer = make_producer(gw.bootstrap, settings)
        await producer.start()
        try:
            queued = {
                "job_id": 4242,
                "cid": 1,
                "from_status": None,
                "to_status": 0,
                "at": int(time.time() * 1000),
                "reason": "pending",
                "metadata": {"mode": "batch", "uri": "file:///nowhere/4242.wav", "channels": "2"},
                "results": None,
            }
            await RecordSink(producer, AvroCodec.default(), 5).send(
                gw.topics.transitions, "4242", JOB_TRANSITION, queued
            )
        finally:
            await stop_producer(producer, 5)
        history = await transitions_of(gw.bootstrap, gw.topics.transitions, 4242, until_status=-1)
    assert [(t["from_status"], t["to_status"]) for t in history] == [(None, 0), (0, 1), (1, -1)]
    assert "No such file" in history[-1]["reason"] and "/nowhere/4242.wav" in history[-1]["reason"]
