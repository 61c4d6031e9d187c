"""The Oliver live audio WebSocket against the real broker: audio in as AudioChunks, results out, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from infra.settings import Settings
from schemas import ALERT, JOB_TRANSITION, SPEECH_SEGMENT
from tests.harness import Consumed, RunningGateway, running_gateway
from tests.unit.producers.test_oliver_framing import mp3_bytes, pcm, pieces, wav_bytes

TOKEN = "key-tenant-1"
FAULTY = "client provided faulty parameters"


@pytest.fixture
def gateway_overrides() -> dict[str, Any]:
    """Settings changed for one test (parametrize it)."""
    return {}


@pytest.fixture
async def gateway(settings: Settings, gateway_overrides: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    async with running_gateway(settings, **gateway_overrides) as gw:
        yield gw


async def create_job(gw: RunningGateway, channels: int = 2, cid: int = 1, **params: str) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{gw.url}/client/{cid}/process/stream",
            params={"channels": str(channels), "calldirection": "1", **params},
            headers={"X-Auth-Token": f"key-tenant-{cid}"},
        )
    assert response.status_code == 200, response.text
    return int(response.json()["pid"])


@asynccontextmanager
async def socket(gw: RunningGateway, cid: int = 1, token: str = TOKEN) -> AsyncIterator[ClientConnection]:
    async with connect(f"{gw.ws_url}/stream/{cid}", additional_headers={"X-Auth-Token": token}) as ws:
        yield ws


async def receive(ws: ClientConnection, timeout_s: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        message = await ws.recv()
    assert isinstance(message, str), message
    decoded: dict[str, Any] = json.loads(message)
    return decoded


async def start(ws: ClientConnection, pid: int, **fields: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"control": "start", "pid": pid, **fields}))
    return await receive(ws)


async def ready_socket(ws: ClientConnection) -> None:
    assert await receive(ws) == {"status": "ready"}


def by_sequence(records: list[Consumed]) -> list[dict[str, Any]]:
    return sorted((r.record for r in records), key=lambda r: r["sequence"])


def payloads(events: list[Consumed]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.record["payload"][0].rsplit(".", 1)[-1], e.record["payload"][1]) for e in events]


async def test_raw_audio_flow_then_a_second_task_on_the_same_socket(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, agentId="a-9", ANI="+301")
    audio = pcm(8800, 2)  # 1.1 s of stereo at 8 kHz = 35200 bytes
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # records keep ms
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid, format="raw", channels=2) == {"status": "accepting"}
        for part in pieces(audio, (999, 1, 3001, 5)):
            await ws.send(part)
        await ws.send(json.dumps({"control": "end"}))
        assert await receive(ws) == {"status": "ready"}
        after = datetime.now(UTC)
        second = await create_job(gateway, channels=1)
        assert await start(ws, second) == {"status": "accepting"}
        await ws.send(pcm(400, 1) + b"\x01")
        await ws.send(json.dumps({"control": "end"}))
        assert await receive(ws) == {
            "status": "ready",
            "error": "1 trailing bytes did not form a whole sample frame and were not forwarded",
        }
    consumed = await gateway.read(gateway.topics.audio, 7)
    chunks = by_sequence([c for c in consumed if c.key == str(pid)])
    assert b"".join(c["payload"] for c in chunks) == audio
    expected = [(i, i * 1600, 6400) for i in range(5)] + [(5, 8000, 3200)]
    assert [(c["sequence"], c["start_sample"], len(c["payload"])) for c in chunks] == expected
    for chunk in chunks:
        assert {k: chunk[k] for k in ("call_id", "cid", "track", "role", "codec", "sample_rate", "channels")} == {
            "call_id": str(pid),
            "cid": 1,
            "track": "stereo",
            "role": "UNSPECIFIED",
            "codec": "L16_LE",
            "sample_rate": 8000,
            "channels": 2,
        }
        assert chunk["media_timestamp_ms"] is None
        assert before <= chunk["received_at"] <= after
    [mono] = [c.record for c in consumed if c.key == str(second)]
    assert (mono["track"], mono["channels"], mono["sequence"], mono["payload"]) == ("mixed", 1, 0, pcm(400, 1))
    events = await gateway.read(gateway.topics.events, 8)
    first = [e for e in events if e.key == str(pid)]
    assert [e.record["event_id"] for e in first] == [
        f"oliver:{pid}:CallStarted",
        f"oliver:{pid}:StreamStarted",
        f"oliver:{pid}:StreamStopped",
        f"oliver:{pid}:CallEnded",
    ]
    assert payloads(first) == [
        (
            "CallStarted",
            {
                "from_number": "+301",
                "to_number": None,
                "direction": "INBOUND",
                "participants": [{"role": "AGENT", "participant_id": "a-9"}],
                "answered": True,
            },
        ),
        ("StreamStarted", {"stream_id": str(pid), "codec": "L16_LE", "sample_rate": 8000, "channels": 2}),
        ("StreamStopped", {"stream_id": str(pid), "reason": ""}),
        ("CallEnded", {"reason": "end", "duration_ms": 1100}),
    ]
    assert {(e.record["source"], e.record["cid"], e.record["call_id"]) for e in first} == {("OLIVER", 1, str(pid))}
    assert json.loads(first[0].record["raw"]) == {"control": "start", "pid": pid, "format": "raw", "channels": 2}
    assert json.loads(first[2].record["raw"]) == {"control": "end"}


async def test_wav_on_the_socket_forwards_the_pcm_without_the_header(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, channels=1)
    data = wav_bytes(4000, 1, rate=16000)  # 0.25 s
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid, format="wav", channels=1) == {"status": "accepting"}
        for part in pieces(data, (7, 30, 1000)):
            await ws.send(part)
        await ws.send(json.dumps({"control": "end"}))
        assert await receive(ws) == {"status": "ready"}
    chunks = by_sequence(await gateway.read(gateway.topics.audio, 2))
    assert b"".join(c["payload"] for c in chunks) == data[44:]
    assert [(c["codec"], c["sample_rate"], c["start_sample"], c["track"]) for c in chunks] == [
        ("L16_LE", 16000, 0, "mixed"),
        ("L16_LE", 16000, 3200, "mixed"),
    ]
    events = await gateway.read(gateway.topics.events, 4)
    assert payloads(events)[1] == (
        "StreamStarted",
        {"stream_id": str(pid), "codec": "WAV", "sample_rate": 0, "channels": 1},
    )
    assert payloads(events)[3] == ("CallEnded", {"reason": "end", "duration_ms": 250})


async def test_mp3_on_the_socket_is_forwarded_byte_for_byte(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, channels=2)
    data = mp3_bytes(1.0, 2, 16000)
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid, format="mp3") == {"status": "accepting"}  # channels default to the job's
        for part in pieces(data, (500, 3)):
            await ws.send(part)
        await ws.send(json.dumps({"control": "end"}))
        assert await receive(ws) == {"status": "ready"}
    events = await gateway.read(gateway.topics.events, 4)
    duration_ms = payloads(events)[3][1]["duration_ms"]
    count = await gateway.size(gateway.topics.audio)
    chunks = by_sequence(await gateway.read(gateway.topics.audio, count))
    assert b"".join(c["payload"] for c in chunks) == data
    assert {(c["codec"], c["sample_rate"], c["channels"]) for c in chunks} == {("MP3", 16000, 2)}
    assert [c["sequence"] for c in chunks] == list(range(count))
    assert chunks[-1]["start_sample"] < 16000 < duration_ms * 16  # 1 s plus the encoder's delay and padding


async def test_faulty_start_parameters_keep_the_socket_ready(gateway: RunningGateway) -> None:
    other_tenant = await create_job(gateway, cid=2)
    mono = await create_job(gateway, channels=1)
    async with httpx.AsyncClient() as client:
        batch = await client.post(
            f"{gateway.url}/client/1/process/audio",
            params={"channels": "1", "calldirection": "1"},
            files={"file": ("a.wav", wav_bytes(800, 1))},
            headers={"X-Auth-Token": TOKEN},
        )
    batch_pid = batch.json()["pid"]
    unknown = gateway.ctx.ids.next_id()
    cases: list[tuple[str, str]] = [
        ('{"control":"start"}', "pid: Field required"),
        ('{"control":"start","pid":"x"}', "pid: Input should be a valid integer"),
        (
            json.dumps({"control": "start", "pid": mono, "format": "flac"}),
            "format: Input should be 'raw', 'wav' or 'mp3'",
        ),
        (json.dumps({"control": "start", "pid": mono, "channels": 2}), "channels 2 contradicts the job's channels 1"),
        *(
            (json.dumps({"control": "start", "pid": pid}), f"pid {pid} is not a streaming job of client 1")
            for pid in (unknown, 12345, other_tenant, batch_pid)  # never created, implausibly old, tenant 2's, batch
        ),
        ("start please", "control message is not JSON"),
        ('{"control":"pause"}', "unknown control message"),
        ('["start"]', "unknown control message"),
        ('{"control":"end"}', "no task is active to end"),
    ]
    async with socket(gateway) as ws:
        await ready_socket(ws)
        for text, detail in cases:
            await ws.send(text)
            reply = await receive(ws)
            assert (reply["status"], reply["error"]) == ("ready", FAULTY), (text, reply)
            assert detail in reply["detail"], (text, reply)
        assert await gateway.size(gateway.topics.events) == 0
        assert await start(ws, mono) == {"status": "accepting"}
        again = await start(ws, mono)
        assert (again["status"], again["error"]) == ("accepting", FAULTY)
        assert f"the task of pid {mono} is active" in again["detail"]
        await ws.send('{"control":"end"}')
        assert await receive(ws) == {"status": "ready"}
        replay = await start(ws, mono)
        assert replay["detail"] == f"pid {mono} was already streamed on this socket"
    assert await gateway.size(gateway.topics.events) == 4


@pytest.mark.parametrize("gateway_overrides", [{"max_frame_bytes": 1000}])
async def test_oversized_frame_closes_the_socket_after_flushing_accepted_audio(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, channels=1)
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid) == {"status": "accepting"}
        await ws.send(pcm(300, 1))
        await ws.send(bytes(1001))
        assert await receive(ws) == {"code": 413, "message": "a message of 1001 bytes exceeds the limit of 1000 bytes"}
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    [chunk] = await gateway.read(gateway.topics.audio, 1)
    assert chunk.record["payload"] == pcm(300, 1)
    events = await gateway.read(gateway.topics.events, 4)
    assert payloads(events)[2] == (
        "StreamStopped",
        {"stream_id": str(pid), "reason": "a message of 1001 bytes exceeds the limit of 1000 bytes"},
    )


@pytest.mark.parametrize("gateway_overrides", [{"max_messages_per_s": 0.01, "max_messages_burst": 3}])
async def test_rate_limit_closes_the_socket(gateway: RunningGateway) -> None:
    async with socket(gateway) as ws:
        await ready_socket(ws)
        for _ in range(3):
            await ws.send('{"control":"end"}')
            assert (await receive(ws))["detail"] == "no task is active to end"
        await ws.send('{"control":"end"}')
        assert await receive(ws) == {"code": 429, "message": "more than 0.01 messages/s (burst 3): rate limit exceeded"}
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize("gateway_overrides", [{"oliver_idle_timeout_s": 0.5}])
async def test_no_audio_for_the_idle_timeout_ends_the_task(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, channels=1)
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid) == {"status": "accepting"}
        await ws.send(pcm(100, 1))
        assert await receive(ws) == {"status": "ready", "error": f"no audio for 0.5 s: the task of pid {pid} ended"}
        await ws.send(pcm(100, 1))
        assert await receive(ws) == {"status": "ready", "error": "audio received while no task is active is ignored"}
        await ws.send(pcm(100, 1))  # noticed once per idle period
        await ws.send('{"control":"end"}')
        assert (await receive(ws))["detail"] == "no task is active to end"
    [chunk] = await gateway.read(gateway.topics.audio, 1)
    assert chunk.record["payload"] == pcm(100, 1)
    events = await gateway.read(gateway.topics.events, 4)
    assert payloads(events)[2:] == [
        ("StreamStopped", {"stream_id": str(pid), "reason": "no audio for 0.5 s"}),
        ("CallEnded", {"reason": "no audio for 0.5 s", "duration_ms": 12}),
    ]
    assert await gateway.size(gateway.topics.audio) == 1


async def test_audio_that_does_not_match_its_format_ends_the_task(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, channels=1)
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid, format="wav") == {"status": "accepting"}
        await ws.send(wav_bytes(100, 2))
        assert await receive(ws) == {"status": "ready", "error": "WAV header gives 2 channels; the task announced 1"}
    events = await gateway.read(gateway.topics.events, 4)
    assert payloads(events)[2] == (
        "StreamStopped",
        {"stream_id": str(pid), "reason": "WAV header gives 2 channels; the task announced 1"},
    )
    assert await gateway.size(gateway.topics.audio) == 0


async def test_client_disconnect_flushes_the_audio_received(gateway: RunningGateway) -> None:
    pid = await create_job(gateway, channels=1)
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid) == {"status": "accepting"}
        await ws.send(pcm(123, 1))
    [chunk] = await gateway.read(gateway.topics.audio, 1)
    assert (chunk.record["payload"], chunk.record["start_sample"]) == (pcm(123, 1), 0)
    events = await gateway.read(gateway.topics.events, 4)
    assert payloads(events)[2] == ("StreamStopped", {"stream_id": str(pid), "reason": "client disconnected"})


def segment(pid: int, start: int) -> dict[str, Any]:
    return {
        "segment_id": f"{pid}-seg-{start}",
        "call_id": str(pid),
        "cid": 1,
        "track": "stereo",
        "role": "UNSPECIFIED",
        "kind": "SPEECH",
        "start_sample": start,
        "end_sample": start + 24000,
        "sample_rate": 8000,
        "rms_dbfs": -18.0,
        "peak_dbfs": -2.5,
        "speech_probability": 0.8,
        "detector": "webrtcvad:2",
    }


def alert(pid: int) -> dict[str, Any]:
    return {
        "alert_id": f"{pid}-anger-18000",
        "rule_id": "customer_anger",
        "call_id": str(pid),
        "cid": 1,
        "severity": "WARNING",
        "start_ms": 18000,
        "end_ms": 21000,
        "detected_at": datetime(2025, 3, 1, 10, 0, 21, tzinfo=UTC),
        "details": {},
    }


def transition(pid: int, before: int, after: int, reason: str) -> dict[str, Any]:
    return {"job_id": pid, "cid": 1, "from_status": before, "to_status": after, "at": 0, "reason": reason}


async def test_results_are_pushed_as_they_arrive_and_end_with_is_final(gateway: RunningGateway) -> None:
    tasks = '[{"name":"alerts","options":{"activate":true}}]'
    pid = await create_job(gateway, tasks=tasks)
    alerts_only = await create_job(gateway, tasks='[{"name":"stream","options":{"activate":false}}]' + "")
    sink, topics = gateway.ctx.sink, gateway.topics
    async with socket(gateway) as ws:
        await ready_socket(ws)
        assert await start(ws, pid) == {"status": "accepting"}
        await ws.send(pcm(800, 2))
        await ws.send('{"control":"end"}')
        assert await receive(ws) == {"status": "ready"}
        await sink.send(topics.speech, str(pid), SPEECH_SEGMENT, segment(pid, 8000))
        first = await receive(ws)
        assert first == {
            "id": f"{pid}-0",
            "pid": pid,
            "st": 1.0,
            "et": 4.0,
            "is_final": False,
            "stream": {
                "segment_id": f"{pid}-seg-8000",
                "track": "stereo",
                "role": "UNSPECIFIED",
                "kind": "SPEECH",
                "start_sample": 8000,
                "end_sample": 32000,
                "sample_rate": 8000,
                "rms_dbfs": -18.0,
                "peak_dbfs": -2.5,
                "speech_probability": 0.8,
                "detector": "webrtcvad:2",
            },
        }
        assert await start(ws, alerts_only) == {"status": "accepting"}  # a second job while results still flow
        await sink.send(topics.speech, str(alerts_only), SPEECH_SEGMENT, segment(alerts_only, 0))  # not asked for
        await sink.send(topics.speech, "999", SPEECH_SEGMENT, segment(999, 0))  # another call
        await sink.send(topics.alerts, str(pid), ALERT, alert(pid))
        second = await receive(ws)
        assert (second["id"], second["st"], second["et"], second["is_final"]) == (f"{pid}-1", 18.0, 21.0, False)
        assert second["alerts"] == [
            {
                "id": f"{pid}-anger-18000",
                "type": "customer_anger",
                "severity": "WARNING",
                "st": 18.0,
                "et": 21.0,
                "detected_at": "2025-03-01T10:00:21.000Z",
                "details": {},
            }
        ]
        await sink.send(topics.transitions, str(pid), JOB_TRANSITION, transition(pid, 0, 1, "processing"))
        await sink.send(topics.transitions, str(pid), JOB_TRANSITION, transition(pid, 1, 2, "stream ended"))
        final = await receive(ws)
        assert final == {
            "id": f"{pid}-2",
            "pid": pid,
            "st": 0.0,
            "et": 21.0,
            "is_final": True,
            "status": 2,
            "statusmsg": "completed",
            "reason": "stream ended",
        }
        await sink.send(topics.transitions, str(alerts_only), JOB_TRANSITION, transition(alerts_only, 0, -2, "stop"))
        aborted = await receive(ws)
        assert (aborted["id"], aborted["is_final"], aborted["status"], aborted["statusmsg"]) == (
            f"{alerts_only}-0",
            True,
            -2,
            "aborted",
        )
        await sink.send(topics.speech, str(pid), SPEECH_SEGMENT, segment(pid, 40000))  # after is_final: not sent
        await ws.send('{"control":"end"}')
        assert await receive(ws) == {"status": "ready"}


@pytest.mark.parametrize("gateway_overrides", [{"oliver_max_streams": 1, "oliver_loaded_delay_s": 7}])
async def test_a_full_gateway_says_loaded_then_ready_when_a_slot_frees(gateway: RunningGateway) -> None:
    async with socket(gateway) as first:
        await ready_socket(first)
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{gateway.url}/client/1/process/stream",
                params={"channels": "2", "calldirection": "1"},
                headers={"X-Auth-Token": TOKEN},
            )
        assert response.json()["delay"] == 7
        async with socket(gateway) as second:
            assert await receive(second) == {"status": "loaded", "delay": "7"}
            await first.close()
            assert await receive(second) == {"status": "ready"}


async def test_socket_authentication_is_refused_in_olivers_shape(gateway: RunningGateway) -> None:
    for cid, headers, status, message in [
        (1, {}, 401, "X-Auth-Token is missing"),
        (1, {"X-Auth-Token": "nope"}, 401, "X-Auth-Token is not a valid key"),
        (1, {"X-Auth-Token": "key-tenant-2"}, 403, "X-Auth-Token is not the key of client 1"),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{gateway.ws_url}/stream/{cid}", additional_headers=headers):
                pass
        response = refused.value.response
        assert (response.status_code, json.loads(response.body or b"")) == (
            status,
            {"code": status, "message": message},
        )
    async with connect(f"{gateway.ws_url}/stream/2?X-Auth-Token=key-tenant-2") as ws:
        await ready_socket(ws)


async def test_a_job_created_on_another_gateway_is_found_in_kafka(settings: Settings) -> None:
    async with running_gateway(settings) as creator:
        pid = await create_job(creator, channels=1)
    async with running_gateway(settings) as streamer:  # its feed starts after the job was created
        assert streamer.ctx.topics == creator.ctx.topics
        async with socket(streamer) as ws:
            await ready_socket(ws)
            assert await start(ws, pid) == {"status": "accepting"}
            await ws.send('{"control":"end"}')
            assert await receive(ws) == {"status": "ready"}
        assert await streamer.size(streamer.topics.events) == 4
