"""Mediaservice call-control commands as a pure per-call state machine (no I/O, no clock).

``step(state, record_name, record)`` takes a CallEvent, Command or CommandResult of one call and
returns the new frozen state and the actions to perform: ``Dispatch`` (POST the command) and
``Report`` (record a CommandResult without sending anything). The worker marks a command
INFLIGHT in the returned state, makes that state durable, and only then sends it; after the last
attempt it calls ``complete``. A command's life cycle is the table ``TRANSITIONS``.

What the state remembers per call: the tenant, the latest mediaservice ids seen in the call's
events (replyId, connectionId, sessionId, participant ids, domain), the commands waiting for ids
(PENDING), the ones being sent (INFLIGHT) and the last ``DONE_LIMIT`` finished command ids.

Precedence: a value given in the command body (or its ``domain``) always wins; a missing id field
of the op is filled with the latest value learned from the call's events; a command whose ids are
still unknown waits until an event brings them, and fails after ``PENDING_TIMEOUT_MS`` of record
time, when the call ends, or at once when ``PENDING_LIMIT`` commands already wait.

Retry policy (pure): connect failures, 429 and 5xx are retried with exponential backoff up to
``RetryPolicy.max_attempts``; other 4xx fail at once; a failure after the request was sent (read
timeout, dropped connection) has an unknown outcome and is never retried (at most once).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas import CALL_EVENT, COMMAND, COMMAND_RESULT, union_branch

Record = dict[str, Any]

# op -> the id fields it needs; each is taken from the body or else from the call's events.
OPS: Mapping[str, tuple[str, ...]] = {
    "placeivrcall": (),
    "placeremotecall": (),
    "interruptivrcommand": ("replyId", "sessionId"),
    "hangupparticipant": ("participantId", "replyId", "sessionId"),
    "hangupremoteparticipant": ("participantId", "replyId"),
    "splitconnection": ("replyId", "connectionId"),
    "startrecording": ("replyId", "connectionId"),
    "stoprecording": ("replyId", "connectionId"),
    "answerremotecall": ("replyId",),
    "sendremotecallringback": ("replyId",),
    "hangupcall": ("replyId",),
}
LEARNED = (
    "sessionId",
    "traceId",
    "replyId",
    "connectionId",
    "participantId",
    "callerParticipantId",
    "calleeParticipantId",
    "remoteParticipantId",
    "domain",
)
DONE_LIMIT = 1000  # finished command ids remembered per call; an older id sent again would run again
PENDING_LIMIT = 100  # commands per call that may wait for ids at once
PENDING_TIMEOUT_MS = 5 * 60 * 1000  # record time a command may wait for ids
RESPONSE_LIMIT = 2000  # characters of a response body kept in a CommandResult
DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class CommandError(Exception):
    """Base of errors of the command state machine."""


class IllegalTransitionError(CommandError):
    """A command cannot take this transition from its current status."""


class TenantMismatchError(CommandError):
    """A call event names a different tenant than the events before it."""


class UnknownRecordError(CommandError):
    """The step was given a record type it does not handle."""


class Status(StrEnum):
    PENDING = "PENDING"
    INFLIGHT = "INFLIGHT"
    DONE = "DONE"


class Trigger(StrEnum):
    WAIT = "WAIT"  # ids unknown yet
    SEND = "SEND"  # everything known: dispatch
    REFUSE = "REFUSE"  # cannot ever be sent (bad op/body/domain, other tenant, call ended)
    EXPIRE = "EXPIRE"  # waited too long
    COMPLETE = "COMPLETE"  # last attempt recorded
    INTERRUPT = "INTERRUPT"  # found INFLIGHT at the next record: the worker stopped while sending


# (status, trigger) -> next status; None = a command id not seen before (or forgotten).
TRANSITIONS: Mapping[tuple[Status | None, Trigger], Status] = {
    (None, Trigger.WAIT): Status.PENDING,
    (None, Trigger.SEND): Status.INFLIGHT,
    (None, Trigger.REFUSE): Status.DONE,
    (Status.PENDING, Trigger.SEND): Status.INFLIGHT,
    (Status.PENDING, Trigger.REFUSE): Status.DONE,
    (Status.PENDING, Trigger.EXPIRE): Status.DONE,
    (Status.INFLIGHT, Trigger.COMPLETE): Status.DONE,
    (Status.INFLIGHT, Trigger.INTERRUPT): Status.DONE,
}


@dataclass(frozen=True)
class CommandsState:
    """What the dispatcher remembers about one call. Commands are normalised Command records."""

    call_id: str
    cid: int | None = None
    known: Mapping[str, str] = field(default_factory=dict)
    ended: bool = False
    clock_ms: int = 0  # latest record time seen (UTC ms): the pending timeout runs on it
    pending: tuple[Record, ...] = ()
    inflight: tuple[Record, ...] = ()
    done: tuple[str, ...] = ()

    def status(self, command_id: str) -> Status | None:
        """Where a command id is in its life cycle; None when never seen (or forgotten)."""
        if any(c["command_id"] == command_id for c in self.pending):
            return Status.PENDING
        if any(c["command_id"] == command_id for c in self.inflight):
            return Status.INFLIGHT
        return Status.DONE if command_id in self.done else None

    def to_dict(self) -> Record:
        """Plain JSON-able form, for the Faust table."""
        return {
            "call_id": self.call_id,
            "cid": self.cid,
            "known": dict(self.known),
            "ended": self.ended,
            "clock_ms": self.clock_ms,
            "pending": [dict(c) for c in self.pending],
            "inflight": [dict(c) for c in self.inflight],
            "done": list(self.done),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandsState:
        return cls(
            call_id=str(data["call_id"]),
            cid=None if data.get("cid") is None else int(data["cid"]),
            known={str(k): str(v) for k, v in dict(data.get("known", {})).items()},
            ended=bool(data.get("ended", False)),
            clock_ms=int(data.get("clock_ms", 0)),
            pending=tuple(dict(c) for c in data.get("pending", ())),
            inflight=tuple(dict(c) for c in data.get("inflight", ())),
            done=tuple(str(i) for i in data.get("done", ())),
        )


@dataclass(frozen=True)
class Dispatch:
    """POST ``body`` to ``{mediaservice_url}/{domain}/{op}``."""

    command_id: str
    call_id: str
    cid: int
    op: str
    domain: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Report:
    """Record this CommandResult; nothing is sent to the mediaservice."""

    result: Record


Action = Dispatch | Report


@dataclass(frozen=True)
class Step:
    """The new state and the actions, in order."""

    state: CommandsState
    actions: tuple[Action, ...] = ()


def step(state: CommandsState, name: str, record: Mapping[str, Any]) -> Step:
    """Apply one decoded record of the call to its command state."""
    if name == COMMAND_RESULT:
        return Step(state)  # our own output, read back from the shared topic
    if name not in (CALL_EVENT, COMMAND):
        raise UnknownRecordError(f"command state machine does not handle {name} records")
    at = to_ms(record["received_at"] if name == CALL_EVENT else record["requested_at"])
    state, settled = _settle_interrupted(replace(state, clock_ms=max(state.clock_ms, at)))
    if name == CALL_EVENT:
        state = _learn(state, record)
        state, released = _release(state)
        state, expired = _expire(state)
        return Step(state, (*settled, *released, *expired))
    state, expired = _expire(state)
    state, accepted = _accept(state, normalise(record))
    return Step(state, (*settled, *expired, *accepted))


def complete(state: CommandsState, command_id: str) -> CommandsState:
    """The command's last attempt is recorded: INFLIGHT -> DONE."""
    command = next((c for c in state.inflight if c["command_id"] == command_id), {"command_id": command_id})
    return _move(state, command, Trigger.COMPLETE)


def fold(call_id: str, records: Iterable[tuple[str, Mapping[str, Any]]]) -> CommandsState:
    """Rebuild a call's command state from its records, completing every dispatch at once."""
    state = CommandsState(call_id=call_id)
    for name, record in records:
        result = step(state, name, record)
        state = result.state
        for action in result.actions:
            if isinstance(action, Dispatch):
                state = complete(state, action.command_id)
    return state


def normalise(command: Mapping[str, Any]) -> Record:
    """A Command record in the JSON-able shape the state keeps (requested_at as UTC ms)."""
    return {
        "command_id": str(command["command_id"]),
        "call_id": str(command["call_id"]),
        "cid": int(command["cid"]),
        "domain": str(command["domain"]),
        "op": str(command["op"]),
        "body": str(command["body"]),
        "requested_at": to_ms(command["requested_at"]),
    }


def to_ms(value: datetime | int) -> int:
    """UTC ms of a timestamp-millis field (the codec returns datetimes)."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


def result_record(
    command: Dispatch | Mapping[str, Any],
    *,
    attempt: int,
    success: bool,
    http_status: int | None,
    response: str,
    completed_at_ms: int,
) -> Record:
    """A CommandResult. ``attempt`` 0 marks a result recorded without an HTTP attempt of its own."""
    fields = (
        (command.command_id, command.call_id, command.cid, command.op)
        if isinstance(command, Dispatch)
        else (command["command_id"], command["call_id"], command["cid"], command["op"])
    )
    return {
        "command_id": fields[0],
        "call_id": fields[1],
        "cid": fields[2],
        "op": fields[3],
        "attempt": attempt,
        "success": success,
        "http_status": http_status,
        "response": response[:RESPONSE_LIMIT],
        "completed_at": completed_at_ms,
    }


def _move(state: CommandsState, command: Record, trigger: Trigger) -> CommandsState:
    command_id = command["command_id"]
    current = state.status(command_id)
    target = TRANSITIONS.get((current, trigger))
    if target is None:
        raise IllegalTransitionError(
            f"command {command_id} of call {state.call_id} is {current.value if current else 'unknown'}; "
            f"it cannot take {trigger.value}"
        )
    pending = tuple(c for c in state.pending if c["command_id"] != command_id)
    inflight = tuple(c for c in state.inflight if c["command_id"] != command_id)
    done = state.done
    if target is Status.PENDING:
        pending = (*pending, command)
    elif target is Status.INFLIGHT:
        inflight = (*inflight, command)
    else:
        done = (*done, command_id)[-DONE_LIMIT:]
    return replace(state, pending=pending, inflight=inflight, done=done)


def _refusal(state: CommandsState, command: Record, trigger: Trigger, reason: str) -> tuple[CommandsState, Report]:
    result = result_record(
        command, attempt=0, success=False, http_status=None, response=reason, completed_at_ms=state.clock_ms
    )
    return _move(state, command, trigger), Report(result)


def _settle_interrupted(state: CommandsState) -> tuple[CommandsState, list[Action]]:
    """INFLIGHT commands at the start of a step were interrupted: their outcome is unknown; never resent."""
    actions: list[Action] = []
    for command in state.inflight:
        state, report = _refusal(
            state,
            command,
            Trigger.INTERRUPT,
            "outcome unknown: the dispatcher stopped after marking the command as sent; not sent again",
        )
        actions.append(report)
    return state, actions


def _learn(state: CommandsState, event: Mapping[str, Any]) -> CommandsState:
    cid = int(event["cid"])
    if state.cid is not None and cid != state.cid:
        raise TenantMismatchError(
            f"CallEvent {event['event_id']} for call {state.call_id} names tenant {cid}, "
            f"but the call belongs to tenant {state.cid}"
        )
    kind, payload = union_branch(event["payload"])
    known = dict(state.known)
    if event["source"] == "MEDIASERVICE":
        attributes = event.get("attributes") or {}
        known.update({k: str(attributes[k]) for k in LEARNED if attributes.get(k)})
        if kind == "CallAnswered" and payload.get("connection_id"):
            known["connectionId"] = str(payload["connection_id"])
    return replace(state, cid=cid, known=known, ended=state.ended or kind == "CallEnded")


def _accept(state: CommandsState, command: Record) -> tuple[CommandsState, list[Action]]:
    if state.status(command["command_id"]) is not None:
        return state, []  # redelivered or re-issued command id: never executed twice
    problem = _problem(state, command)
    if problem:
        state, report = _refusal(state, command, Trigger.REFUSE, problem)
        return state, [report]
    missing = _missing(state, command)
    if not missing:
        return _dispatch(state, command)
    if state.ended:
        state, report = _refusal(state, command, Trigger.REFUSE, f"call ended; {', '.join(missing)} never known")
        return state, [report]
    if len(state.pending) >= PENDING_LIMIT:
        reason = f"{PENDING_LIMIT} commands already wait for ids of this call"
        state, report = _refusal(state, command, Trigger.REFUSE, reason)
        return state, [report]
    return _move(state, command, Trigger.WAIT), []


def _release(state: CommandsState) -> tuple[CommandsState, list[Action]]:
    """Send the pending commands whose ids are now known; refuse those of another tenant."""
    actions: list[Action] = []
    for command in state.pending:
        problem = _problem(state, command)
        if problem:
            state, report = _refusal(state, command, Trigger.REFUSE, problem)
            actions.append(report)
        elif not _missing(state, command):
            state, sent = _dispatch(state, command)
            actions.extend(sent)
    return state, actions


def _expire(state: CommandsState) -> tuple[CommandsState, list[Action]]:
    actions: list[Action] = []
    for command in state.pending:
        missing = ", ".join(_missing(state, command))
        if state.ended:
            state, report = _refusal(state, command, Trigger.EXPIRE, f"call ended; {missing} never known")
        elif state.clock_ms - command["requested_at"] > PENDING_TIMEOUT_MS:
            reason = f"{missing} still unknown {PENDING_TIMEOUT_MS} ms after the command was requested"
            state, report = _refusal(state, command, Trigger.EXPIRE, reason)
        else:
            continue
        actions.append(report)
    return state, actions


def _problem(state: CommandsState, command: Record) -> str:
    """Why the command can never be sent; empty when it can."""
    if command["op"] not in OPS:
        return f"unknown op {command['op']!r}; valid ops: {', '.join(sorted(OPS))}"
    if state.cid is not None and command["cid"] != state.cid:
        return f"call {state.call_id} belongs to another tenant than {command['cid']}"
    body = _body(command)
    if body is None:
        return f"body is not a JSON object: {command['body'][:200]!r}"
    domain = command["domain"] or state.known.get("domain", "")
    if domain and not DOMAIN.match(domain):
        return f"domain {domain!r} is not a host name"
    return ""


def _missing(state: CommandsState, command: Record) -> list[str]:
    body = _body(command) or {}
    needed = [f for f in OPS[command["op"]] if not body.get(f) and not state.known.get(f)]
    if not command["domain"] and not state.known.get("domain"):
        needed.append("domain")
    return needed


def _dispatch(state: CommandsState, command: Record) -> tuple[CommandsState, list[Action]]:
    body = dict(_body(command) or {})
    for name in OPS[command["op"]]:
        if not body.get(name):
            body[name] = state.known[name]
    action = Dispatch(
        command_id=command["command_id"],
        call_id=command["call_id"],
        cid=command["cid"],
        op=command["op"],
        domain=command["domain"] or state.known["domain"],
        body=body,
    )
    return _move(state, command, Trigger.SEND), [action]


def _body(command: Record) -> dict[str, Any] | None:
    try:
        body = json.loads(command["body"])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- sending: outcome classification and backoff (the worker does the I/O) -----------------------------------------


class Verdict(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    RETRY = "RETRY"  # transient: nothing was executed, try again after a backoff
    FAILED = "FAILED"  # final failure
    UNKNOWN = "UNKNOWN"  # the request may have been executed: never retried


def classify_status(status: int, body: str) -> Verdict:
    """Verdict on an HTTP answer: 2xx succeeds unless its JSON says ``"success": false``; 429/5xx retry."""
    if 200 <= status < 300:
        try:
            parsed = json.loads(body) if body.strip() else {}
        except ValueError:
            parsed = {}  # assumption: a 2xx without a JSON body is still a success
        return Verdict.FAILED if isinstance(parsed, dict) and parsed.get("success") is False else Verdict.SUCCEEDED
    if status == 429 or status >= 500:
        return Verdict.RETRY
    return Verdict.FAILED


def classify_transport(request_sent: bool) -> Verdict:
    """Verdict on a transport failure: before the request left (connect) retry; after it, unknown."""
    return Verdict.UNKNOWN if request_sent else Verdict.RETRY


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff (ms): base, base*factor, ... capped at max_backoff_ms."""

    max_attempts: int = 4
    base_ms: int = 200
    factor: float = 2.0
    max_backoff_ms: int = 5000

    def backoff_ms(self, attempt: int) -> int:
        """Wait (ms) after failed attempt ``attempt`` (1-based) before the next one."""
        return int(min(self.max_backoff_ms, self.base_ms * self.factor ** (attempt - 1)))

    def final(self, verdict: Verdict, attempt: int) -> Verdict:
        """The verdict after ``attempt``: RETRY turns FAILED once the attempts are used up."""
        return Verdict.FAILED if verdict is Verdict.RETRY and attempt >= self.max_attempts else verdict
