"""Answers to the decision callbacks, from a domain's policy and the callback alone (pure).

Every answer that can carry ``sessionReferenceId`` carries Switchboard's marker (reference.py): the
call id, and the IVR position where there is one. Nothing else is remembered between callbacks.

- newCall: the first route whose matchers match calledParty / callingParty; else ``new_call.default``
  (built-in: drop with dropCode ``busy``). An ``ivr`` action marks its menu as not yet played.
- callEvent: a transfer chosen in the IVR, on ``calledPartyDrop`` (the IVR leg hung up; in an inbound
  IVR session the IVR is the called party, an assumption), for the remaining party; otherwise
  ``call_event.events[event]``, else ``call_event.default`` (built-in: drop the remaining party).
- getIvrCommand: no marked menu -> the entry menu. A marked menu not played yet -> play it. Else the
  digits since the last flush (``dtmfBuffer`` minus a trailing termination key) pick an option;
  no or unknown digits replay the menu (with ``retry_phrases``) up to ``max_attempts`` plays, then
  ``on_failure`` (built-in: hang up). Every menu command flushes the DTMF buffer, so the buffer
  only ever holds the answer to the marked menu. A domain without ``ivr`` hangs the IVR leg up.
- getCallIdentifier: ``call_identifier_reference`` plus the marker; newRemoteCall:
  ``remote_call_reference`` as configured (no marker: the seed's answer is a plain string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from producers.mediaservice.models import (
    CallbackBody,
    CallEvent,
    GetCallIdentifier,
    GetIvrCommand,
    NewCall,
    NewRemoteCall,
)
from producers.mediaservice.policy import PLACEHOLDER, Action, Menu, Phrase, Policy, Step
from producers.mediaservice.reference import SessionRef

UNSAFE = re.compile(r"[^A-Za-z0-9._+@-]")
TRANSFER_EVENT = "calledPartyDrop"


def template_values(call_id: str, domain: str, body: Mapping[str, Any]) -> dict[str, str]:
    """Placeholder values: ``callId``, ``domain`` and the callback's own fields, made safe for names and URIs
    (characters other than letters, digits and ``._+@-`` become ``_``; an absent field is empty)."""
    values = {"callId": call_id, "domain": domain}
    for name in ("sessionId", "calledParty", "callingParty", "user", "remoteUser"):
        given = body.get(name)
        values[name] = "" if given is None else str(given)
    return {name: UNSAFE.sub("_", value) for name, value in values.items()}


def render(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with ``{placeholder}`` replaced in every string (placeholders are validated at load)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values) for v in value]
    return value


@dataclass(frozen=True)
class Turn:
    """One decision callback: the domain's policy, the call, the session's reference and template values."""

    policy: Policy
    call_id: str
    ref: SessionRef
    values: Mapping[str, str]

    @classmethod
    def of(cls, policy: Policy, body: CallbackBody, call_id: str, domain: str) -> Turn:
        fields = body.model_dump()
        return cls(policy, call_id, SessionRef.parse(body.sessionReferenceId), template_values(call_id, domain, fields))

    def action(self, action: Action) -> dict[str, Any]:
        """An action object with the marker; an ``ivr`` action marks its menu as not yet played."""
        answer: dict[str, Any] = render(action.body(), self.values)
        own = SessionRef.parse(answer["sessionReferenceId"]) if "sessionReferenceId" in answer else self.ref
        if action.action == "ivr":
            assert self.policy.ivr is not None  # validated at load
            answer["sessionReferenceId"] = own.with_state(self.call_id, action.menu or self.policy.ivr.entry_menu)
        else:
            answer["sessionReferenceId"] = own.with_state(self.call_id)
        return answer


def new_call(policy: Policy, body: NewCall, call_id: str, domain: str) -> dict[str, Any]:
    """The action of the first matching route, else of ``new_call.default``."""
    chosen = next(
        (r.action for r in policy.new_call.routes if r.match.matches(body.calledParty, body.callingParty)),
        policy.new_call.default,
    )
    return Turn.of(policy, body, call_id, domain).action(policy.action(chosen))


def call_event(policy: Policy, body: CallEvent, call_id: str, domain: str) -> dict[str, Any]:
    """The pending IVR transfer on ``calledPartyDrop``; else the event's action, else the default."""
    turn = Turn.of(policy, body, call_id, domain)
    transfer = turn.ref.transfer
    if transfer is not None and transfer in policy.actions and body.event == TRANSFER_EVENT:
        return turn.action(policy.actions[transfer])
    return turn.action(policy.action(policy.call_event.events.get(body.event or "", policy.call_event.default)))


def ivr_command(policy: Policy, body: GetIvrCommand, call_id: str, domain: str) -> dict[str, Any]:
    """The next IVR command for the marked menu and the digits entered."""
    turn = Turn.of(policy, body, call_id, domain)
    echo = {"sessionId": body.sessionId or call_id, "replyId": body.replyId}
    ref = turn.ref
    if policy.ivr is None:
        return _without_none({**echo, "sessionReferenceId": ref.with_state(call_id), "hangup": True})
    menus = policy.ivr.menus
    if ref.menu is None or ref.menu not in menus:
        return _play(turn, echo, policy.ivr.entry_menu, 1, [])
    menu = menus[ref.menu]
    if ref.tries == 0:
        return _play(turn, echo, ref.menu, 1, [])
    step = menu.options.get(_entered(body, menu))
    if step is not None:
        return _run(turn, echo, step)
    if ref.tries < menu.max_attempts:
        return _play(turn, echo, ref.menu, ref.tries + 1, menu.retry_phrases)
    return _run(turn, echo, menu.on_failure)


def _entered(body: GetIvrCommand, menu: Menu) -> str:
    """The digits entered for the menu, without a trailing termination key."""
    digits = body.dtmfBuffer or ""
    key = menu.dtmf.terminationKey
    return digits[: -len(key)] if key and digits.endswith(key) else digits


def _play(turn: Turn, echo: dict[str, Any], name: str, attempt: int, before: list[Phrase]) -> dict[str, Any]:
    """Play menu ``name`` (its ``attempt``-th time), collecting digits into a flushed buffer."""
    assert turn.policy.ivr is not None
    menu = turn.policy.ivr.menus[name]
    answer = {
        **echo,
        "sessionReferenceId": turn.ref.with_state(turn.call_id, name, attempt),
        "phrases": [p.body() for p in [*before, *menu.phrases]],
        "dtmf": {"flush": True, **menu.dtmf.model_dump(exclude_none=True)},
        "bargeIn": menu.bargeIn,
        "hangup": False,
        "getIVRCommandAfter": menu.getIVRCommandAfter,
    }
    return _without_none(answer)


def _run(turn: Turn, echo: dict[str, Any], step: Step) -> dict[str, Any]:
    """Go to another menu, or hang the IVR leg up (marking a transfer for the callEvent that follows)."""
    if step.menu is not None:
        return _play(turn, echo, step.menu, 1, step.phrases)
    reference = turn.ref.with_state(turn.call_id, transfer=step.transfer)
    answer = {**echo, "sessionReferenceId": reference, "hangup": True}
    if step.phrases:
        answer["phrases"] = [p.body() for p in step.phrases]
    return _without_none(answer)


def call_identifier(policy: Policy, body: GetCallIdentifier, call_id: str, domain: str) -> dict[str, Any]:
    """``{"sessionId", "sessionReferenceId"}``: ``call_identifier_reference`` with the marker."""
    turn = Turn.of(policy, body, call_id, domain)
    reference = SessionRef.parse(render(policy.call_identifier_reference, turn.values)).with_state(call_id)
    return {"sessionId": body.sessionId or call_id, "sessionReferenceId": reference}


def remote_call(policy: Policy, body: NewRemoteCall, call_id: str, domain: str) -> dict[str, Any]:
    """``{"sessionReferenceId"}``: ``remote_call_reference``, rendered."""
    return {"sessionReferenceId": render(policy.remote_call_reference, Turn.of(policy, body, call_id, domain).values)}


def _without_none(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if v is not None}
