"""The Telnyx wire contract: Call Control streaming commands, media WebSocket frames, JSON:API errors.

Names, enums and defaults follow seeds/003 and PROTOCOLS.md §3. Enums are case-sensitive; numbers
and booleans sent as strings are accepted (pydantic lax mode) and re-emitted typed. Unknown fields
are kept (``extra="allow"``) so nothing a vendor adds is lost.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from producers.telnyx.errors import FrameError

StreamTrack = Literal["inbound_track", "outbound_track", "both_tracks"]
MediaCodec = Literal["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"]
StreamCodec = Literal["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"]  # default: the call's codec
SAMPLING_RATES_HZ = (8000, 16000, 22050, 24000, 48000)
MAX_ID_CHARS = 256
MAX_URL_CHARS = 2000  # Telnyx error 10003: URLs can be at most 2000 characters


def decode_base64(value: str, what: str) -> bytes:
    """Strict standard base64 (padding required, no stray characters); FrameError names the field."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        shown = value if len(value) <= 40 else f"{value[:40]}..."
        raise FrameError(f"{what} {shown!r} is not valid base64: {exc}") from exc


def _url(value: str | None, schemes: tuple[str, ...], field: str) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_URL_CHARS or not value.startswith(schemes):
        raise ValueError(f"{field} {value[:80]!r} must be a {'/'.join(schemes)} URL of at most {MAX_URL_CHARS} chars")
    return value


class DialogflowConfig(BaseModel):
    """``dialogflow_config`` of streaming_start."""

    model_config = ConfigDict(extra="allow")

    analyze_sentiment: bool = False
    partial_automated_agent_reply: bool = False


class Command(BaseModel):
    """Fields every Call Control command shares."""

    model_config = ConfigDict(extra="allow")

    client_state: str | None = Field(default=None, max_length=4096)
    command_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)

    @field_validator("client_state")
    @classmethod
    def _client_state_is_base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                decode_base64(value, "client_state")
            except FrameError as exc:
                raise ValueError(str(exc)) from None
        return value


class StreamingStart(Command):
    """Body of ``POST /calls/{call_control_id}/actions/streaming_start``.

    ``webhook_url`` is a Switchboard extension: it overrides the configured webhook URL for the
    streaming.* webhooks of this call.
    """

    stream_url: str | None = None
    stream_track: StreamTrack = "inbound_track"
    stream_codec: StreamCodec = "default"
    stream_bidirectional_mode: Literal["mp3", "rtp"] = "mp3"
    stream_bidirectional_codec: MediaCodec = "PCMU"
    stream_bidirectional_sampling_rate: int = 8000
    stream_bidirectional_target_legs: Literal["both", "self", "opposite"] = "opposite"
    stream_auth_token: str | None = Field(default=None, min_length=1, max_length=1024)
    enable_dialogflow: bool = False
    dialogflow_config: DialogflowConfig | None = None
    webhook_url: str | None = None

    @field_validator("stream_url")
    @classmethod
    def _stream_url(cls, value: str | None) -> str | None:
        return _url(value, ("ws://", "wss://"), "stream_url")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return _url(value, ("http://", "https://"), "webhook_url")

    @field_validator("stream_bidirectional_sampling_rate")
    @classmethod
    def _sampling_rate(cls, value: int) -> int:
        if value not in SAMPLING_RATES_HZ:
            raise ValueError(f"stream_bidirectional_sampling_rate {value} is not one of {SAMPLING_RATES_HZ}")
        return value


class StreamingStop(Command):
    """Body of ``POST /calls/{call_control_id}/actions/streaming_stop``; no ``stream_id`` stops every stream."""

    stream_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)


# --- JSON:API errors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiError:
    """One entry of a Telnyx ``{"errors": [...]}`` body; ``pointer`` locates the bad body field."""

    code: str
    title: str
    detail: str
    pointer: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "title": self.title, "detail": self.detail}
        if self.pointer is not None:
            out["source"] = {"pointer": self.pointer}
        return out


def validation_errors(exc: ValidationError) -> list[ApiError]:
    """pydantic errors as Telnyx errors: 10004 for a missing field, 10003 for a bad URL, else 10015."""
    out = []
    for error in exc.errors(include_url=False):
        pointer = "/" + "/".join(str(part) for part in error["loc"])
        if error["type"] == "missing":
            out.append(ApiError("10004", "Missing required parameter", f"{pointer[1:]} is required", pointer))
            continue
        if error["type"] == "value_error":  # our own validators already name the bad value
            message = str(error["msg"]).removeprefix("Value error, ")
        else:
            message = f"{pointer[1:]}: {error['msg']} (got {repr(error.get('input'))[:80]})"
        if error["loc"] and error["loc"][-1] in ("stream_url", "webhook_url"):
            out.append(ApiError("10003", "Invalid URL", message, pointer))
        else:
            out.append(ApiError("10015", "Invalid parameter", message, pointer))
    return out


# --- media WebSocket frames -------------------------------------------------------------------------


class Frame(BaseModel):
    """Envelope of every frame Telnyx sends on the media socket."""

    model_config = ConfigDict(extra="allow")

    event: str
    sequence_number: int | None = None
    stream_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class ConnectedFrame(Frame):
    """``connected``: the first frame. ``stream_auth_token`` is where we expect the repeated token (assumption)."""

    version: str | None = None
    stream_auth_token: str | None = None


class MediaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    encoding: str = Field(min_length=1, max_length=64)
    sample_rate: int | None = Field(default=None, ge=1000, le=192_000)
    channels: int = Field(default=1, ge=1, le=2)


class StartInfo(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    call_control_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    call_session_id: str | None = None
    user_id: str | None = None
    from_number: str | None = Field(default=None, alias="from")
    to_number: str | None = Field(default=None, alias="to")
    tags: list[str] = Field(default_factory=list)
    client_state: str | None = None
    custom_parameters: dict[str, Any] = Field(default_factory=dict)
    media_format: MediaFormat


class StartFrame(Frame):
    stream_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    start: StartInfo


class MediaBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    track: Literal["inbound", "outbound", "inbound_track", "outbound_track"] = "inbound"
    chunk: int | None = Field(default=None, ge=0)
    timestamp: int | None = Field(default=None, ge=0)
    payload: str

    @property
    def track_name(self) -> str:
        """``inbound`` or ``outbound`` (the ``_track`` spelling is accepted too)."""
        return self.track.removesuffix("_track")

    def audio(self) -> bytes:
        """The RTP payload bytes; FrameError when the base64 is bad."""
        return decode_base64(self.payload, "media.payload")


class MediaFrame(Frame):
    media: MediaBody


class DtmfBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    digit: str = Field(min_length=1, max_length=32)
    track: str = ""


class DtmfFrame(Frame):
    dtmf: DtmfBody


class MarkBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=MAX_ID_CHARS)


class MarkFrame(Frame):
    mark: MarkBody


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str | int | None = None
    title: str | None = None
    detail: str | None = None

    def text(self) -> str:
        """``"<code> <title>: <detail>"`` with the missing parts left out."""
        head = " ".join(str(part) for part in (self.code, self.title) if part is not None)
        return f"{head}: {self.detail}" if head and self.detail else head or self.detail or "unspecified error"


class ErrorFrame(Frame):
    """``error``: the object may be under ``payload`` or under ``error`` (both seen in the wild)."""

    payload: ErrorBody | None = None
    error: ErrorBody | None = None

    @model_validator(mode="after")
    def _has_body(self) -> ErrorFrame:
        if self.payload is None and self.error is None:
            raise ValueError("error frame has neither 'payload' nor 'error'")
        return self

    @property
    def body(self) -> ErrorBody:
        body = self.payload or self.error
        assert body is not None  # guaranteed by the validator
        return body


class StopFrame(Frame):
    stop: dict[str, Any] = Field(default_factory=dict)


FRAME_TYPES: dict[str, type[Frame]] = {
    "connected": ConnectedFrame,
    "start": StartFrame,
    "media": MediaFrame,
    "dtmf": DtmfFrame,
    "mark": MarkFrame,
    "error": ErrorFrame,
    "stop": StopFrame,
}


def parse_frame(text: str | bytes) -> Frame:
    """One media-socket frame, typed by its ``event``; unknown events parse as a plain ``Frame``."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise FrameError(f"frame is not a JSON object with a string 'event': {str(text)[:80]!r}")
    kind = FRAME_TYPES.get(data["event"], Frame)
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {repr(e.get('input'))[:40]})"
            for e in exc.errors(include_url=False)
        )
        raise FrameError(f"invalid {data['event']} frame: {problems}") from exc
