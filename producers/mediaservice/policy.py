"""Per-domain decision policy: the file format (``<policies_path>/<domain>.json``), its validation and live reload.

The format is documented in docs/mediaservice-policy.md. A policy is validated completely when it
is loaded (unknown keys, dangling names, bad regexes, unknown template placeholders and
unreachable DTMF options are errors), so deciding never fails on a loaded policy.

``PolicyStore`` re-reads a domain's file when its (mtime, size, inode) changes. A file that does not
load keeps the last good policy of that domain and is logged once per version; a domain whose file
never loaded cannot be served. No file at all means an unknown domain.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from producers.mediaservice.models import CALLBACK_PATHS, CallbackError

log = logging.getLogger(__name__)

DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
PLACEHOLDER = re.compile(r"\{([A-Za-z]+)\}")
PLACEHOLDERS = frozenset({"sessionId", "callId", "domain", "calledParty", "callingParty", "user", "remoteUser"})
CALL_EVENTS = frozenset(
    {
        "callingPartyDrop",
        "calledPartyDrop",
        "callingPartyFailure",
        "calledPartyFailure",
        "callerConnectionSplit",
        "calleeConnectionSplit",
    }
)
Role = Literal["UNSPECIFIED", "AGENT", "CUSTOMER", "BOT", "SUPERVISOR"]
Digits = Annotated[str, Field(pattern=r"^[0-9*#]{1,32}$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Seconds = Annotated[int | float, Field(ge=0)]  # an int stays an int in the answers
SHOWN_ERRORS = 5


class PolicyError(CallbackError):
    """A policy file that cannot be read or is not a valid policy."""


class Strict(BaseModel):
    """Policy files are written by operators: typos (unknown keys, "true" for true) are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Matcher(Strict):
    """Exactly one of: the whole value equals ``exact``, starts with ``prefix``, or fully matches ``regex``."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Matcher:
        given = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a matcher needs exactly one of exact, prefix, regex; got {given or 'none'}")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from exc
        return self

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.exact is not None:
            return value == self.exact
        if self.prefix is not None:
            return value.startswith(self.prefix)
        return re.fullmatch(str(self.regex), value) is not None


class RouteMatch(Strict):
    """All given matchers must match; an empty match matches every call."""

    called_party: Matcher | None = None
    calling_party: Matcher | None = None

    def matches(self, called: str | None, calling: str | None) -> bool:
        return (self.called_party is None or self.called_party.matches(called)) and (
            self.calling_party is None or self.calling_party.matches(calling)
        )


class Action(BaseModel):
    """A newCall / callEvent action object (PROTOCOLS.md 2.4). Vendor fields beyond these pass through as given.

    ``menu`` is Switchboard's own: the IVR menu an ``ivr`` action starts (default: ``ivr.entry_menu``);
    it is never sent to the platform.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    action: Literal["call", "drop", "ivr", "httpcall"]
    destAddr: str | None = None
    dropCode: str | None = None
    callRecording: StrictBool | None = None
    recordingFileName: str | None = None
    maxRingTime: Seconds | None = None
    menu: Name | None = None

    @model_validator(mode="after")
    def _fields_of_action(self) -> Action:
        if self.action == "call" and not self.destAddr:
            raise ValueError("a call action needs destAddr")
        if self.action == "httpcall":
            missing = [k for k in ("codec", "receiveIp", "receivePort") if (self.model_extra or {}).get(k) is None]
            if missing:
                raise ValueError(f"an httpcall action needs {', '.join(missing)}")
        if self.menu is not None and self.action != "ivr":
            raise ValueError(f"menu is only valid on an ivr action, not on {self.action}")
        return self

    def body(self) -> dict[str, Any]:
        """The vendor fields (Switchboard's ``menu`` and unset fields left out)."""
        return self.model_dump(exclude={"menu"}, exclude_none=True)


ActionRef = Name | Action  # a name in ``actions`` or an inline action


class Route(Strict):
    """One newCall rule: the first route whose ``match`` matches decides."""

    match: RouteMatch = RouteMatch()
    action: ActionRef


class NewCallPolicy(Strict):
    routes: list[Route] = []
    default: ActionRef = Action(action="drop", dropCode="busy")


class CallEventPolicy(Strict):
    events: dict[str, ActionRef] = {}
    default: ActionRef = Action(action="drop")


class Phrase(BaseModel):
    """One prompt of an IVR command; fields beyond these pass through as given."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    format: Literal["awstts", "googletts", "file"]
    awsTTSParameters: dict[str, Any] | None = None
    googleTTSParameters: dict[str, Any] | None = None
    fileName: str | None = None

    @model_validator(mode="after")
    def _parameters_of_format(self) -> Phrase:
        needed = {"awstts": "awsTTSParameters", "googletts": "googleTTSParameters", "file": "fileName"}[self.format]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.format} phrase needs {needed}")
        return self

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class DtmfCollection(Strict):
    """How digits are collected while a menu plays (times in s)."""

    maxDigits: int = Field(default=1, ge=1, le=32)
    firstTimeout: Seconds = 10
    betweenTimeout: Seconds = 3
    terminationKey: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = None


class Step(Strict):
    """What a menu option leads to: exactly one of another ``menu``, a ``transfer`` (action name), ``hangup``."""

    menu: Name | None = None
    transfer: Name | None = None
    hangup: StrictBool = False
    phrases: list[Phrase] = []

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [k for k in ("menu", "transfer") if getattr(self, k) is not None] + (["hangup"] if self.hangup else [])
        if len(given) != 1:
            raise ValueError(f"a step needs exactly one of menu, transfer, hangup; got {given or 'none'}")
        return self


class Menu(Strict):
    """A prompt, the digits it collects, and where each answer leads."""

    phrases: list[Phrase] = Field(min_length=1)
    dtmf: DtmfCollection = DtmfCollection()
    options: dict[Digits, Step] = {}
    bargeIn: str | None = "current"
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_phrases: list[Phrase] = []
    on_failure: Step = Step(hangup=True)
    getIVRCommandAfter: Seconds | None = None


class IvrPolicy(Strict):
    entry_menu: Name
    menus: dict[Name, Menu]


class Roles(Strict):
    """Roles given to the two parties of ``/callAnswered`` (a connection to the IVR makes the callee BOT)."""

    caller: Role = "CUSTOMER"
    callee: Role = "AGENT"


class Policy(Strict):
    """Everything one domain's callbacks are answered and recorded with."""

    cid: int = Field(ge=0)
    alarm_path: Name = "alarm"
    session_duration_unit: Literal["s", "ms"] = "s"
    roles: Roles = Roles()
    actions: dict[Name, Action] = {}
    new_call: NewCallPolicy = NewCallPolicy()
    call_event: CallEventPolicy = CallEventPolicy()
    ivr: IvrPolicy | None = None
    call_identifier_reference: Any = None
    remote_call_reference: Any = "{callId}"

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems = [*self._name_problems(), *self._ivr_problems(), *self._template_problems()]
        if self.alarm_path in CALLBACK_PATHS:
            problems.append(f"alarm_path {self.alarm_path!r} is the path of the {self.alarm_path} callback")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def action(self, ref: ActionRef) -> Action:
        """The action a reference names (validated at load, so always found)."""
        return ref if isinstance(ref, Action) else self.actions[ref]

    def _refs(self) -> list[tuple[str, ActionRef]]:
        refs: list[tuple[str, ActionRef]] = [
            (f"new_call.routes[{i}]", r.action) for i, r in enumerate(self.new_call.routes)
        ]
        refs += [("new_call.default", self.new_call.default), ("call_event.default", self.call_event.default)]
        refs += [(f"call_event.events.{event}", ref) for event, ref in self.call_event.events.items()]
        return refs

    def _name_problems(self) -> list[str]:
        problems = [
            f"{where}: no action named {ref!r}"
            for where, ref in self._refs()
            if isinstance(ref, str) and ref not in self.actions
        ]
        problems += [f"call_event.events: unknown event {e!r}" for e in self.call_event.events if e not in CALL_EVENTS]
        return problems

    def _ivr_problems(self) -> list[str]:
        actions = [(w, self.action(r)) for w, r in self._refs() if not isinstance(r, str) or r in self.actions]
        actions += [(f"actions.{name}", a) for name, a in self.actions.items()]
        if self.ivr is None:
            return [f"{where}: an ivr action needs an ivr section" for where, a in actions if a.action == "ivr"]
        menus = self.ivr.menus
        problems = [] if self.ivr.entry_menu in menus else [f"ivr.entry_menu: no menu named {self.ivr.entry_menu!r}"]
        problems += [f"{w}: no menu named {a.menu!r}" for w, a in actions if a.menu is not None and a.menu not in menus]
        for name, menu in menus.items():
            problems += self._menu_problems(f"ivr.menus.{name}", menu, menus)
        return problems

    def _menu_problems(self, where: str, menu: Menu, menus: dict[str, Menu]) -> list[str]:
        """Dangling names in a menu's steps, and options the menu's DTMF collection cannot produce."""
        problems = []
        steps = [(f"options.{digits}", step) for digits, step in menu.options.items()]
        for at, step in [*steps, ("on_failure", menu.on_failure)]:
            if step.menu is not None and step.menu not in menus:
                problems.append(f"{where}.{at}: no menu named {step.menu!r}")
            if step.transfer is not None and step.transfer not in self.actions:
                problems.append(f"{where}.{at}: no action named {step.transfer!r}")
        key, most = menu.dtmf.terminationKey, menu.dtmf.maxDigits
        problems += [
            f"{where}.options.{digits}: cannot be entered with maxDigits {most} and terminationKey {key!r}"
            for digits in menu.options
            if len(digits) > most or (key is not None and key in digits)
        ]
        return problems

    def _template_problems(self) -> list[str]:
        values: list[tuple[str, Any]] = [(f"actions.{n}", a.body()) for n, a in self.actions.items()]
        values += [(w, r.body()) for w, r in self._refs() if isinstance(r, Action)]
        values += [("call_identifier_reference", self.call_identifier_reference)]
        values += [("remote_call_reference", self.remote_call_reference)]
        return [
            f"{where}: unknown placeholder {{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})"
            for where, value in values
            for text in _strings(value)
            for name in PLACEHOLDER.findall(text)
            if name not in PLACEHOLDERS
        ]


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (dict values, list items)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def parse_policy(text: bytes, origin: str) -> Policy:
    """Validate a policy file's content; ``PolicyError`` names the file and the first bad fields."""
    try:
        return Policy.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors()
        shown = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in errors[:SHOWN_ERRORS]
        )
        more = f"; and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
        raise PolicyError(f"{origin}: not a valid policy: {shown}{more}") from exc


Version = tuple[int, int, int]  # (mtime ns, size, inode) of the file a policy was read from


class PolicyStore:
    """The policies of ``directory``, each re-read when its file changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: dict[str, Version] = {}
        self._good: dict[str, Policy] = {}
        self._broken: dict[str, str] = {}

    def get(self, domain: str) -> Policy | None:
        """The domain's policy; None for an unknown domain (no file, or not a host name).

        Raises ``PolicyError`` when the file exists but no version of it ever loaded.
        """
        if not DOMAIN.match(domain) or len(domain) > 253:
            return None
        path = self.directory / f"{domain}.json"
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._forget(domain)
            return None
        except OSError as exc:
            raise PolicyError(f"{path}: cannot stat policy file: {exc}") from exc
        version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._seen.get(domain) != version:
            self._seen[domain] = version
            self._load(domain, path)
        if domain in self._good:
            return self._good[domain]
        raise PolicyError(self._broken[domain])

    def _load(self, domain: str, path: Path) -> None:
        try:
            policy = parse_policy(path.read_bytes(), str(path))
        except (OSError, PolicyError) as exc:
            message = str(exc) if isinstance(exc, PolicyError) else f"{path}: cannot read policy file: {exc}"
            self._broken[domain] = message
            kept = "keeping the last good policy" if domain in self._good else "domain cannot be served"
            log.error("mediaservice policy for %s not loaded (%s): %s", domain, kept, message)
            return
        self._good[domain] = policy
        self._broken.pop(domain, None)
        log.info("mediaservice policy for %s loaded from %s (cid %d)", domain, path, policy.cid)

    def _forget(self, domain: str) -> None:
        self._seen.pop(domain, None)
        self._good.pop(domain, None)
        self._broken.pop(domain, None)
