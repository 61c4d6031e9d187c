"""Callback -> CallEvent record (schemas/call_event.avsc), a pure mapping.

- Key / ``call_id``: the session's ``sessionId``. When a callback has none (``/callAnswered``
  documents none, ``/newRemoteCall`` has none), the call id our earlier answer put into the
  session's ``sessionReferenceId`` (reference.py); else the first of ``sipCallId``, ``callId``,
  ``traceId`` (traceId last: it spans sessions). A callback with none of them is refused
  (``MissingCallIdError``, 400).
- ``event_id``: uuid5 of (domain, callback, the body as canonical JSON): a re-posted callback gets the
  same id; a retry that changes any field (even ``httpTransactionId``) is a different event.
- ``occurred_at`` = ``received_at`` = the receive time: no callback carries a vendor time.
- ``attributes``: the ids later commands and queries need (strings; ``sessionReferenceId`` as JSON
  text), the canonical callback name, and for decision callbacks our answer (``decision``, JSON text).
- ``raw``: the body exactly as received.

Payloads: newCall -> CallStarted (ringing, INBOUND); callAnswered -> CallAnswered; callEvent drop /
failure -> CallEnded(reason = event) when our answer drops the remaining party, else (the call
goes on, e.g. an IVR transfer) VendorEvent "callEvent.<event>"; split -> VendorEvent; callNotify ->
VendorEvent "callNotify.<event>" (reInvite may be a hold, PROTOCOLS.md 7 [I]: not typed until
confirmed); sessionCompleted -> CallEnded(reason, duration); getIvrCommand -> Dtmf when digits were
entered, else VendorEvent; recordingReady -> RecordingReady (VendorEvent for an unknown event);
alarm -> PlatformAlarm; getCallIdentifier, newRemoteCall -> VendorEvent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from producers.mediaservice.models import (
    ALARM,
    CallAnswered,
    CallbackBody,
    CallbackError,
    CallEvent,
    GetIvrCommand,
    NewCall,
    RecordingReady,
    SessionCompleted,
)
from producers.mediaservice.reference import SessionRef

NAMESPACE = uuid.UUID("0d9f5e0c-2b8a-4c2e-9a57-6d1f3e8b7c41")
CALLS = "io.switchboard.calls."
CALL_ID_FIELDS = ("sessionId", "sipCallId", "callId", "traceId")
ATTRIBUTE_FIELDS = (
    "sessionId",
    "traceId",
    "callerParticipantId",
    "calleeParticipantId",
    "participantId",
    "remoteParticipantId",
    "connectionId",
    "replyId",
    "ivrServer",
    "httpTransactionId",
)
ENDING_EVENTS = frozenset({"callingPartyDrop", "calledPartyDrop", "callingPartyFailure", "calledPartyFailure"})
RECORDING_EVENTS = {"recordingSuccessful": True, "recordingFailed": False}

Record = dict[str, Any]
Payload = tuple[str, Record]


class MissingCallIdError(CallbackError):
    """A callback carries none of the fields a call id is taken from."""


@dataclass(frozen=True)
class Inbound:
    """One accepted callback: its canonical name, parsed body, raw text and where it came from."""

    callback: str
    body: CallbackBody
    parsed: Mapping[str, Any]
    raw: str
    domain: str
    cid: int
    received_ms: int


@dataclass(frozen=True)
class Options:
    """Per-domain translation choices (from the policy)."""

    caller_role: str = "CUSTOMER"
    callee_role: str = "AGENT"
    duration_unit: str = "s"


def call_id(callback: str, body: CallbackBody) -> str:
    """The canonical call id: sessionId, else the marker's callId, else sipCallId, callId, traceId."""
    fields = body.model_dump()
    if body.sessionId:
        return body.sessionId
    marked = SessionRef.parse(body.sessionReferenceId).call_id
    if marked is not None:
        return marked
    for name in CALL_ID_FIELDS[1:]:
        if fields.get(name):
            return str(fields[name])
    raise MissingCallIdError(
        f"{callback} body has no call id: none of {', '.join(CALL_ID_FIELDS)} or sessionReferenceId.switchboard.callId"
    )


def event_id(inbound: Inbound) -> str:
    """Content-derived id: the same callback posted again has the same id."""
    canonical = json.dumps(inbound.parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(("mediaservice", inbound.domain, inbound.callback, canonical))))


def to_record(inbound: Inbound, options: Options, decision: Mapping[str, Any] | None = None) -> Record:
    """The CallEvent of one callback (``decision``: our answer, for decision callbacks)."""
    payload = PAYLOADS[inbound.callback](inbound.body, options, decision)
    return {
        "event_id": event_id(inbound),
        "call_id": call_id(inbound.callback, inbound.body),
        "cid": inbound.cid,
        "source": "MEDIASERVICE",
        "occurred_at": inbound.received_ms,
        "received_at": inbound.received_ms,
        "payload": payload,
        "raw": inbound.raw,
        "attributes": attributes(inbound, decision),
    }


def attributes(inbound: Inbound, decision: Mapping[str, Any] | None) -> dict[str, str]:
    fields = inbound.body.model_dump()
    out = {name: str(fields[name]) for name in ATTRIBUTE_FIELDS if fields.get(name) is not None}
    out["domain"] = inbound.domain
    out["callback"] = inbound.callback
    if fields.get("sessionReferenceId") is not None:
        out["sessionReferenceId"] = _json(fields["sessionReferenceId"])
    if decision is not None:
        out["decision"] = _json(decision)
    return out


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _vendor(name: str) -> Payload:
    return (CALLS + "VendorEvent", {"name": name})


def _named(callback: str, event: str | None) -> Payload:
    return _vendor(f"{callback}.{event}" if event else callback)


def _new_call(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    call = cast(NewCall, body)
    started: Record = {
        "from_number": call.callingParty,
        "to_number": call.calledParty,
        "direction": "INBOUND",
        "participants": [],
        "answered": False,
    }
    return (CALLS + "CallStarted", started)


def _call_answered(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    answered = cast(CallAnswered, body)
    callee = options.callee_role
    if answered.monitoringParticipant:
        callee = "SUPERVISOR"  # the connected leg is a monitoring leg
    elif SessionRef.parse(answered.sessionReferenceId).menu is not None:
        callee = "BOT"  # the session is in our IVR: the caller talks to it
    parties = [(options.caller_role, answered.callerParticipantId), (callee, answered.calleeParticipantId)]
    participants = [{"role": role, "participant_id": pid} for role, pid in parties if pid is not None]
    return (CALLS + "CallAnswered", {"connection_id": answered.connectionId, "participants": participants})


def _call_event(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    event = cast(CallEvent, body).event
    dropped = decision is not None and decision.get("action") == "drop"
    if event in ENDING_EVENTS and dropped:
        return (CALLS + "CallEnded", {"reason": event, "duration_ms": None})
    return _named("callEvent", event)


def _session_completed(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    done = cast(SessionCompleted, body)
    duration = done.sessionDuration
    scale = 1000 if options.duration_unit == "s" else 1
    duration_ms = None if duration is None else round(duration * scale)
    return (CALLS + "CallEnded", {"reason": done.reason or "", "duration_ms": duration_ms})


def _ivr_command(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    digits = cast(GetIvrCommand, body).dtmfBuffer
    if digits:
        return (CALLS + "Dtmf", {"digits": digits, "track": ""})
    return _vendor("getIvrCommand")


def _recording_ready(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    ready = cast(RecordingReady, body)
    succeeded = RECORDING_EVENTS.get(ready.event or "")
    if succeeded is None or ready.recordingFileName is None:
        return _named("recordingReady", ready.event)
    record = {
        "file_name": ready.recordingFileName,
        "size_bytes": ready.fileSize,
        "succeeded": succeeded,
        "reason": "" if succeeded else ready.reason or "",
    }
    return (CALLS + "RecordingReady", record)


def _alarm(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    fields = body.model_dump()
    return (CALLS + "PlatformAlarm", {"alarm_type": fields.get("type") or "", "error": fields.get("error") or ""})


def _notify(body: CallbackBody, options: Options, decision: Mapping[str, Any] | None) -> Payload:
    return _named("callNotify", body.model_dump().get("event"))


PAYLOADS: dict[str, Callable[[CallbackBody, Options, Mapping[str, Any] | None], Payload]] = {
    "callNotify": _notify,
    "callAnswered": _call_answered,
    "newCall": _new_call,
    "getCallIdentifier": lambda body, options, decision: _vendor("getCallIdentifier"),
    "sessionCompleted": _session_completed,
    "callEvent": _call_event,
    "newRemoteCall": lambda body, options, decision: _vendor("newRemoteCall"),
    "getIvrCommand": _ivr_command,
    "recordingReady": _recording_ready,
    ALARM: _alarm,
}
