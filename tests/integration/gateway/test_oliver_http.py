"""Oliver job creation over real HTTP against the real broker: batch uploads, streaming jobs, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.harness import RunningGateway, running_gateway
from tests.unit.producers.test_oliver_framing import mp3_bytes, wav_bytes
from tests.unit.producers.test_oliver_models import SEED_QUERY, SEED_TASKS

TOKEN = {"X-Auth-Token": "key-tenant-1"}
BASIC = {"channels": "2", "calldirection": "1"}


@pytest.fixture
def gateway_overrides() -> dict[str, Any]:
    """Settings changed for one test (parametrize it)."""
    return {}


@pytest.fixture
async def gateway(settings: Settings, gateway_overrides: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    async with running_gateway(settings, **gateway_overrides) as gw:
        yield gw


async def post_audio(
    gw: RunningGateway,
    content: bytes,
    params: dict[str, str] | None = None,
    *,
    filename: str = "call.wav",
    headers: dict[str, str] | None = None,
    cid: int | str = 1,
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{gw.url}/client/{cid}/process/audio",
            params=BASIC if params is None else params,
            files={"file": (filename, content, "application/octet-stream")},
            headers=TOKEN if headers is None else headers,
        )


async def post_stream(
    gw: RunningGateway, params: Any = None, *, headers: dict[str, str] | None = None, cid: int | str = 1
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{gw.url}/client/{cid}/process/stream",
            params=BASIC if params is None else params,
            headers=TOKEN if headers is None else headers,
        )


def blobs(settings: Settings) -> list[str]:
    root = settings.blobs_path
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def inserted_at(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["datetime"].replace("Z", "+00:00"))


def oliver_error(response: httpx.Response, status: int, fragment: str) -> None:
    body = response.json()
    assert response.status_code == status, body
    assert set(body) == {"code", "message"} and body["code"] == status
    assert fragment in body["message"]


async def test_wav_upload_creates_a_pending_batch_job(gateway: RunningGateway, settings: Settings) -> None:
    content = wav_bytes(24000, 2)  # 3 s of stereo at 8 kHz
    response = await post_audio(gateway, content, {**BASIC, "agentId": "a-9", "name": "call-77"})
    assert response.status_code == 200, response.text
    body = response.json()
    pid = body["pid"]
    path = settings.blobs_path / "1" / f"{pid}.wav"
    assert body == {
        "pid": pid,
        "id": pid,
        "cid": 1,
        "name": "call-77",
        "status": 0,
        "statusmsg": "pending",
        "duration": 3.0,
        "datetime": body["datetime"],
        "uri": path.resolve().as_uri(),
        "channels": 2,
        "calldirection": 1,
        "agentId": "a-9",
        "mode": "batch",
    }
    assert path.read_bytes() == content
    assert blobs(settings) == [f"1/{pid}.wav"]
    [record] = await gateway.read(gateway.topics.transitions, 1)
    assert (record.key, record.name) == (str(pid), "io.switchboard.jobs.JobTransition")
    assert record.record == {
        "job_id": pid,
        "cid": 1,
        "from_status": None,
        "to_status": 0,
        "at": inserted_at(body),
        "reason": "pending",
        "metadata": {
            "channels": "2",
            "calldirection": "1",
            "agentId": "a-9",
            "name": "call-77",
            "uri": path.resolve().as_uri(),
            "duration": "3.0",
            "sample_rate": "8000",
            "format": "wav",
            "codec": "pcm_s16le",
            "filename": "call.wav",
            "mode": "batch",
        },
        "results": None,
    }


async def test_mp3_upload_with_the_seed_parameters(gateway: RunningGateway, settings: Settings) -> None:
    content = mp3_bytes(2.0, 1, 16000)
    params = {**dict(SEED_QUERY), "channels": "1"}
    response = await post_audio(gateway, content, params, filename="rec.mp3")
    assert response.status_code == 200, response.text
    body = response.json()
    pid = body["pid"]
    assert (body["duration"], body["channels"], body["calltime"], body["ANI"]) == (
        2.0,
        1,
        "2025-03-01T10:00:00+00:00",
        "+302101234567",
    )
    assert blobs(settings) == [f"1/{pid}.mp3"]
    [record] = await gateway.read(gateway.topics.transitions, 1)
    metadata = record.record["metadata"]
    assert {k: metadata[k] for k in ("duration", "sample_rate", "channels", "format", "mode", "timezone")} == {
        "duration": "2.0",
        "sample_rate": "16000",
        "channels": "1",
        "format": "mp3",
        "mode": "batch",
        "timezone": "2",
    }


async def test_refused_uploads_write_nothing_and_leave_no_blob(gateway: RunningGateway, settings: Settings) -> None:
    accepted = await post_audio(gateway, wav_bytes(8000, 2))
    assert accepted.status_code == 200
    kept = blobs(settings)
    stereo = wav_bytes(8000, 2)
    oliver_error(await post_audio(gateway, stereo, {**BASIC, "channels": "1"}), 400, "has 2 channel(s) but channels=1")
    oliver_error(await post_audio(gateway, b"just some text, no audio\n" * 50), 415, "audio")
    oliver_error(await post_audio(gateway, bytes(range(256)) * 64), 415, "not decodable audio")
    oliver_error(await post_audio(gateway, b""), 400, "the uploaded file is empty")
    oliver_error(await post_audio(gateway, stereo, {"channels": "2"}), 400, "calldirection: Field required")
    oliver_error(await post_audio(gateway, stereo, {**BASIC, "channels": "5"}), 400, "must be 1 or 2, got 5")
    oliver_error(await post_audio(gateway, stereo, {**BASIC, "timezone": "x"}), 400, "timezone: Input should be")
    oliver_error(await post_audio(gateway, stereo, cid="abc"), 400, "cid must be a long, got 'abc'")
    async with httpx.AsyncClient() as client:
        url = f"{gateway.url}/client/1/process/audio"
        not_multipart = await client.post(url, params=BASIC, headers=TOKEN, content=stereo)
        oliver_error(not_multipart, 400, "must be sent as multipart/form-data")
        wrong_part = await client.post(url, params=BASIC, headers=TOKEN, files={"audio": ("a.wav", stereo)})
        oliver_error(wrong_part, 400, "multipart part 'file' is missing")
        twice = await client.post(url, params=BASIC, headers=TOKEN, files=[("file", stereo), ("file", stereo)])
        oliver_error(twice, 400, "part 'file' is given more than once")
        truncated = b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.wav\r\n\r\n" + stereo
        cut = await client.post(
            url, params=BASIC, headers={**TOKEN, "content-type": "multipart/form-data; boundary=xyz"}, content=truncated
        )
        oliver_error(cut, 400, "ended before its closing boundary")
    assert await gateway.size(gateway.topics.transitions) == 1
    assert blobs(settings) == kept


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 700):
        yield body[start : start + 700]


@pytest.mark.parametrize("gateway_overrides", [{"max_upload_bytes": 4000}])
async def test_oversize_uploads_are_refused_while_streaming(gateway: RunningGateway, settings: Settings) -> None:
    fits = wav_bytes(1900, 1)  # 3844 bytes
    assert (await post_audio(gateway, fits, {**BASIC, "channels": "1"})).status_code == 200
    kept = blobs(settings)
    big = wav_bytes(4000, 1)  # 8044 bytes, within the envelope allowance: refused by counting, not by header
    oliver_error(await post_audio(gateway, big, {**BASIC, "channels": "1"}), 413, "exceeds the upload limit of 4000")
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    async with httpx.AsyncClient() as client:
        chunked = await client.post(
            f"{gateway.url}/client/1/process/audio",
            params={**BASIC, "channels": "1"},
            headers={**TOKEN, "content-type": f"multipart/form-data; boundary={boundary}"},
            content=_chunked(body),
        )
    oliver_error(chunked, 413, "exceeds the upload limit of 4000 bytes")
    huge = wav_bytes(40_000, 1)  # 80 kB: refused from Content-Length before reading
    oliver_error(await post_audio(gateway, huge, {**BASIC, "channels": "1"}), 413, "exceeds the upload limit")
    assert await gateway.size(gateway.topics.transitions) == 1
    assert blobs(settings) == kept


async def test_seed_streaming_job_with_tasks(gateway: RunningGateway) -> None:
    response = await post_stream(gateway, [*SEED_QUERY, ("tasks", SEED_TASKS)])
    assert response.status_code == 200, response.text
    body = response.json()
    pid = body["pid"]
    tasks = [{"name": "stream", "options": {"activate": False}}, {"name": "alerts", "options": {"activate": True}}]
    host = gateway.url.removeprefix("http://")
    assert body == {
        "pid": pid,
        "id": pid,
        "cid": 1,
        "name": "call-77",
        "status": 0,
        "statusmsg": "pending",
        "duration": 0.0,
        "datetime": body["datetime"],
        "uri": "",
        "channels": 2,
        "calldirection": 1,
        "agentId": "a-9",
        "agentTeam": "team-blue",
        "customerId": "c-77",
        "customerInd": "telecom",
        "campaignId": "spring",
        "ANI": "+302101234567",
        "calltype": "LA",
        "calltime": "2025-03-01T10:00:00+00:00",
        "timezone": 2,
        "tasks": tasks,
        "mode": "stream",
        "stream_url": f"ws://{host}/stream/1",
        "delay": 0,
    }
    [record] = await gateway.read(gateway.topics.transitions, 1)
    assert record.key == str(pid)
    assert record.record == {
        "job_id": pid,
        "cid": 1,
        "from_status": None,
        "to_status": 0,
        "at": inserted_at(body),
        "reason": "pending",
        "metadata": {
            "channels": "2",
            "calldirection": "1",
            "agentId": "a-9",
            "agentTeam": "team-blue",
            "customerId": "c-77",
            "customerInd": "telecom",
            "campaignId": "spring",
            "name": "call-77",
            "ANI": "+302101234567",
            "calltype": "LA",
            "calltime": "2025-03-01T10:00:00+00:00",
            "timezone": "2",
            "tasks": '[{"name":"stream","options":{"activate":false}},{"name":"alerts","options":{"activate":true}}]',
            "mode": "stream",
        },
        "results": None,
    }


async def test_streaming_job_defaults_and_bad_tasks(gateway: RunningGateway) -> None:
    oliver_error(await post_stream(gateway, {**BASIC, "tasks": "[{"}), 400, "tasks is not valid JSON")
    unknown = '[{"name":"asr","options":{"activate":true}}]'
    oliver_error(await post_stream(gateway, {**BASIC, "tasks": unknown}), 400, "Input should be 'stream' or 'alerts'")
    oliver_error(await post_stream(gateway, {**BASIC, "tasks": '"stream"'}), 400, "tasks must be a JSON array")
    assert await gateway.size(gateway.topics.transitions) == 0
    response = await post_stream(gateway, {"channels": "1", "calldirection": "outgoing"})
    assert response.status_code == 200
    [record] = await gateway.read(gateway.topics.transitions, 1)
    assert record.record["metadata"] == {
        "channels": "1",
        "calldirection": "2",
        "tasks": '[{"name":"stream","options":{"activate":true}},{"name":"alerts","options":{"activate":false}}]',
        "mode": "stream",
    }


async def test_authentication(gateway: RunningGateway) -> None:
    stereo = wav_bytes(800, 2)
    oliver_error(await post_audio(gateway, stereo, headers={}), 401, "X-Auth-Token is missing")
    oliver_error(await post_stream(gateway, headers={}), 401, "X-Auth-Token is missing")
    oliver_error(await post_stream(gateway, headers={"X-Auth-Token": "guess"}), 401, "not a valid key")
    other = {"X-Auth-Token": "key-tenant-2"}
    oliver_error(await post_audio(gateway, stereo, headers=other), 403, "not the key of client 1")
    oliver_error(await post_stream(gateway, headers=other), 403, "not the key of client 1")
    oliver_error(await post_stream(gateway, headers=TOKEN, cid=2), 403, "not the key of client 2")
    assert await gateway.size(gateway.topics.transitions) == 0
    by_query = await post_stream(gateway, {**BASIC, "X-Auth-Token": "key-tenant-2"}, headers={}, cid=2)
    assert by_query.status_code == 200
    [record] = await gateway.read(gateway.topics.transitions, 1)
    assert record.record["cid"] == 2
    assert "X-Auth-Token" not in record.record["metadata"]
