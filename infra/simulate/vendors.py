"""The three vendors as the gateway sees them: Telnyx media sockets, mediaservice callbacks, Cresta sessions.

Each call is paced in real time from a pre-encoded conversation (8 bytes per ms for every codec):
Telnyx sends one 20 ms media frame per track per tick; Cresta sends 100 ms of interleaved stereo
mu-law (channel 0 agent, channel 1 customer) per message and signals the plan's holds.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from infra.simulate import SimulateError
from infra.simulate.stats import Stats

BYTES_PER_MS = 8
TELNYX_PACKET_MS = 20
CRESTA_MESSAGE_MS = 100


@dataclass(frozen=True)
class Target:
    """Where and as whom the simulated vendors connect."""

    gateway: str  # http(s)://host:port
    key: str
    cid: int
    domain: str  # mediaservice domain (its policy names ``cid``)
    callback_secret: str | None = None

    @property
    def ws(self) -> str:
        return "ws" + self.gateway.removeprefix("http")


@dataclass(frozen=True)
class Audio:
    """One call's encoded tracks: ``inbound`` (customer) and ``outbound`` (agent), same length."""

    codec: str
    inbound: bytes
    outbound: bytes
    holds: tuple[tuple[float, float], ...] = ()

    @property
    def ms(self) -> int:
        return len(self.inbound) // BYTES_PER_MS


async def paced(count: int, period_s: float, stats: Stats) -> AsyncIterator[int]:
    """Yield 0..count-1, each when it is due in real time (tick i at i * period_s); record how late."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(count):
        due = t0 + i * period_s
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stats.lag(loop.time() - due)
        yield i


def _dumps(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------- mediaservice


class Mediaservice:
    """The iotcomms mediaservice posting a call's life-cycle callbacks to the gateway."""

    def __init__(self, target: Target, http: httpx.AsyncClient, stats: Stats) -> None:
        self.target, self.http, self.stats = target, http, stats

    async def post(self, callback: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one callback; its JSON answer. SimulateError on a non-200 answer."""
        headers = {"Authorization": f"Bearer {self.target.callback_secret}"} if self.target.callback_secret else {}
        url = f"{self.target.gateway}/mediaservice/{quote(self.target.domain)}/{callback}"
        response = await self.http.post(url, json={**body, "domain": self.target.domain}, headers=headers)
        self.stats.callbacks += 1
        if response.status_code != 200:
            raise SimulateError(f"mediaservice {callback}: HTTP {response.status_code} {response.text[:200]}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise SimulateError(f"mediaservice {callback}: answer is not a JSON object: {response.text[:200]}")
        return answer

    async def begin(self, call_id: str, n: int) -> None:
        """newCall (the policy must route it: action ``call``), then callAnswered."""
        parties = {"callingParty": f"+4930{n:07d}", "calledParty": "+4685000100"}
        answer = await self.post("newCall", {"sessionId": call_id, "sipCallId": f"{call_id}@sim", **parties})
        if answer.get("action") != "call":
            raise SimulateError(f"newCall of {call_id} answered {answer!r}; the domain policy must route to a call")
        await self.post(
            "callAnswered",
            {
                "sessionId": call_id,
                "connectionId": f"{call_id}-c",
                "callerParticipantId": f"{call_id}-caller",
                "calleeParticipantId": f"{call_id}-agent",
                "callingPartyNumber": parties["callingParty"],
                "remotePartyNumber": parties["calledParty"],
            },
        )

    async def end(self, call_id: str, seconds: float) -> None:
        """The agent hangs up (callEvent calledPartyDrop), then sessionCompleted (duration in s)."""
        await self.post(
            "callEvent",
            {
                "sessionId": call_id,
                "event": "calledPartyDrop",
                "connectionId": f"{call_id}-c",
                "participantId": f"{call_id}-agent",
                "remoteParticipantId": f"{call_id}-caller",
            },
        )
        await self.post("sessionCompleted", {"sessionId": call_id, "sessionDuration": seconds, "reason": "hangup"})


# ---------------------------------------------------------------- telnyx


async def telnyx_call(target: Target, call_id: str, audio: Audio, stats: Stats) -> None:
    """One Telnyx media stream (both tracks) paced in real time; returns after the server closed the socket."""
    url = f"{target.ws}/telnyx/media/{target.cid}?token={quote(target.key)}"
    stream_id = f"{call_id}-stream"
    step = TELNYX_PACKET_MS * BYTES_PER_MS
    async with connect(url, max_size=2**20, compression=None) as ws:
        seq = 1
        await ws.send(_dumps({"event": "connected", "version": "1.0.0"}))
        start = {
            "call_control_id": call_id,
            "call_session_id": f"{call_id}-session",
            "from": "+4930123456",
            "to": "+4685000100",
            "media_format": {"encoding": audio.codec, "sample_rate": 8000, "channels": 1},
        }
        await ws.send(_dumps({"event": "start", "sequence_number": str(seq), "stream_id": stream_id, "start": start}))
        async for i in paced(audio.ms // TELNYX_PACKET_MS, TELNYX_PACKET_MS / 1000, stats):
            for track, data in (("inbound", audio.inbound), ("outbound", audio.outbound)):
                seq += 1
                media = {
                    "track": track,
                    "chunk": str(i + 1),
                    "timestamp": str(i * TELNYX_PACKET_MS),
                    "payload": base64.b64encode(data[i * step : (i + 1) * step]).decode(),
                }
                await ws.send(
                    _dumps({"event": "media", "sequence_number": str(seq), "stream_id": stream_id, "media": media})
                )
            stats.packets += 2
            stats.audio_bytes += 2 * step
        stop = {"call_control_id": call_id}
        await ws.send(_dumps({"event": "stop", "sequence_number": str(seq + 1), "stream_id": stream_id, "stop": stop}))
        await _closed_by_server(ws, f"telnyx stream {call_id}")


async def _closed_by_server(ws: ClientConnection, what: str) -> None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed as exc:
        raise SimulateError(f"{what} closed abnormally: {exc}") from exc
    code = ws.close_code
    if code != 1000:
        raise SimulateError(f"{what} closed with code {code} ({ws.close_reason})")


# ---------------------------------------------------------------- cresta


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stereo(agent: bytes, customer: bytes) -> bytes:
    """Interleave two mono byte tracks (one byte per sample): channel 0 agent, channel 1 customer."""
    out = bytearray(2 * len(agent))
    out[0::2], out[1::2] = agent, customer
    return bytes(out)


async def cresta_call(target: Target, call_id: str, audio: Audio, stats: Stats) -> None:
    """One Cresta streamCallSession over WebSocket: config, CALL_START, audio (holds signalled), CALL_END."""
    url = f"{target.ws}/v1/voicecallsession/streamCallSession"
    interleaved = stereo(audio.outbound, audio.inbound)
    step = 2 * CRESTA_MESSAGE_MS * BYTES_PER_MS
    async with connect(url, additional_headers={"Authorization": f"Bearer {target.key}"}, max_size=2**20) as ws:
        reader = asyncio.create_task(_responses(ws, call_id, stats))
        seq = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            await ws.send(_dumps({**message, "sequenceId": str(seq)}))

        metadata = {"sampleRateHertz": 8000, "encoding": "MULAW"}
        config = {"profile": "default", "audioMetadata": metadata, "channelType": "CHANNEL_TYPE_STEREO"}
        await send({"streamingConfig": {**config, "platformCallId": call_id}})
        participants = [
            {"role": "AGENT", "platformAgentId": "sim-agent"},
            {"role": "CUSTOMER", "externalUserId": "+4930"},
        ]
        await send({"sessionEvent": _session_event("CALL_START", call_id, participants)})
        marks = _hold_marks(audio.holds)
        async for i in paced(audio.ms // CRESTA_MESSAGE_MS, CRESTA_MESSAGE_MS / 1000, stats):
            at_ms = i * CRESTA_MESSAGE_MS
            while marks and marks[0][0] <= at_ms:
                await send({"sessionEvent": _session_event(marks.pop(0)[1], call_id)})
            payload = base64.b64encode(interleaved[i * step : (i + 1) * step]).decode()
            await send({"audioContent": {"audioContent": payload}})
            stats.packets += 1
            stats.audio_bytes += step
        await send({"sessionEvent": _session_event("CALL_END", call_id)})
        await reader  # the server closes the socket once CALL_END is answered
        if ws.close_code != 1000:
            raise SimulateError(f"cresta session {call_id} closed with code {ws.close_code} ({ws.close_reason})")


def _session_event(kind: str, call_id: str, participants: list[dict[str, str]] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"eventType": kind, "platformCallId": call_id, "platformTime": _now()}
    if participants:
        event["participants"] = participants
    return event


def _hold_marks(holds: tuple[tuple[float, float], ...]) -> list[tuple[int, str]]:
    marks = [(int(a * 1000), "CALL_HOLD") for a, _ in holds] + [(int(b * 1000), "CALL_UNHOLD") for _, b in holds]
    return sorted(marks)


async def _responses(ws: ClientConnection, call_id: str, stats: Stats) -> None:
    """Count the session's result lines; an error chunk is an error of the run."""
    try:
        async for message in ws:
            line = orjson.loads(message)
            stats.responses += 1
            if "error" in line:
                stats.error("cresta", f"{call_id}: {line['error']}")
    except ConnectionClosed:
        return  # cresta_call reports the close code
