"""The body of each call-control command the API accepts: the mediaservice REST fields (PROTOCOLS.md 2.2).

One pydantic model per op. Unknown fields are refused and types are strict (no "5" for a number,
no "true" for a boolean). Besides the vendor fields every body may carry ``command_id`` (the
idempotency key) and ``domain`` (the mediaservice tenant domain); neither is posted to the
mediaservice. Id fields (replyId, connectionId, sessionId, participantId) may be omitted: the
dispatcher fills them from the call's events, and a value given here wins.

Which fields are required is an assumption (the seed marks none): the ones an op cannot do
without (placeivrcall destAddr, startrecording recordingFileName, placeremotecall destinationUri).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(min_length=1, max_length=4096)]
Id = Annotated[str, Field(min_length=1, max_length=4096)]  # replyId is a long opaque JWT-like string: copied verbatim
Domain = Annotated[
    str,
    Field(
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
    ),
]
CommandId = Annotated[str, Field(pattern=r"^[!-~]{1,128}$")]  # printable ASCII, no spaces
Port = Annotated[int, Field(ge=1, le=65535)]
HeaderMap = dict[str, str | list[str]]  # {"x-header1": "v1", "x-header3": ["v1", "v2"]}
JsonObject = dict[str, Any]

NOT_VENDOR_FIELDS = frozenset({"command_id", "domain"})


class CommandBody(BaseModel):
    """Fields every command body may carry besides the vendor's."""

    model_config = ConfigDict(extra="forbid", strict=True)

    command_id: CommandId | None = None
    domain: Domain | None = None

    def vendor_body(self) -> dict[str, Any]:
        """The fields posted to the mediaservice (omitted and null fields left out)."""
        return self.model_dump(exclude=set(NOT_VENDOR_FIELDS), exclude_none=True)


class PlaceIvrCall(CommandBody):
    destAddr: Text
    sipFrom: Text | None = None
    displayName: Text | None = None
    callerPrivacy: bool | None = None
    maxRingTime: Annotated[float, Field(ge=0)] | None = None
    sessionReferenceId: JsonObject | None = None
    mediaserviceId: Text | None = None
    sipDiversion: Text | None = None
    sipDiversionParameters: JsonObject | None = None
    xHeaders: HeaderMap | None = None
    pHeaders: HeaderMap | None = None
    contactParameters: JsonObject | None = None
    contactUserParameters: JsonObject | None = None


class InterruptIvrCommand(CommandBody):
    replyId: Id | None = None
    sessionId: Id | None = None


class HangupParticipant(CommandBody):
    participantId: Id | None = None
    replyId: Id | None = None
    sessionId: Id | None = None


class HangupRemoteParticipant(CommandBody):
    participantId: Id | None = None
    replyId: Id | None = None


class SplitConnection(CommandBody):
    replyId: Id | None = None
    connectionId: Id | None = None


class StartRecording(CommandBody):
    recordingFileName: Text
    replyId: Id | None = None
    connectionId: Id | None = None


class StopRecording(CommandBody):
    replyId: Id | None = None
    connectionId: Id | None = None


class PlaceRemoteCall(CommandBody):
    destinationUri: Text
    codec: Literal["PCMA", "PCMU", "GSM"] | None = None
    sourceUser: Text | None = None
    receiveIp: Text | None = None
    receivePort: Port | None = None
    callbackBaseUrl: Text | None = None
    sessionReferenceId: Text | None = None


class Crypto(BaseModel):
    """One SRTP crypto offer of answerremotecall (newer docs; field types are an assumption)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    suite: Text
    id: int
    config: Text


class AnswerRemoteCall(CommandBody):
    replyId: Id | None = None
    codec: Literal["PCMA", "PCMU"] | None = None
    receiveIp: Text | None = None
    receivePort: Port | None = None
    sessionReferenceId: Text | None = None
    telephoneEventPayloadType: Annotated[int, Field(ge=0, le=127)] | None = None
    crypto: list[Crypto] | None = None


class SendRemoteCallRingback(CommandBody):
    replyId: Id | None = None


class HangupCall(CommandBody):
    replyId: Id | None = None


MODELS: dict[str, type[CommandBody]] = {
    "placeivrcall": PlaceIvrCall,
    "interruptivrcommand": InterruptIvrCommand,
    "hangupparticipant": HangupParticipant,
    "hangupremoteparticipant": HangupRemoteParticipant,
    "splitconnection": SplitConnection,
    "startrecording": StartRecording,
    "stoprecording": StopRecording,
    "placeremotecall": PlaceRemoteCall,
    "answerremotecall": AnswerRemoteCall,
    "sendremotecallringback": SendRemoteCallRingback,
    "hangupcall": HangupCall,
}
