"""Telnyx commands and media-socket frames as Switchboard records (CallEvent, AudioChunk dicts). Pure.

Event ids come from content so that a redelivered or re-posted event has the same id: a command
with a ``command_id`` from (call_control_id, command_id) — the same key Telnyx deduplicates on,
whatever the action — otherwise from its body and receive time; a socket event from
(call_control_id, stream_id, what happened, the frame's sequence number). CallStarted is keyed by
the call alone, so a second stream of the same call repeats the id instead of starting the call
again.

Secrets never reach Kafka: ``stream_auth_token`` and a ``token`` query parameter of ``stream_url``
(where the tenant key may travel, see routes.py) are replaced by ``<redacted>`` in ``raw`` and
``attributes``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from producers.telnyx.media import AudioFormat, Piece
from producers.telnyx.models import Command, StartFrame

Record = dict[str, Any]

_NAMESPACE = uuid.UUID("2b7a4c1e-93d5-4f0a-b6e8-5d1c0f3a7e92")
REDACTED = "<redacted>"
ROLES = frozenset({"UNSPECIFIED", "AGENT", "CUSTOMER", "BOT", "SUPERVISOR"})
DEFAULT_ROLES: Mapping[str, str] = {"inbound": "CUSTOMER", "outbound": "AGENT"}
KEPT_TRACKS: Mapping[str, frozenset[str]] = {
    "inbound_track": frozenset({"inbound"}),
    "outbound_track": frozenset({"outbound"}),
    "both_tracks": frozenset({"inbound", "outbound"}),
}
_ATTRIBUTE_NAMES = {"stream_codec": "codec"}


def event_id(*parts: str) -> str:
    """A uuid5 over ``parts``: the same content always gives the same id."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(("telnyx", *parts))))


def call_event(
    *,
    event_id: str,
    call_id: str,
    cid: int,
    kind: str,
    payload: Mapping[str, Any],
    raw: str,
    received_ms: int,
    attributes: Mapping[str, str],
) -> Record:
    """A CallEvent from Telnyx; ``kind`` is the payload type (StreamStarted, Dtmf, ...), times in ms."""
    return {
        "event_id": event_id,
        "call_id": call_id,
        "cid": cid,
        "source": "TELNYX",
        "occurred_at": received_ms,
        "received_at": received_ms,
        "payload": (f"io.switchboard.calls.{kind}", dict(payload)),
        "raw": raw,
        "attributes": dict(attributes),
    }


def redact_url(url: str) -> str:
    """``url`` with the value of a ``token`` query parameter replaced."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name == "token" for name, _ in query):
        return url
    safe = [(name, REDACTED if name == "token" else value) for name, value in query]
    return urlunsplit(parts._replace(query=urlencode(safe, safe="<>")))


def redacted_body(body: bytes, data: Mapping[str, Any]) -> str:
    """The command body as text for ``raw``; re-serialised only when a secret had to be replaced."""
    url = data.get("stream_url")
    secret_url = isinstance(url, str) and redact_url(url) != url
    if "stream_auth_token" not in data and not secret_url:
        return body.decode("utf-8", errors="replace")
    clean = dict(data)
    if "stream_auth_token" in clean:
        clean["stream_auth_token"] = REDACTED
    if secret_url and isinstance(url, str):
        clean["stream_url"] = redact_url(url)
    return orjson.dumps(clean).decode()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def command_attributes(command: Command) -> dict[str, str]:
    """The effective command (defaults applied, unknown fields kept) as string attributes, secrets out."""
    out: dict[str, str] = {}
    for name, value in command.model_dump(exclude_none=True).items():
        if name == "stream_auth_token":
            continue
        if name == "stream_url":
            value = redact_url(value)
        out[_ATTRIBUTE_NAMES.get(name, name)] = _text(value)
    return out


def command_event(
    *, call_control_id: str, cid: int, action: str, command: Command, raw: str, received_ms: int
) -> Record:
    """The CallEvent (VendorEvent ``action``) that records an accepted streaming_start/stop command."""
    if command.command_id is not None:
        eid = event_id("command", call_control_id, command.command_id)
    else:
        eid = event_id("command", call_control_id, action, raw, str(received_ms))
    return call_event(
        event_id=eid,
        call_id=call_control_id,
        cid=cid,
        kind="VendorEvent",
        payload={"name": action},
        raw=raw,
        received_ms=received_ms,
        attributes=command_attributes(command),
    )


def track_roles(custom_parameters: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Role per track: inbound CUSTOMER, outbound AGENT, unless ``inbound_role``/``outbound_role`` say otherwise.

    Returns the roles and a description of every override that names no known role (ignored).
    """
    roles = dict(DEFAULT_ROLES)
    problems = []
    for track in DEFAULT_ROLES:
        given = custom_parameters.get(f"{track}_role")
        if given is None:
            continue
        if isinstance(given, str) and given.upper() in ROLES:
            roles[track] = given.upper()
        else:
            problems.append(f"custom_parameters.{track}_role {given!r} is not one of {sorted(ROLES)}")
    return roles, problems


@dataclass(frozen=True)
class StreamInfo:
    """What the media socket learnt from ``start``, needed for every record of the stream."""

    call_control_id: str
    cid: int
    stream_id: str
    fmt: AudioFormat
    call_session_id: str | None = None
    client_state: str | None = None
    roles: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLES))

    def attributes(self) -> dict[str, str]:
        found = {
            "stream_id": self.stream_id,
            "call_session_id": self.call_session_id,
            "client_state": self.client_state,
        }
        return {name: value for name, value in found.items() if value is not None}


def stream_event(
    info: StreamInfo,
    kind: str,
    payload: Mapping[str, Any],
    *,
    key: str,
    raw: str,
    received_ms: int,
    attributes: Mapping[str, str] | None = None,
) -> Record:
    """A CallEvent of the stream; ``key`` says what happened (e.g. ``dtmf/9``) and makes the id."""
    return call_event(
        event_id=event_id("stream", info.call_control_id, info.stream_id, key),
        call_id=info.call_control_id,
        cid=info.cid,
        kind=kind,
        payload=payload,
        raw=raw,
        received_ms=received_ms,
        attributes={**info.attributes(), **(attributes or {})},
    )


def started_events(info: StreamInfo, frame: StartFrame, raw: str, received_ms: int) -> list[Record]:
    """StreamStarted then CallStarted (answered: media flows) for a ``start`` frame."""
    start = frame.start
    announced = {
        "encoding": start.media_format.encoding,
        "announced_sample_rate": None
        if start.media_format.sample_rate is None
        else str(start.media_format.sample_rate),
        "user_id": start.user_id,
        "from": start.from_number,
        "to": start.to_number,
        "tags": _text(start.tags) if start.tags else None,
        "custom_parameters": _text(start.custom_parameters) if start.custom_parameters else None,
    }
    extra = {name: value for name, value in announced.items() if value is not None}
    stream = stream_event(
        info,
        "StreamStarted",
        {
            "stream_id": info.stream_id,
            "codec": start.media_format.encoding,
            "sample_rate": info.fmt.sample_rate,
            "channels": info.fmt.channels,
        },
        key="start",
        raw=raw,
        received_ms=received_ms,
        attributes=extra,
    )
    call = call_event(
        event_id=event_id("call_started", info.call_control_id),
        call_id=info.call_control_id,
        cid=info.cid,
        kind="CallStarted",
        payload={"from_number": start.from_number, "to_number": start.to_number, "answered": True},
        raw=raw,
        received_ms=received_ms,
        attributes={**info.attributes(), **extra},
    )
    return [stream, call]


def audio_chunk(info: StreamInfo, piece: Piece) -> Record:
    """The AudioChunk of one assembled piece (key = call_control_id)."""
    return {
        "call_id": info.call_control_id,
        "cid": info.cid,
        "track": piece.track,
        "role": info.roles.get(piece.track, "UNSPECIFIED"),
        "codec": info.fmt.codec,
        "sample_rate": info.fmt.sample_rate,
        "channels": info.fmt.channels,
        "sequence": piece.sequence,
        "start_sample": piece.start_sample,
        "media_timestamp_ms": piece.media_timestamp_ms,
        "received_at": piece.received_at_ms,
        "payload": piece.payload,
    }
