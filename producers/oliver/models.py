"""The Oliver API contract (PROTOCOLS.md §1): statuses, job parameters, tasks, the WebSocket start message.

Query parameters are parsed leniently (strings from the URL, ``calldirection`` as 1/2 or
"incoming"/"outgoing") and re-emitted in the schema's types. Unknown query parameters are kept
(as strings, in the job metadata) unless their name is reserved for what the gateway itself records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from producers.oliver.errors import BadRequestError

AUTH_HEADER = "X-Auth-Token"

# The seed's body for "the system cannot queue the job" (also sent as a text frame on the WebSocket).
SERVICE_UNAVAILABLE = {
    "code": 503,
    "message": "The service is not available at the moment. Please try again later.",
}

FAULTY_PARAMETERS = "client provided faulty parameters"

# Metadata keys the gateway writes itself; a query parameter of that name is refused.
RESERVED_METADATA = frozenset({"mode", "uri", "duration", "sample_rate", "format", "codec", "filename"})


class Status(IntEnum):
    """Oliver process status, kept as the integer on JobTransition records."""

    PENDING = 0
    PROCESSING = 1
    COMPLETED = 2
    FAILED = -1
    ABORTED = -2

    @property
    def message(self) -> str:
        """The human-readable ``statusmsg``."""
        return self.name.lower()

    @property
    def final(self) -> bool:
        """Whether a streaming job's results end with this status (the socket sends ``is_final``)."""
        return self in (Status.COMPLETED, Status.FAILED, Status.ABORTED)


class CallDirection(IntEnum):
    """``calldirection``: 1 incoming, 2 outgoing (coding is an assumption, PROTOCOLS.md §1.2)."""

    INCOMING = 1
    OUTGOING = 2


class Mode(StrEnum):
    BATCH = "batch"
    STREAM = "stream"


class StreamFormat(StrEnum):
    """Audio format announced in ``{"control":"start"}``."""

    RAW = "raw"
    WAV = "wav"
    MP3 = "mp3"


class TaskName(StrEnum):
    STREAM = "stream"
    ALERTS = "alerts"


class _TaskOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    activate: bool


class _Task(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: TaskName
    options: _TaskOptions


@dataclass(frozen=True)
class Tasks:
    """Which outputs a streaming job pushes: raw stream outputs (default on) and alerts (default off)."""

    stream: bool = True
    alerts: bool = False

    @classmethod
    def parse(cls, text: str) -> Tasks:
        """Tasks from the ``tasks`` query parameter: a JSON array of ``{"name", "options": {"activate"}}``."""
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise BadRequestError(f"tasks is not valid JSON: {text!r} ({exc})") from exc
        if not isinstance(items, list):
            raise BadRequestError(f"tasks must be a JSON array of tasks, got {text!r}")
        defaults = cls()
        active = {TaskName.STREAM: defaults.stream, TaskName.ALERTS: defaults.alerts}
        seen: set[TaskName] = set()
        for item in items:
            try:
                task = _Task.model_validate(item)
            except ValidationError as exc:
                raise BadRequestError(f"tasks entry {json.dumps(item)} is invalid: {describe(exc)}") from exc
            if task.name in seen:
                raise BadRequestError(f"tasks names {task.name.value!r} more than once")
            seen.add(task.name)
            active[task.name] = task.options.activate
        return cls(stream=active[TaskName.STREAM], alerts=active[TaskName.ALERTS])

    def as_list(self) -> list[dict[str, Any]]:
        """The effective tasks in the vendor's layout."""
        return [
            {"name": TaskName.STREAM.value, "options": {"activate": self.stream}},
            {"name": TaskName.ALERTS.value, "options": {"activate": self.alerts}},
        ]

    def as_json(self) -> str:
        return json.dumps(self.as_list(), separators=(",", ":"))


class ProcessParams(BaseModel):
    """Query parameters of both create calls (PROTOCOLS.md §1.2)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    channels: int
    calldirection: CallDirection
    agent_id: str | None = Field(default=None, alias="agentId")
    agent_team: str | None = Field(default=None, alias="agentTeam")
    customer_id: str | None = Field(default=None, alias="customerId")
    customer_ind: str | None = Field(default=None, alias="customerInd")
    campaign_id: str | None = Field(default=None, alias="campaignId")
    name: str | None = None
    ani: str | None = Field(default=None, alias="ANI")
    calltype: str | None = None
    calltime: datetime | None = None
    timezone: int | None = Field(default=None, ge=-12, le=14)

    @field_validator("channels")
    @classmethod
    def _one_or_two(cls, value: int) -> int:
        if value not in (1, 2):
            raise ValueError(f"must be 1 or 2, got {value}")
        return value

    @field_validator("calldirection", mode="before")
    @classmethod
    def _direction_by_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            named = {"incoming": 1, "inbound": 1, "outgoing": 2, "outbound": 2}
            return named.get(value.strip().lower(), value)
        return value

    @classmethod
    def from_query(cls: type[P], items: list[tuple[str, str]]) -> P:
        """Parse URL query items (each name at most once)."""
        return _parse(cls, items)

    def extras(self) -> dict[str, str]:
        """Unknown query parameters, as given."""
        return {k: str(v) for k, v in (self.model_extra or {}).items()}

    def echo(self) -> dict[str, Any]:
        """The given inputs as the process record shows them (vendor names and types; absent ones omitted)."""
        out = self.model_dump(
            by_alias=True, exclude_none=True, exclude=set(self.model_extra or ()) | {"tasks"}, mode="json"
        )
        out["calldirection"] = int(self.calldirection)
        if self.calltime is not None:
            out["calltime"] = self.calltime.isoformat()
        return out

    def metadata(self) -> dict[str, str]:
        """The given inputs (and unknown parameters) as JobTransition metadata strings."""
        return {**self.extras(), **{k: str(v) for k, v in ProcessParams.echo(self).items()}}


class StreamParams(ProcessParams):
    """``POST /process/stream`` also takes ``tasks``."""

    tasks: Tasks = Field(default_factory=Tasks)

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_from_json(cls, value: Any) -> Any:
        return Tasks.parse(value) if isinstance(value, str) else value

    def echo(self) -> dict[str, Any]:
        return {**super().echo(), "tasks": self.tasks.as_list()}

    def metadata(self) -> dict[str, str]:
        return {**super().metadata(), "tasks": self.tasks.as_json()}


class StartControl(BaseModel):
    """``{"control":"start","pid":..,"format":"raw"|"wav"|"mp3","channels":1|2}``; channels default to the job's."""

    model_config = ConfigDict(extra="allow")

    pid: int = Field(gt=0, lt=1 << 63)
    format: StreamFormat = StreamFormat.RAW
    channels: int | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _format_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("channels")
    @classmethod
    def _one_or_two(cls, value: int | None) -> int | None:
        if value is not None and value not in (1, 2):
            raise ValueError(f"must be 1 or 2, got {value}")
        return value


@dataclass
class JobInfo:
    """What a socket needs to know about a streaming job, read back from its queued JobTransition."""

    pid: int
    cid: int
    mode: str
    channels: int
    tasks: Tasks
    metadata: Mapping[str, str] = field(default_factory=dict)
    status: int = Status.PENDING


def describe(exc: ValidationError) -> str:
    """One line naming each bad field, what is wrong and the value given."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "value"
        given = error.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        parts.append(f"{where}: {error['msg']}{shown}")
    return "; ".join(parts)


P = TypeVar("P", bound=ProcessParams)


def _parse(model: type[P], items: list[tuple[str, str]]) -> P:
    given: dict[str, str] = {}
    for key, value in items:
        if key == AUTH_HEADER:
            continue  # a credential is never job metadata
        if key in given:
            raise BadRequestError(f"query parameter {key!r} is given more than once")
        if key in RESERVED_METADATA:
            raise BadRequestError(f"query parameter {key!r} is reserved (the gateway records it itself)")
        given[key] = value
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise BadRequestError(f"invalid query parameters: {describe(exc)}") from exc
