"""The Cresta VoiceCallSession wire contract (proto3 JSON mapping): messages, enums, Duration, google.rpc.Status.

Parsing is tolerant where PROTOCOLS.md §4.3 asks for it: lowerCamelCase and snake_case field names,
enums by name, by number (proto ordinal in the order listed in §4.4, ``*_UNSPECIFIED`` = 0) and by
the listed aliases, numbers given as strings, ``null`` for "unset", standard and url-safe base64
with or without padding. Unknown fields are ignored here (the raw message is kept in the records).
An unknown enum value is refused with INVALID_ARGUMENT naming the field and the value.

Only the ``*_UNSPECIFIED`` enum members are documented by Cresta; the others are our assumption.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from functools import partial
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class Code(IntEnum):
    """google.rpc.Code values this API answers with."""

    CANCELLED = 1
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


HTTP_STATUS: Mapping[int, int] = {
    Code.CANCELLED: 499,
    Code.INVALID_ARGUMENT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.FAILED_PRECONDITION: 400,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}

BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
PRECONDITION_FAILURE_TYPE = "type.googleapis.com/google.rpc.PreconditionFailure"
UNAVAILABLE_MESSAGE = "Kafka did not acknowledge the records in time; the service is not available at the moment."


class CrestaError(Exception):
    """Base of every refusal of the Cresta API; carries a google.rpc.Status."""

    def __init__(self, code: Code, message: str, details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = [dict(detail) for detail in details]

    def status(self) -> dict[str, Any]:
        """The google.rpc.Status JSON body."""
        return {"code": int(self.code), "message": self.message, "details": self.details}

    @property
    def http_status(self) -> int:
        """HTTP status of the same error when it is answered before the stream starts."""
        return HTTP_STATUS[self.code]


def field_violation(field: str, description: str) -> dict[str, Any]:
    """A google.rpc.BadRequest detail naming one field."""
    return {"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field, "description": description}]}


# --- enums --------------------------------------------------------------------------------------------


class AudioEncoding(IntEnum):
    AUDIO_ENCODING_UNSPECIFIED = 0
    LINEAR16 = 1
    MULAW = 2
    ALAW = 3


class ChannelType(IntEnum):
    CHANNEL_TYPE_UNSPECIFIED = 0
    CHANNEL_TYPE_MONO = 1
    CHANNEL_TYPE_STEREO = 2
    CHANNEL_TYPE_SEPARATE = 3


class Role(IntEnum):
    ROLE_UNSPECIFIED = 0
    AGENT = 1
    CUSTOMER = 2
    BOT = 3
    SUPERVISOR = 4


class SessionEventType(IntEnum):
    EVENT_TYPE_UNSPECIFIED = 0
    CALL_START = 1
    CALL_HOLD = 2
    CALL_UNHOLD = 3
    CALL_END = 4


class AudioEventType(IntEnum):
    EVENT_TYPE_UNSPECIFIED = 0
    PAUSE = 1
    RESUME = 2


class AudioStreamingMode(IntEnum):
    AUDIO_STREAMING_MODE_UNSPECIFIED = 0
    AUDIO_STREAMING_MODE_API = 1
    AUDIO_STREAMING_MODE_SIPREC = 2
    AUDIO_STREAMING_MODE_AGENT_DESKTOP = 3


ALIASES: Mapping[type[IntEnum], Mapping[str, IntEnum]] = {
    AudioEncoding: {
        "AUDIO_ENCODING_LINEAR_16": AudioEncoding.LINEAR16,
        "LINEAR_PCM": AudioEncoding.LINEAR16,
        "AUDIO_ENCODING_MULAW": AudioEncoding.MULAW,
        "PCMU": AudioEncoding.MULAW,
        "PCMA": AudioEncoding.ALAW,
    },
    Role: {"VISITOR": Role.CUSTOMER},
}

E = TypeVar("E", bound=IntEnum)


def parse_enum(kind: type[E], value: object) -> E:
    """The member of ``kind`` named, numbered or aliased by ``value``; ValueError naming the value otherwise."""
    if isinstance(value, kind):
        return value
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        number = int(value)
    elif isinstance(value, str):
        if value in kind.__members__:
            return kind[value]
        alias = ALIASES.get(kind, {}).get(value)
        if alias is not None:
            return kind(alias.value)
    if number is not None and number in {member.value for member in kind}:
        return kind(number)
    names = ", ".join(f"{m.name} ({m.value})" for m in kind)
    aliases = ", ".join(ALIASES.get(kind, {}))
    also = f"; aliases {aliases}" if aliases else ""
    raise ValueError(f"unknown {kind.__name__} value {value!r}: expected one of {names}{also}")


def _enum(kind: type[E]) -> BeforeValidator:
    return BeforeValidator(partial(parse_enum, kind))


# --- scalar types -------------------------------------------------------------------------------------

_URL_SAFE = str.maketrans("-_", "+/")
_DURATION = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,9}))?s")
NANOS_PER_S = 1_000_000_000


def decode_base64(value: object) -> bytes:
    """Bytes of a proto3 JSON ``bytes`` field: standard or url-safe base64, padding optional."""
    if not isinstance(value, str):
        raise ValueError(f"expected a base64 string, got {type(value).__name__} {value!r:.40}")
    text = value.translate(_URL_SAFE)
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64 ({exc}): {value!r:.40}") from exc


def parse_duration(text: str) -> int:
    """Nanoseconds of a proto3 JSON Duration such as ``"2.5s"``; ValueError naming the text otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a Duration like '2.5s': {text!r}")
    sign, seconds, fraction = match.groups()
    nanos = int(seconds) * NANOS_PER_S + int((fraction or "").ljust(9, "0"))
    return -nanos if sign else nanos


def format_duration(nanos: int) -> str:
    """proto3 JSON Duration text of ``nanos`` ns, with 0, 3, 6 or 9 fractional digits (e.g. ``"12.300s"``)."""
    seconds, rest = divmod(nanos, NANOS_PER_S)
    if rest == 0:
        return f"{seconds}s"
    digits = f"{rest:09d}"
    for keep in (3, 6):
        if digits[keep:] == "0" * (9 - keep):
            return f"{seconds}.{digits[:keep]}s"
    return f"{seconds}.{digits}s"


# --- messages -----------------------------------------------------------------------------------------


class Message(BaseModel):
    """Base of the vendor messages: camelCase or snake_case names, null = unset, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
        coerce_numbers_to_str=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class AudioMetadata(Message):
    sample_rate_hertz: int = Field(default=0, ge=0, le=384_000, description="Sample rate, Hz; 0 = not given.")
    encoding: Annotated[AudioEncoding, _enum(AudioEncoding)] = AudioEncoding.AUDIO_ENCODING_UNSPECIFIED


class StreamingConfig(Message):
    profile: str = ""
    audio_metadata: AudioMetadata = AudioMetadata()
    channel_type: Annotated[ChannelType, _enum(ChannelType)] = ChannelType.CHANNEL_TYPE_UNSPECIFIED
    platform_call_id: str = ""


class Participant(Message):
    role: Annotated[Role, _enum(Role)] = Role.ROLE_UNSPECIFIED
    user: str = ""
    platform_agent_id: str = ""
    external_user_id: str = ""

    @property
    def participant_id(self) -> str | None:
        """The most specific vendor id of the party: platformAgentId, externalUserId, then user."""
        return self.platform_agent_id or self.external_user_id or self.user or None


class AudioContent(Message):
    audio_content: Annotated[bytes, BeforeValidator(decode_base64)] = b""
    participant: Participant = Participant()


class SessionEvent(Message):
    event_type: Annotated[SessionEventType, _enum(SessionEventType)] = SessionEventType.EVENT_TYPE_UNSPECIFIED
    platform_call_id: str = ""
    platform_master_call_id: str = ""
    participants: tuple[Participant, ...] = ()
    platform_time: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    close_active_calls: bool | None = None


class AudioEvent(Message):
    event_type: Annotated[AudioEventType, _enum(AudioEventType)] = AudioEventType.EVENT_TYPE_UNSPECIFIED
    pause_duration: str = Field(default="", description="Duration text; parsed (and checked) only for PAUSE.")


class StreamRequest(Message):
    """One message of streamCallSession / streamCallSessionAudio."""

    streaming_config: StreamingConfig | None = None
    audio_content: AudioContent | None = None
    session_event: SessionEvent | None = None
    audio_event: AudioEvent | None = None
    sequence_id: str = ""


class ProcessSessionEventRequest(Message):
    """The body of ``POST /v1/voicecallsession/{profile}/sessionEvent:process``."""

    session_event: SessionEvent
    audio_streaming_mode: Annotated[AudioStreamingMode, _enum(AudioStreamingMode)] = (
        AudioStreamingMode.AUDIO_STREAMING_MODE_UNSPECIFIED
    )


M = TypeVar("M", bound=Message)


def parse_message(kind: type[M], value: Mapping[str, Any]) -> M:
    """Validate one decoded JSON object as ``kind``; CrestaError INVALID_ARGUMENT naming the fields otherwise."""
    try:
        return kind.model_validate(value)
    except ValidationError as exc:
        raise invalid_argument(exc) from exc


def invalid_argument(exc: ValidationError) -> CrestaError:
    """INVALID_ARGUMENT with one field violation per validation error (field path and offending value)."""
    violations = [_violation(error) for error in exc.errors(include_url=False)]
    message = "; ".join(f"{field}: {text}" for field, text in violations)
    details = [{"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": f, "description": d} for f, d in violations]}]
    return CrestaError(Code.INVALID_ARGUMENT, message, details)


def _violation(error: Any) -> tuple[str, str]:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    cause = error.get("ctx", {}).get("error")
    text = str(cause) if isinstance(cause, ValueError) else f"{error['msg']} (got {error['input']!r:.60})"
    return path or "(message)", text
