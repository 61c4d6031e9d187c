"""The callbacks the mediaservice posts to us (seed 002, PROTOCOLS.md 2.3): one tolerant pydantic model each.

Tolerance rules (the seed's own examples mix numbers and strings for the same field):
- unknown fields are kept (``extra="allow"``) and every field is optional: the raw body is stored anyway;
- id and text fields accept a string or a number (``"sipCallId": 5473001594892095000`` becomes the string
  ``"5473001594892095000"``); an object, a list or a boolean there is refused, naming the field;
- numeric fields (durations, sizes, ports) accept a number or a numeric string;
- booleans accept pydantic's lax forms (true/false, 0/1, "true"/"false");
- ``sessionReferenceId`` (string, number or object), ``errorDetails``, ``xHeaders`` ... are any JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class CallbackError(Exception):
    """Base of the errors of the mediaservice callback edge (policy, spool, auth, refused callbacks)."""


def _text(value: Any) -> Any:
    """Numbers become their decimal text; strings pass; anything else is left for pydantic to refuse."""
    if isinstance(value, bool):
        raise ValueError("Input should be a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
Number = float  # lax: 600, 600.5 and "600" all parse


class CallbackBody(BaseModel):
    """Fields common to most callbacks."""

    model_config = ConfigDict(extra="allow")

    sessionId: Text | None = None
    sessionReferenceId: Any = None
    ivrServer: Text | None = None
    traceId: Text | None = None
    siteId: Text | None = None
    httpTransactionId: Text | None = None
    domain: Text | None = None


class CallNotify(CallbackBody):
    """``/callNotify``: ringing, reInvite or update on a participant."""

    event: Text | None = None
    monitoringParticipant: bool | None = None
    participantId: Text | None = None
    user: Text | None = None
    remoteUser: Text | None = None
    remoteParticipantId: Text | None = None
    sipCallId: Text | None = None


class CallAnswered(CallbackBody):
    """``/callAnswered``: a connection between two participants is established."""

    callingPartyNumber: Text | None = None
    callerParticipantId: Text | None = None
    calleeParticipantId: Text | None = None
    remotePartyNumber: Text | None = None
    connectionId: Text | None = None
    callingPartyExpires: Number | None = None
    calledPartyExpires: Number | None = None
    codec: Text | None = None
    monitoringParticipant: bool | None = None
    remoteRtpIp: Text | None = None
    remoteRtpPort: Text | None = None
    replyId: Text | None = None


class NewCall(CallbackBody):
    """``/newCall``: an inbound call reached the IVR; we answer with an action object."""

    sipCallId: Text | None = None
    callingPartyPrivacy: Text | None = None
    callingParty: Text | None = None
    displayName: Text | None = None
    fromUser: Text | None = None
    xHeaders: Any = None
    pHeaders: Any = None
    copyHeaders: list[Text] | None = None
    calledParty: Text | None = None
    diversionHeaders: Text | None = None
    referredBy: Text | None = None
    paiNumber: Text | None = None
    subject: Text | None = None
    srcAddr: Text | None = None


class GetCallIdentifier(CallbackBody):
    """``/getCallIdentifier``: we answer with the session's reference object."""

    calledParty: Text | None = None


class SessionCompleted(CallbackBody):
    """``/sessionCompleted``: the session ended (duration unit: see the domain policy)."""

    sessionDuration: Number | None = None
    reason: Text | None = None


class CallEvent(CallbackBody):
    """``/callEvent``: a party dropped or failed, or a connection was split; we answer with an action object."""

    connectionId: Text | None = None
    event: Text | None = None
    participantId: Text | None = None
    remoteParticipantId: Text | None = None
    remoteUser: Text | None = None
    user: Text | None = None


class NewRemoteCall(CallbackBody):
    """``/newRemoteCall`` (Cloud UA): an inbound SIP call to the cloud user agent."""

    replyId: Text | None = None
    callId: Text | None = None
    codec: Text | None = None
    destinationUri: Text | None = None
    sourceUser: Text | None = None
    remoteRtpIp: Text | None = None
    remoteRtpPort: Number | None = None


class DtmfParams(BaseModel):
    """``dtmfParams`` of ``/getIvrCommand``."""

    model_config = ConfigDict(extra="allow")

    dtmfMatch: Text | None = None
    reason: Text | None = None
    matchedTerminationKey: Text | None = None
    encryption: Any = None


class GetIvrCommand(CallbackBody):
    """``/getIvrCommand``: the IVR asks what to do next; ``dtmfBuffer`` holds the digits since the last flush."""

    dtmfBuffer: Text | None = None
    dtmfParams: DtmfParams | None = None
    replyId: Text | None = None


class RecordingReady(CallbackBody):
    """``/recordingReady``: a recording was uploaded to prompt storage (or failed)."""

    connectionId: Text | None = None
    recordingFileName: Text | None = None
    fileSize: int | None = None
    event: Text | None = None
    reason: Text | None = None


class Alarm(CallbackBody):
    """The alarm callback (path configured per domain): an unexpected platform event (PROTOCOLS.md 2.5)."""

    type: Text | None = None
    error: Text | None = None
    errorDetails: Any = None
    status: Text | None = None
    participantId: Text | None = None
    user: Text | None = None
    callId: Text | None = None


ALARM = "alarm"  # canonical name of the alarm callback, whatever path the domain configured for it

MODELS: dict[str, type[CallbackBody]] = {
    "callNotify": CallNotify,
    "callAnswered": CallAnswered,
    "newCall": NewCall,
    "getCallIdentifier": GetCallIdentifier,
    "sessionCompleted": SessionCompleted,
    "callEvent": CallEvent,
    "newRemoteCall": NewRemoteCall,
    "getIvrCommand": GetIvrCommand,
    "recordingReady": RecordingReady,
    ALARM: Alarm,
}

DECISIONS = frozenset({"newCall", "callEvent", "getIvrCommand", "getCallIdentifier", "newRemoteCall"})
"""Callbacks whose answer drives the call; the others are answered ``{}``."""

CALLBACK_PATHS = frozenset(MODELS) - {ALARM}
"""Path names of the fixed callbacks (the alarm path is configured per domain)."""
