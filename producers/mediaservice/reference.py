"""Switchboard's state inside a session's ``sessionReferenceId`` (pure).

The gateway remembers nothing between callbacks. What it needs to know about a session travels
with the session: every decision answer sets ``sessionReferenceId`` and the platform copies it
into the session's later callbacks (seed 002: "If this value has been set ... the value is copied
to subsequent callback requests"; that an *answer's* value replaces the session's is an assumption
— the seed shows ``sessionReferenceId`` in the newCall, callEvent, getIvrCommand and
getCallIdentifier answers). Any gateway instance can therefore handle any callback.

The marker, under the key ``switchboard``::

    {"switchboard": {"callId": C, "menu": M, "tries": N, "transfer": A}}

- ``callId``: the canonical call id (the sessionId of the callback we answered). Callbacks that
  carry no ``sessionId`` (``/callAnswered`` documents none) are keyed by it.
- ``menu``/``tries``: the IVR menu the last IVR command played and how often (0 = not played yet).
- ``transfer``: the name of the action an IVR option chose; it is carried out when the IVR leg drops.

The customer's part of the reference is kept: other keys of an object; any other value is
wrapped as ``{"ref": <value>, "switchboard": {...}}``. A reference echoed as JSON text is parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MARKER = "switchboard"


def _json_or_text(text: str) -> Any:
    """JSON text of an object is that object; other text stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SessionRef:
    """A ``sessionReferenceId`` split into the customer's part and Switchboard's state."""

    base: Any = None
    call_id: str | None = None
    menu: str | None = None
    tries: int = 0
    transfer: str | None = None

    @classmethod
    def parse(cls, value: Any) -> SessionRef:
        """Read a reference as the platform echoes it: an object, JSON text of one, or any other value."""
        if isinstance(value, str) and value.startswith("{"):
            value = _json_or_text(value)
        if not isinstance(value, dict):
            return cls(base=value)
        state = value.get(MARKER)
        base = {k: v for k, v in value.items() if k != MARKER}
        if not isinstance(state, dict):
            return cls(base=base)
        tries = state.get("tries")
        return cls(
            base=base,
            call_id=_text(state.get("callId")),
            menu=_text(state.get("menu")),
            tries=tries if isinstance(tries, int) and not isinstance(tries, bool) and tries >= 0 else 0,
            transfer=_text(state.get("transfer")),
        )

    def with_state(
        self, call_id: str, menu: str | None = None, tries: int = 0, transfer: str | None = None
    ) -> dict[str, Any]:
        """The reference to answer with: the customer's part plus exactly this state."""
        state: dict[str, Any] = {"callId": call_id}
        if menu is not None:
            state.update(menu=menu, tries=tries)
        if transfer is not None:
            state["transfer"] = transfer
        if isinstance(self.base, dict):
            return {**self.base, MARKER: state}
        if self.base is None:
            return {MARKER: state}
        return {"ref": self.base, MARKER: state}
