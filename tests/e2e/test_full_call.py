"""A complete call and an uploaded-file job through every real process, read back through the API (issue 5).

The call arrives as a contact centre would send it: mediaservice callbacks for its life cycle
(newCall, callAnswered, callEvent drop, sessionCompleted) and the Telnyx media WebSocket with both
tracks (PCMU, 20 ms packets) under the same call id. The gateway runs in-process; the worker and the
projector (which serves the read API) are `switchboard` subprocesses against the real broker and
embedded ClickHouse. The API's session, segments, metrics, alerts and Oliver result are checked
against the scripted conversation.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from infra.broker import free_port
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from processors.audio.g711 import ulaw_encode
from tests.e2e.test_walking_skeleton import Processes
from tests.harness import running_gateway
from tests.speech import RATE, Conversation, Utterance, build
from tests.unit.producers.test_mediaservice_samples import CALL_ANSWERED, CALL_EVENT, NEW_CALL, SESSION_COMPLETED

SESSION = "e2e-call-0001"
DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"
BEARER = {"Authorization": "Bearer key-tenant-1"}
SCRIPT = [
    Utterance("AGENT", 0.5, "Thank you for calling, my name is Anna, how can I help"),
    Utterance("CUSTOMER", 4.0, "Hi, my internet connection keeps dropping every evening"),
    # nobody speaks from about 7 s to 19 s: dead air under the default rules (10 s)
    Utterance("AGENT", 19.0, "I have reset your line, please try again tonight"),
    Utterance("CUSTOMER", 22.5, "Great, thank you very much"),
]


def policy_from_docs() -> dict[str, Any]:
    text = (Path(__file__).parents[2] / "docs" / "mediaservice-policy.md").read_text()
    block = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert block is not None
    return {**json.loads(block.group(1)), "cid": 1}


def stereo_wav(conv: Conversation) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(conv.stereo().astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture
def backend(settings: Settings, tmp_path: Path) -> Iterator[tuple[Processes, str]]:
    asyncio.run(
        ensure_topics(
            str(settings.kafka_bootstrap), Topics.from_settings(settings).specs(), partitions=3, replication=1
        )
    )
    settings.policies_path.mkdir(parents=True, exist_ok=True)
    (settings.policies_path / f"{DOMAIN}.json").write_text(json.dumps(policy_from_docs()))
    api_port = free_port()
    procs = Processes(settings, api_port, tmp_path)
    try:
        yield procs, f"http://127.0.0.1:{api_port}"
    finally:
        procs.stop()


async def callback(client: httpx.AsyncClient, url: str, name: str, sample: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{url}/mediaservice/{DOMAIN}/{name}", json={**json.loads(sample), **fields})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def telnyx_media(ws_url: str, conv: Conversation) -> None:
    frames = [json.dumps({"event": "connected", "version": "1.0.0"})]
    start = {
        "call_control_id": SESSION,
        "call_session_id": "s-1",
        "from": "+4930111",
        "to": "+4685012345",
        "client_state": "aGF2ZQ==",
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
    }
    frames.append(json.dumps({"event": "start", "sequence_number": "1", "stream_id": "st-1", "start": start}))
    seq = 2
    for chunk, offset in enumerate(range(0, conv.agent.size, 160)):
        for track, samples in (("inbound", conv.customer), ("outbound", conv.agent)):
            payload = base64.b64encode(ulaw_encode(samples[offset : offset + 160])).decode()
            media = {"track": track, "chunk": str(chunk + 1), "timestamp": str(offset // 8), "payload": payload}
            frames.append(
                json.dumps({"event": "media", "sequence_number": str(seq), "stream_id": "st-1", "media": media})
            )
            seq += 1
    frames.append(json.dumps({"event": "stop", "sequence_number": str(seq), "stream_id": "st-1",
                              "stop": {"call_control_id": SESSION}}))  # fmt: skip
    async with connect(f"{ws_url}/telnyx/media/1?token=key-tenant-1", max_size=None) as ws:
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()
        assert ws.close_code == 1000, f"media socket closed with {ws.close_code}: {ws.close_reason}"


def poll(url: str, procs: Processes, until: Any, headers: dict[str, str] | None = None, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            response = httpx.get(url, headers=headers or BEARER, timeout=10)
            last = (response.status_code, response.text)
            if response.status_code == 200 and until(response.json()):
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(
        f"{url} never got there; last {last}\nworker:\n{procs.tail('worker')}\nprojector:\n{procs.tail('projector')}"
    )


def test_a_complete_call_and_an_uploaded_job_read_back_through_the_api(
    settings: Settings, backend: tuple[Processes, str]
) -> None:
    procs, api = backend
    call = build(SCRIPT, seconds=26.0, seed=11)
    upload = build(SCRIPT[:2], seconds=9.0, seed=12)

    async def drive() -> int:
        # the media is sent as fast as possible, not paced: lift the per-connection rate limit
        fast = {"max_messages_per_s": 100_000.0, "max_messages_burst": 100_000}
        async with running_gateway(settings, **fast) as gw, httpx.AsyncClient(timeout=30) as client:
            answer = await callback(client, gw.url, "newCall", NEW_CALL, sessionId=SESSION,
                                    calledParty="+4685012345", callingParty="+4930111")  # fmt: skip
            assert answer["action"] == "call" and answer["destAddr"].startswith("sip:sales@")
            await callback(
                client, gw.url, "callAnswered", CALL_ANSWERED, sessionReferenceId=answer["sessionReferenceId"]
            )
            await telnyx_media(gw.ws_url, call)
            await callback(client, gw.url, "callEvent", CALL_EVENT, sessionId=SESSION)
            await callback(client, gw.url, "sessionCompleted", SESSION_COMPLETED, sessionId=SESSION, sessionDuration=26)
            job = await client.post(
                f"{gw.url}/client/1/process/audio",
                params={"channels": 2, "calldirection": 1, "agentId": "anna"},
                headers={"X-Auth-Token": "key-tenant-1"},
                files={"file": ("upload.wav", stereo_wav(upload), "audio/wav")},
            )
            assert job.status_code == 200, job.text
            pid: int = job.json()["pid"]
            return pid

    pid = asyncio.run(drive())

    metrics = poll(
        f"{api}/v1/clients/1/calls/{SESSION}/metrics", procs, lambda m: (m.get("metrics") or {}).get("final")
    )
    session = poll(f"{api}/v1/clients/1/calls/{SESSION}", procs, lambda s: s["state"] == "ENDED")
    assert session["direction"] == "INBOUND"
    assert session["from_number"] == "+4930111" and session["to_number"] == "+4685012345"
    assert set(session["sources"]) == {"MEDIASERVICE", "TELNYX"}
    truth_ms = {r: sum(e - s for s, e in call.truth[r]) / 8 for r in ("AGENT", "CUSTOMER")}
    m = metrics["metrics"]
    assert m["watermark_ms"] == 26_000
    assert m["talk_agent_ms"] == pytest.approx(truth_ms["AGENT"], abs=700)
    assert m["talk_customer_ms"] == pytest.approx(truth_ms["CUSTOMER"], abs=700)
    assert m["silence_ms"] > 10_000
    assert session["talk_agent_ms"] == m["talk_agent_ms"]

    segments = poll(
        f"{api}/v1/clients/1/calls/{SESSION}/segments?kind=SPEECH", procs, lambda r: len(r["segments"]) >= 4
    )
    assert {s["role"] for s in segments["segments"]} == {"AGENT", "CUSTOMER"}

    alerts = poll(f"{api}/v1/clients/1/alerts?call_id={SESSION}", procs, lambda r: len(r.get("alerts", r)) >= 1)
    listed = alerts["alerts"] if isinstance(alerts, dict) else alerts
    dead_air = [a for a in listed if a["rule_kind"] == "dead_air"]
    assert len(dead_air) == 1 and dead_air[0]["status"] == "CLEARED"
    assert 6_500 < dead_air[0]["start_ms"] < 7_600 and 18_500 < dead_air[0]["end_ms"] < 19_600

    oliver = {"X-Auth-Token": "key-tenant-1"}
    result = poll(f"{api}/client/1/process/{pid}/result", procs, lambda r: "basic" in r, headers=oliver)
    assert result["basic"]["totalduration"] == 9.0
    process = httpx.get(f"{api}/client/1/process/{pid}", headers=oliver).json()
    assert (process["pid"], process["status"], process["agentId"]) == (pid, 2, "anna")

    other = httpx.get(f"{api}/v1/clients/2/calls/{SESSION}", headers=BEARER)
    assert other.status_code == 403
