"""Pure mapping of Cresta messages to Switchboard records (CallEvent, AudioChunk), as the Avro codec takes them.

- sessionEvent → CallEvent: CALL_START → CallStarted(answered=true, participants), CALL_HOLD → CallHeld,
  CALL_UNHOLD → CallResumed, CALL_END → CallEnded(reason "CALL_END"), EVENT_TYPE_UNSPECIFIED → VendorEvent
  "session.EVENT_TYPE_UNSPECIFIED". occurred_at = platformTime (receive time when absent).
- audioEvent → CallEvent VendorEvent "audio.PAUSE" / "audio.RESUME" / "audio.EVENT_TYPE_UNSPECIFIED", with
  pauseDuration (as given) in the attributes.
- audio → AudioChunk: LINEAR16 → L16_LE, MULAW → PCMU, ALAW → PCMA, AUDIO_ENCODING_UNSPECIFIED → UNKNOWN.
  Tracks: CHANNEL_TYPE_STEREO → "stereo" (2 interleaved channels: ch0 agent, ch1 customer);
  CHANNEL_TYPE_MONO and CHANNEL_TYPE_UNSPECIFIED (assumption) → "mixed"; CHANNEL_TYPE_SEPARATE → one track per
  participant role, named after it ("agent", "customer", "bot", "supervisor"), with that role.

event_id is derived from content: (call id, sequenceId, event kind), or (call id, SHA-256 of the message text,
event kind) when the message has no sequenceId, so a re-sent message gets the same id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from producers.cresta.models import (
    AudioEncoding,
    AudioEvent,
    AudioStreamingMode,
    ChannelType,
    Code,
    CrestaError,
    Participant,
    Role,
    SessionEvent,
    SessionEventType,
    field_violation,
)

Record = dict[str, Any]

SOURCE = "CRESTA"
_CALLS = "io.switchboard.calls."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SESSION_PAYLOADS: dict[SessionEventType, str] = {
    SessionEventType.CALL_START: "CallStarted",
    SessionEventType.CALL_HOLD: "CallHeld",
    SessionEventType.CALL_UNHOLD: "CallResumed",
    SessionEventType.CALL_END: "CallEnded",
}

# encoding -> (AudioChunk codec, bytes per sample per channel; 0 = unknown)
CODECS: dict[AudioEncoding, tuple[str, int]] = {
    AudioEncoding.AUDIO_ENCODING_UNSPECIFIED: ("UNKNOWN", 0),
    AudioEncoding.LINEAR16: ("L16_LE", 2),
    AudioEncoding.MULAW: ("PCMU", 1),
    AudioEncoding.ALAW: ("PCMA", 1),
}

PROCESS_API = "sessionEvent:process"
STEREO_TRACK = "stereo"
MIXED_TRACK = "mixed"


@dataclass(frozen=True)
class CallRef:
    """What every record of one call carries: tenant, call id (the Kafka key), profile and the API used."""

    cid: int
    call_id: str
    profile: str
    api: str

    @property
    def conversation_name(self) -> str:
        """Resource name of the conversation (assumption after Cresta's naming)."""
        return f"customers/{self.cid}/profiles/{self.profile}/conversations/{self.call_id}"


@dataclass(frozen=True)
class AudioFormat:
    """The audio of a stream: AudioChunk codec, sample rate (Hz), interleaved channels, bytes per sample."""

    codec: str
    sample_rate: int
    channels: int
    sample_bytes: int

    @classmethod
    def of(cls, encoding: AudioEncoding, sample_rate: int, channel_type: ChannelType) -> AudioFormat:
        codec, sample_bytes = CODECS[encoding]
        channels = 2 if channel_type is ChannelType.CHANNEL_TYPE_STEREO else 1
        return cls(codec=codec, sample_rate=sample_rate, channels=channels, sample_bytes=sample_bytes)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample of every channel; 1 when the encoding is unknown (positions then count bytes)."""
        return self.sample_bytes * self.channels or 1

    def chunk_frames(self, chunk_ms: int) -> int:
        """Frames (samples per channel) per aggregated record; 0 = no aggregation (rate or encoding unknown)."""
        if not self.sample_bytes:
            return 0
        return self.sample_rate * chunk_ms // 1000


def track_of(channel_type: ChannelType, role: Role) -> tuple[str, str]:
    """(track label, AudioChunk role) of audio sent by a participant with ``role``."""
    if channel_type is ChannelType.CHANNEL_TYPE_STEREO:
        return STEREO_TRACK, "UNSPECIFIED"
    if channel_type is ChannelType.CHANNEL_TYPE_SEPARATE:
        return role.name.lower(), role_symbol(role)
    return MIXED_TRACK, "UNSPECIFIED"


def role_symbol(role: Role) -> str:
    """The schema's Role symbol of a Cresta role."""
    return "UNSPECIFIED" if role is Role.ROLE_UNSPECIFIED else role.name


def epoch_ms(moment: datetime) -> int:
    """UTC ms of ``moment``; a time without offset is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


def event_id(call_id: str, sequence_id: str, raw: str, kind: str) -> str:
    """Content-derived id of the CallEvent of ``kind`` in one message."""
    origin = f"seq:{sequence_id}" if sequence_id else "raw:" + hashlib.sha256(raw.encode()).hexdigest()
    digest = hashlib.sha256("\x1f".join((SOURCE, call_id, origin, kind)).encode()).hexdigest()
    return f"cresta-{digest[:32]}"


def participant_record(participant: Participant) -> Record:
    return {"role": role_symbol(participant.role), "participant_id": participant.participant_id}


def session_payload(event: SessionEvent) -> tuple[str, Record]:
    """The CallEvent payload union branch of a sessionEvent."""
    name = SESSION_PAYLOADS.get(event.event_type)
    if name == "CallStarted":
        participants = [participant_record(p) for p in event.participants]
        body: Record = {"from_number": None, "to_number": None, "direction": "UNSPECIFIED"}
        return _CALLS + name, {**body, "participants": participants, "answered": True}
    if name == "CallEnded":
        return _CALLS + name, {"reason": "CALL_END", "duration_ms": None}
    if name is not None:
        return _CALLS + name, {}
    return _CALLS + "VendorEvent", {"name": f"session.{event.event_type.name}"}


def session_attributes(ref: CallRef, event: SessionEvent, sequence_id: str) -> dict[str, str]:
    """Indexable metadata of a sessionEvent: profile, API, sequenceId, master call, closeActiveCalls, party ids."""
    attributes = _base_attributes(ref, sequence_id)
    if event.platform_master_call_id:
        attributes["platformMasterCallId"] = event.platform_master_call_id
    if event.close_active_calls is not None:
        attributes["closeActiveCalls"] = "true" if event.close_active_calls else "false"
    for role, key in ((Role.AGENT, "agentId"), (Role.CUSTOMER, "customerId")):
        ids = [p.participant_id for p in event.participants if p.role is role and p.participant_id]
        if ids:
            attributes[key] = ids[0]
    agent_users = [p.user for p in event.participants if p.role is Role.AGENT and p.user]
    if agent_users:
        attributes["agentUser"] = agent_users[0]
    return attributes


def session_event_record(
    ref: CallRef, event: SessionEvent, raw: str, sequence_id: str, received_ms: int, **extra: str
) -> Record:
    """The CallEvent of a sessionEvent; ``extra`` attributes are added (e.g. audioStreamingMode)."""
    payload = session_payload(event)
    occurred = epoch_ms(event.platform_time) if event.platform_time is not None else received_ms
    attributes = {**session_attributes(ref, event, sequence_id), **extra}
    return _call_event(ref, payload, f"session.{event.event_type.name}", raw, sequence_id, occurred, received_ms) | {
        "attributes": attributes
    }


def audio_event_record(ref: CallRef, event: AudioEvent, raw: str, sequence_id: str, received_ms: int) -> Record:
    """The CallEvent (VendorEvent "audio.<type>") of an audioEvent."""
    kind = f"audio.{event.event_type.name}"
    payload = (_CALLS + "VendorEvent", {"name": kind})
    record = _call_event(ref, payload, kind, raw, sequence_id, received_ms, received_ms)
    if event.pause_duration:
        record["attributes"]["pauseDuration"] = event.pause_duration
    return record


def audio_chunk_record(
    ref: CallRef,
    audio: AudioFormat,
    track: tuple[str, str],
    sequence: int,
    start_sample: int,
    payload: bytes,
    received_ms: int,
) -> Record:
    """One AudioChunk of ``track`` (label, role); ``start_sample`` in samples per channel at the sample rate."""
    return {
        "call_id": ref.call_id,
        "cid": ref.cid,
        "track": track[0],
        "role": track[1],
        "codec": audio.codec,
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "sequence": sequence,
        "start_sample": start_sample,
        "media_timestamp_ms": None,
        "received_at": received_ms,
        "payload": payload,
    }


def _base_attributes(ref: CallRef, sequence_id: str) -> dict[str, str]:
    attributes = {"profile": ref.profile, "api": ref.api}
    if sequence_id:
        attributes["sequenceId"] = sequence_id
    return attributes


def _call_event(
    ref: CallRef, payload: tuple[str, Record], kind: str, raw: str, sequence_id: str, occurred_ms: int, received_ms: int
) -> Record:
    return {
        "event_id": event_id(ref.call_id, sequence_id, raw, kind),
        "call_id": ref.call_id,
        "cid": ref.cid,
        "source": SOURCE,
        "occurred_at": occurred_ms,
        "received_at": received_ms,
        "payload": payload,
        "raw": raw,
        "attributes": _base_attributes(ref, sequence_id),
    }


def process_event_record(
    cid: int, profile: str, event: SessionEvent, mode: AudioStreamingMode, raw: str, received_ms: int
) -> Record:
    """The CallEvent of a unary ``sessionEvent:process`` call; INVALID_ARGUMENT without a platformCallId."""
    if not event.platform_call_id:
        raise CrestaError(
            Code.INVALID_ARGUMENT,
            "sessionEvent.platformCallId is required",
            [field_violation("sessionEvent.platformCallId", "required")],
        )
    ref = CallRef(cid, event.platform_call_id, profile, PROCESS_API)
    return session_event_record(ref, event, raw, "", received_ms, audioStreamingMode=mode.name)
