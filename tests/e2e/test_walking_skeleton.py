"""One call through the whole spine, with every process real.

CallEvents and AudioChunks are produced to the real broker; the worker (`switchboard worker`,
a Faust app) derives level segments; the projector (`switchboard projector`) writes events and
segments into embedded ClickHouse and serves the read API, which returns them over HTTP.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.broker import free_port
from infra.kafka_clients import make_producer, stop_producer
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.sink import RecordSink
from schemas import AUDIO_CHUNK, CALL_EVENT, AvroCodec
from tests.factories import audio_chunk, call_event, sine_dbfs

# 200 ms chunks: one second at each of two levels, then a little more so the second second's
# level interval is complete (intervals close once the VAD frames covering them are scored).
AMPLITUDES = [1000.0] * 5 + [16000.0] * 5 + [4000.0] * 2
SECONDS = [1000.0, 16000.0]


def _env(settings: Settings, api_port: int) -> dict[str, str]:
    return settings.child_env(
        SWITCHBOARD_API_PORT=str(api_port),
        SWITCHBOARD_PROJECTOR_FLUSH_MS="100",
        SWITCHBOARD_CLICKHOUSE_DATABASE=settings.clickhouse_database,
        SWITCHBOARD_API_KEYS='{"1": "key-tenant-1", "2": "key-tenant-2"}',
    )


class Processes:
    """The worker and projector subprocesses of one test, with their logs."""

    def __init__(self, settings: Settings, api_port: int, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        env = _env(settings, api_port)
        for name in ("worker", "projector"):
            with (logs / f"{name}.log").open("wb") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "infra.cli", name], env=env, stdout=log, stderr=subprocess.STDOUT
                )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 80) -> str:
        return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> dict[str, int]:
        codes = {}
        for name, proc in self.procs.items():
            proc.terminate()
            try:
                codes[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


@pytest.fixture
def running(settings: Settings, tmp_path: Path) -> Iterator[tuple[Processes, str]]:
    asyncio.run(
        ensure_topics(
            str(settings.kafka_bootstrap),
            Topics.from_settings(settings).specs(),
            partitions=settings.topic_partitions,
            replication=1,
        )
    )
    api_port = free_port()
    procs = Processes(settings, api_port, tmp_path)
    try:
        yield procs, f"http://127.0.0.1:{api_port}"
    finally:
        procs.stop()


def _poll(url: str, procs: Processes, key: str, until: object, timeout_s: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            last = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
            if callable(until) and until(last):
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(
        f"{url} never satisfied the condition; last answer "
        f"{last.status_code if last else None}: {last.text if last else ''}\n"
        f"worker:\n{procs.tail('worker')}\nprojector:\n{procs.tail('projector')}"
    )


async def _produce(settings: Settings, call_id: str) -> None:
    topics = Topics.from_settings(settings)
    producer = make_producer(str(settings.kafka_bootstrap), settings)
    await producer.start()
    try:
        sink = RecordSink(producer, AvroCodec.default(), settings.produce_timeout_s)
        await sink.send(topics.events, call_id, CALL_EVENT, call_event(call_id, 1, "CallStarted", 0))
        chunks = [(call_id, AUDIO_CHUNK, audio_chunk(call_id, 1, seq, amp)) for seq, amp in enumerate(AMPLITUDES)]
        await sink.send_many(topics.audio, chunks)
        await sink.send(topics.audio, call_id, AUDIO_CHUNK, audio_chunk(call_id, 1, 2, 30000.0))  # redelivery
        await sink.send(topics.events, call_id, CALL_EVENT, call_event(call_id, 1, "CallHeld", 1))
    finally:
        await stop_producer(producer, settings.produce_timeout_s)


def test_call_travels_from_kafka_through_worker_and_projector_to_the_api(
    settings: Settings, running: tuple[Processes, str]
) -> None:
    procs, api = running
    call_id = "call-e2e-1"
    asyncio.run(_produce(settings, call_id))

    segments_url = f"{api}/v1/clients/1/calls/{call_id}/segments?kind=LEVEL"
    answer = _poll(
        segments_url,
        procs,
        "key-tenant-1",
        lambda r: r.status_code == 200 and len(r.json()["segments"]) >= len(SECONDS),
    )
    segments = answer.json()["segments"]
    assert [s["start_sample"] for s in segments] == [0, 8000]
    assert [s["end_sample"] - s["start_sample"] for s in segments] == [8000, 8000]
    assert [s["start_ms"] for s in segments] == [0.0, 1000.0]
    for segment, amplitude in zip(segments, SECONDS, strict=True):
        assert segment["kind"] == "LEVEL" and segment["track"] == "customer" and segment["role"] == "CUSTOMER"
        assert segment["rms_dbfs"] == pytest.approx(sine_dbfs(amplitude), abs=0.3)  # mu-law quantisation

    session = _poll(
        f"{api}/v1/clients/1/calls/{call_id}",
        procs,
        "key-tenant-1",
        lambda r: r.status_code == 200 and r.json()["state"] == "ON_HOLD",
    ).json()
    assert session["events"] == 2 and session["sources"] == ["TELNYX"]
    assert session["started_at"].startswith("2025-03-01T10:00:00")

    # Tenancy and unknown ids, answered by the same running API.
    other = httpx.get(
        segments_url.replace("/clients/1/", "/clients/2/"), headers={"Authorization": "Bearer key-tenant-1"}
    )
    assert other.status_code == 403 and other.json()["code"] == 403
    assert httpx.get(segments_url).status_code == 401
    missing = httpx.get(f"{api}/v1/clients/1/calls/nope", headers={"Authorization": "Bearer key-tenant-1"})
    assert missing.status_code == 404 and missing.json() == {"code": 404, "message": "Call nope not found"}

    assert procs.stop() == {"worker": 0, "projector": 0} or pytest.fail(
        f"unclean exit\nworker:\n{procs.tail('worker')}\nprojector:\n{procs.tail('projector')}"
    )
