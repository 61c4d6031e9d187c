"""The Telnyx media WebSocket through the served gateway, a real WebSocket client and the real broker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from infra.settings import Settings
from processors.audio.g711 import ulaw_encode
from producers.telnyx.translate import event_id
from tests.factories import tone
from tests.harness import Consumed, RunningGateway, running_gateway

NOW_MS = 1_740_823_200_000
NOW = datetime.fromtimestamp(NOW_MS / 1000, UTC)
STREAM = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
SESSION = "ff55a038-1111-4d0b-8f8e-6a7c1e2d3b4c"


def pcmu(count: int, amplitude: float) -> list[bytes]:
    """``count`` 20 ms PCMU packets (160 bytes) of a continuous 1 kHz tone."""
    return [ulaw_encode(tone(amplitude, 160, start=160 * i)) for i in range(count)]


def frame(event: str, seq: int | None, **body: Any) -> str:
    out: dict[str, Any] = {"event": event}
    if seq is not None:
        out |= {"sequence_number": str(seq), "stream_id": STREAM}
    return json.dumps(out | body)


def start(call: str, seq: int = 1, encoding: str = "PCMU", rate: int = 8000, **extra: Any) -> str:
    """The PROTOCOLS.md §3.3 start frame for ``call``."""
    return frame(
        "start",
        seq,
        start={
            "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
            "call_control_id": call,
            "call_session_id": SESSION,
            "from": "+13122010094",
            "to": "+13122123456",
            "tags": ["TAG1"],
            "client_state": "aGF2ZQ==",
            "custom_parameters": extra.pop("custom_parameters", {"customer_id": "c-1"}),
            "media_format": {"encoding": encoding, "sample_rate": rate, "channels": 1},
        },
    )


def media(seq: int, track: str, chunk: int, payload: bytes, timestamp: int | None = None) -> str:
    stamp = 20 * (chunk - 1) if timestamp is None else timestamp
    body = {"track": track, "chunk": str(chunk), "timestamp": str(stamp), "payload": base64.b64encode(payload).decode()}
    return frame("media", seq, media=body)


CONNECTED = json.dumps({"event": "connected", "version": "1.0.0"})
CALL_STARTED = {
    "from_number": "+13122010094",
    "to_number": "+13122123456",
    "direction": "UNSPECIFIED",
    "participants": [],
    "answered": True,
}


def stop(call: str, seq: int) -> str:
    return frame("stop", seq, stop={"user_id": "3E6F995F-85F7-4705-9741-53B116D28237", "call_control_id": call})


@asynccontextmanager
async def socket(
    gw: RunningGateway, cid: str = "1", token: str | None = "key-tenant-1", **headers: str
) -> AsyncIterator[ClientConnection]:
    query = f"?token={token}" if token is not None else ""
    async with connect(f"{gw.ws_url}/telnyx/media/{cid}{query}", additional_headers=headers, proxy=None) as ws:
        yield ws


async def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    async with asyncio.timeout(15):
        await ws.wait_closed()
    return ws.close_code, ws.close_reason


async def send_all(ws: ClientConnection, frames: list[str]) -> None:
    for text in frames:
        await ws.send(text)


async def command(gw: RunningGateway, call: str, body: dict[str, Any], key: str = "key-tenant-1") -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gw.url}/v2/calls/{call}/actions/streaming_start", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text


def kinds(events: list[Consumed]) -> list[tuple[str, dict[str, Any]]]:
    return [(r.record["payload"][0].rsplit(".", 1)[1], r.record["payload"][1]) for r in events]


def chunk(call: str, track: str, role: str, seq: int, start_sample: int, ts: int, payload: bytes) -> dict[str, Any]:
    return {
        "call_id": call,
        "cid": 1,
        "track": track,
        "role": role,
        "codec": "PCMU",
        "sample_rate": 8000,
        "channels": 1,
        "sequence": seq,
        "start_sample": start_sample,
        "media_timestamp_ms": ts,
        "received_at": NOW,
        "payload": payload,
    }


async def test_shuffled_duplicated_both_tracks_become_exact_chunks_and_events(settings: Settings) -> None:
    call = "v3:T02l-both"
    inbound, outbound = pcmu(12, 8000.0), pcmu(12, 2000.0)
    shuffled = [2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]
    frames = [CONNECTED, start(call)]
    seq = 2
    for n in shuffled:
        for track, packets in (("inbound", inbound), ("outbound", outbound)):
            frames.append(media(seq, track, n, packets[n - 1]))
            seq += 1
    frames.insert(9, media(99, "inbound", 3, inbound[2]))  # an exact duplicate
    frames += [
        frame("dtmf", 60, dtmf={"digit": "1"}),
        frame("mark", 61, mark={"name": "greeting-done"}),
        # assumption: the error frame layout (object under "payload") is inferred [I]
        frame("error", 62, payload={"code": 100002, "title": "Malformed frame", "detail": "bad media"}),
        stop(call, 63),
    ]
    async with running_gateway(settings) as gw:
        gw.ctx.clock_ms = lambda: NOW_MS
        await command(gw, call, {"stream_url": f"{gw.ws_url}/telnyx/media/1", "stream_track": "both_tracks"})
        async with socket(gw) as ws:
            await send_all(ws, frames)
            assert await closed(ws) == (1000, "stream stopped")
        audio = await gw.read(gw.topics.audio, 4)
        events = await gw.read(gw.topics.events, 7)
        assert (await gw.size(gw.topics.audio), await gw.size(gw.topics.events)) == (4, 7)
    got = sorted((r.record for r in audio), key=lambda r: (r["track"], r["sequence"]))
    assert {r.key for r in audio + events} == {call}
    assert got == [
        chunk(call, "inbound", "CUSTOMER", 0, 0, 0, b"".join(inbound[:10])),
        chunk(call, "inbound", "CUSTOMER", 1, 1600, 200, b"".join(inbound[10:])),
        chunk(call, "outbound", "AGENT", 0, 0, 0, b"".join(outbound[:10])),
        chunk(call, "outbound", "AGENT", 1, 1600, 200, b"".join(outbound[10:])),
    ]
    assert kinds(events) == [
        ("VendorEvent", {"name": "streaming_start"}),
        ("StreamStarted", {"stream_id": STREAM, "codec": "PCMU", "sample_rate": 8000, "channels": 1}),
        ("CallStarted", CALL_STARTED),
        ("Dtmf", {"digits": "1", "track": ""}),
        ("VendorEvent", {"name": "mark"}),
        ("PlatformAlarm", {"alarm_type": "stream_error", "error": "100002 Malformed frame: bad media"}),
        ("StreamStopped", {"stream_id": STREAM, "reason": ""}),
    ]
    started, stopped = events[1].record, events[-1].record
    assert started["event_id"] == event_id("stream", call, STREAM, "start")
    assert started["raw"] == frames[1] and started["received_at"] == NOW
    assert started["attributes"]["custom_parameters"] == '{"customer_id":"c-1"}'
    assert events[3].record["event_id"] == event_id("stream", call, STREAM, "dtmf/60")
    assert stopped["attributes"] == {
        "stream_id": STREAM,
        "call_session_id": SESSION,
        "client_state": "aGF2ZQ==",
        "duplicates": "1",
        "conflicts": "0",
        "late": "0",
        "filtered": "0",
    }


async def test_g722_is_16_khz_and_a_timestamp_gap_starts_a_new_chunk_at_its_position(settings: Settings) -> None:
    call = "v3:g722"  # no streaming_start seen by this instance: every arriving track is kept
    packets = [bytes([n]) * 160 for n in range(1, 6)]  # 160 bytes of G.722 = 20 ms = 320 samples at 16 kHz
    stamps = [0, 20, 40, 100, 120]  # 60-100 ms lost; assumption: media.timestamp is ms since stream start [I]
    frames = [CONNECTED, start(call, encoding="G722", rate=8000)]
    frames += [media(2 + i, "outbound", i + 1, p, stamps[i]) for i, p in enumerate(packets)]
    async with running_gateway(settings) as gw:
        gw.ctx.clock_ms = lambda: NOW_MS
        async with socket(gw) as ws:
            await send_all(ws, [*frames, stop(call, 9)])
            assert await closed(ws) == (1000, "stream stopped")
        audio = await gw.read(gw.topics.audio, 2)
        events = await gw.read(gw.topics.events, 3)
    got = sorted((r.record for r in audio), key=lambda r: r["sequence"])
    assert [(r["codec"], r["sample_rate"], r["start_sample"], r["media_timestamp_ms"], r["payload"]) for r in got] == [
        ("G722", 16000, 0, 0, b"".join(packets[:3])),
        ("G722", 16000, 1600, 100, b"".join(packets[3:])),
    ]
    assert [(r["track"], r["role"]) for r in got] == [("outbound", "AGENT")] * 2
    assert kinds(events)[0] == (
        "StreamStarted",
        {"stream_id": STREAM, "codec": "G722", "sample_rate": 16000, "channels": 1},
    )


async def test_l16_is_stored_big_endian_at_its_rate_with_roles_from_custom_parameters(settings: Settings) -> None:
    call = "v3:l16"
    samples = tone(12000.0, 640, rate=16000)
    packets = [samples[:320].astype(">i2").tobytes(), samples[320:].astype(">i2").tobytes()]
    custom = {"inbound_role": "agent", "outbound_role": "bot"}
    frames = [CONNECTED, start(call, encoding="L16", rate=16000, custom_parameters=custom)]
    frames += [media(2, "inbound", 1, packets[0]), media(3, "inbound", 2, packets[1]), stop(call, 4)]
    async with running_gateway(settings) as gw:
        async with socket(gw) as ws:
            await send_all(ws, frames)
            assert await closed(ws) == (1000, "stream stopped")
        (record,) = await gw.read(gw.topics.audio, 1)
    r = record.record
    assert (r["codec"], r["sample_rate"], r["role"], r["start_sample"]) == ("L16_BE", 16000, "AGENT", 0)
    assert np.array_equal(np.frombuffer(r["payload"], dtype=">i2"), samples)


async def test_only_the_track_asked_for_in_streaming_start_is_kept(settings: Settings) -> None:
    call = "v3:inbound-only"
    inbound, outbound = pcmu(3, 8000.0), pcmu(3, 2000.0)
    frames = [CONNECTED, start(call)]
    frames += [media(2 + 2 * i, "inbound", i + 1, inbound[i]) for i in range(3)]
    frames += [media(3 + 2 * i, "outbound", i + 1, outbound[i]) for i in range(3)]
    async with running_gateway(settings) as gw:
        await command(gw, call, {"stream_track": "inbound_track"})
        async with socket(gw) as ws:
            await send_all(ws, [*frames, stop(call, 20)])
            assert await closed(ws) == (1000, "stream stopped")
        (record,) = await gw.read(gw.topics.audio, 1)
        events = await gw.read(gw.topics.events, 4)
        assert await gw.size(gw.topics.audio) == 1
    assert (record.record["track"], record.record["payload"]) == ("inbound", b"".join(inbound))
    assert events[-1].record["attributes"]["filtered"] == "3"


async def test_invalid_frames_after_start_raise_alarms_and_the_audio_goes_on(settings: Settings) -> None:
    call = "v3:bad-frames"
    packets = pcmu(2, 8000.0)
    frames = [
        CONNECTED,
        start(call),
        media(2, "inbound", 1, packets[0]),
        '{"event":"media","sequence_number":"3",',
        frame("media", 4, media={"track": "inbound", "chunk": "9", "timestamp": "20", "payload": "@@not-base64@@"}),
        frame("media", 5, media={"track": "inbound", "chunk": "9", "timestamp": "20", "payload": ""}),
        start(call, seq=6),
        media(7, "inbound", 2, packets[1]),
        stop(call, 8),
    ]
    async with running_gateway(settings) as gw:
        async with socket(gw) as ws:
            await send_all(ws, frames)
            assert await closed(ws) == (1000, "stream stopped")
        (record,) = await gw.read(gw.topics.audio, 1)
        events = await gw.read(gw.topics.events, 7)
    assert record.record["payload"] == b"".join(packets)
    alarms = [payload for kind, payload in kinds(events) if kind == "PlatformAlarm"]
    assert [a["alarm_type"] for a in alarms] == ["invalid_frame"] * 4
    assert alarms[0]["error"].startswith("frame is not valid JSON")
    assert alarms[1]["error"] == "media.payload '@@not-base64@@' is not valid base64: Only base64 data is allowed"
    assert alarms[2]["error"] == "PCMU payload of 0 bytes is not a whole number of 1-channel frames (1 bytes each)"
    assert alarms[3]["error"] == f"second start frame (stream {STREAM}) on stream {STREAM}"
    assert events[2].record["raw"] == frames[3]  # the malformed frame as received
    assert kinds(events)[-1] == ("StreamStopped", {"stream_id": STREAM, "reason": ""})


async def test_a_socket_dropped_without_stop_flushes_the_tail_and_says_socket_closed(settings: Settings) -> None:
    call = "v3:dropped"
    packets = pcmu(3, 8000.0)
    async with running_gateway(settings) as gw:
        async with socket(gw) as ws:
            await send_all(
                ws, [CONNECTED, start(call), *(media(2 + i, "inbound", i + 1, p) for i, p in enumerate(packets))]
            )
        (record,) = await gw.read(gw.topics.audio, 1)
        events = await gw.read(gw.topics.events, 3)
    assert (record.record["payload"], record.record["sequence"]) == (b"".join(packets), 0)
    assert kinds(events)[-1] == ("StreamStopped", {"stream_id": STREAM, "reason": "socket closed"})


async def attempt(
    gw: RunningGateway, frames: list[str | bytes], cid: str = "1", token: str | None = "key-tenant-1", **headers: str
) -> tuple[int | None, str | None]:
    """Send ``frames`` (as far as the server lets us) and return how the server closed the socket."""
    async with socket(gw, cid, token, **headers) as ws:
        with contextlib.suppress(ConnectionClosed):
            for text in frames:
                await ws.send(text)
        return await closed(ws)


async def test_every_refusal_closes_with_a_clear_code_and_writes_no_audio(settings: Settings) -> None:
    overrides: dict[str, Any] = {"max_frame_bytes": 4096, "max_messages_per_s": 1.0, "max_messages_burst": 40}
    policy = "tenant 1 not authorised: give its API key as ?token= or x-telnyx-streaming-auth-token"
    async with running_gateway(settings, **overrides) as gw:
        await command(gw, "v3:owned", {"command_id": "c-1"})
        await command(gw, "v3:tok", {"stream_auth_token": "per-call-secret"})
        assert await attempt(gw, [CONNECTED, start("v3:x")], token=None) == (1008, policy)
        assert await attempt(gw, [CONNECTED], token="key-tenant-2") == (1008, policy)
        assert await attempt(gw, [CONNECTED], cid="2") == (1008, policy.replace("tenant 1", "tenant 2"))
        assert await attempt(gw, [CONNECTED], cid="abc") == (1008, "tenant 'abc' is not a client id")
        assert await attempt(gw, [start("v3:owned")], cid="2", token="key-tenant-2") == (
            1008,
            "call v3:owned belongs to another tenant",
        )
        mismatch = (1008, "x-telnyx-streaming-auth-token does not match stream_auth_token of the call")
        assert await attempt(gw, [CONNECTED, start("v3:tok")]) == mismatch
        assert await attempt(gw, [start("v3:tok")], **{"x-telnyx-streaming-auth-token": "guess"}) == mismatch
        assert await attempt(gw, [CONNECTED, b"\x00"]) == (
            1003,
            "binary frame: Telnyx media frames are JSON text",
        )
        code, reason = await attempt(gw, [CONNECTED, '{"event":"start",'])
        assert (code, (reason or "").startswith("invalid frame before start: frame is not valid JSON")) == (1007, True)
        assert await attempt(gw, [CONNECTED, media(2, "inbound", 1, b"\xff" * 160)]) == (
            1002,
            "media frame before start",
        )
        assert await attempt(gw, [stop("v3:x", 2)]) == (1002, "stop frame before start")
        big = json.dumps({"event": "connected", "pad": "x" * 5000})
        assert await attempt(gw, [big]) == (1009, f"frame of {len(big)} bytes exceeds max_frame_bytes 4096")
        assert await attempt(gw, [CONNECTED] * 60) == (1008, "message rate above 1/s (burst 40)")
        unsupported = "media encoding 'OPUS' is not supported (PCMU, PCMA, G722, L16, audio/x-mulaw, audio/x-alaw)"
        assert await attempt(gw, [CONNECTED, start("v3:opus", encoding="OPUS", rate=48000)]) == (1003, unsupported)

        assert await gw.size(gw.topics.audio) == 0
        events = await gw.read(gw.topics.events, 3)
        assert await gw.size(gw.topics.events) == 3
    by_key = {r.key: r.record["payload"] for r in events}  # different keys: no order across partitions
    assert by_key == {
        "v3:owned": ("io.switchboard.calls.VendorEvent", {"name": "streaming_start"}),
        "v3:tok": ("io.switchboard.calls.VendorEvent", {"name": "streaming_start"}),
        "v3:opus": ("io.switchboard.calls.PlatformAlarm", {"alarm_type": "stream_error", "error": unsupported}),
    }


async def test_a_configured_streaming_token_must_be_the_upgrade_header_and_match_connected(settings: Settings) -> None:
    header = {"x-telnyx-streaming-auth-token": "global-token"}
    configured = "x-telnyx-streaming-auth-token does not match the configured streaming token"
    async with running_gateway(settings, telnyx_stream_auth_token=SecretStr("global-token")) as gw:
        assert await attempt(gw, [CONNECTED]) == (1008, configured)
        assert await attempt(gw, [CONNECTED], token=None, **{"x-telnyx-streaming-auth-token": "key-tenant-1"}) == (
            1008,
            configured,
        )
        # assumption: the connected frame repeats the token as "stream_auth_token" [I]
        repeated_wrong = json.dumps({"event": "connected", "version": "1.0.0", "stream_auth_token": "other"})
        assert await attempt(gw, [repeated_wrong], **header) == (
            1008,
            "token in the connected frame differs from x-telnyx-streaming-auth-token",
        )
        assert await gw.size(gw.topics.events) == 0
        repeated = json.dumps({"event": "connected", "version": "1.0.0", "stream_auth_token": "global-token"})
        assert await attempt(gw, [repeated, start("v3:ok"), stop("v3:ok", 2)], **header) == (1000, "stream stopped")
        assert len(await gw.read(gw.topics.events, 3)) == 3


async def test_the_tenant_key_may_be_the_streaming_token_and_a_per_call_token_may_be_used(settings: Settings) -> None:
    async with running_gateway(settings) as gw:
        as_header = {"x-telnyx-streaming-auth-token": "key-tenant-1"}
        assert await attempt(gw, [CONNECTED, start("v3:a"), stop("v3:a", 2)], token=None, **as_header) == (
            1000,
            "stream stopped",
        )
        await command(gw, "v3:b", {"stream_auth_token": "per-call-secret"})
        per_call = {"x-telnyx-streaming-auth-token": "per-call-secret"}
        assert await attempt(gw, [CONNECTED, start("v3:b"), stop("v3:b", 2)], **per_call) == (1000, "stream stopped")
        events = await gw.read(gw.topics.events, 7)
    assert [kind for kind, _ in kinds(events)].count("StreamStopped") == 2
