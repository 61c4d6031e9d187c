"""The conversation fold over time-ordered pieces of the two-track timeline (integer ms).

A piece is a stretch ``[start, end)`` over which "agent speaks", "customer speaks" and "on hold"
are constant. ``advance`` folds pieces into a frozen ``Sweep`` and returns the facts that became
certain. The fold is split-invariant: cutting a piece in two (same flags) gives the same state and
outputs, so any way the joint watermark happens to advance yields the same result.

Definitions (R is a role, O the other role):
- silence: neither role speaks and the call is not on hold; overtalk: both speak; hold: on hold.
  Each run is reported once, when it ends (``Run``); hold pieces are never silence.
- talk: R speaks (overlap included); speech during hold counts as talk.
- interruption: R starts speaking at t (not speaking just before t) while O is speaking at t and
  O's current continuous speech began at or before ``t - interruption_min_ms``. Attributed to R
  ("R interrupted O at t"). Two roles starting at the same instant interrupt nobody.
- monologue: a maximal stretch in which R speaks alone, bridging R's pauses shorter than
  ``monologue_bridge_ms`` during which nobody speaks (on hold or not); it starts where R begins to
  speak alone and ends where R last spoke alone. It ends when O speaks (overtalk included), when a
  pause reaches the bridge, or at call end. Reported when it ends, if at least ``min_monologue_ms``.
- speaker change: R speaks alone after the last stretch in which O spoke alone (overlaps and
  pauses in between do not count); reported at the start of R's solo stretch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from processors.analytics.errors import InvalidInputError, OutOfOrderError
from processors.analytics.timeline import Piece


class Role(StrEnum):
    AGENT = "AGENT"
    CUSTOMER = "CUSTOMER"


ROLES = (Role.AGENT, Role.CUSTOMER)
OTHER = {Role.AGENT: Role.CUSTOMER, Role.CUSTOMER: Role.AGENT}


@dataclass(frozen=True)
class TalkConfig:
    """Thresholds of the conversation metrics, ms."""

    interruption_min_ms: int = 500
    monologue_bridge_ms: int = 1000
    min_monologue_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("interruption_min_ms", "monologue_bridge_ms", "min_monologue_ms"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {getattr(self, name)}")


RunKind = Literal["silence", "overtalk", "hold"]


@dataclass(frozen=True)
class Run:
    """A closed silence, overtalk or hold run ``[start_ms, end_ms)``."""

    kind: RunKind
    start_ms: int
    end_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "start_ms": self.start_ms, "end_ms": self.end_ms}


@dataclass(frozen=True)
class Interruption:
    """``by`` started speaking over ``of`` at ``at_ms``."""

    by: Role
    of: Role
    at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": "interruption", "by": self.by.value, "of": self.of.value, "at_ms": self.at_ms}


@dataclass(frozen=True)
class Monologue:
    """A completed monologue of ``role`` over ``[start_ms, end_ms)``."""

    role: Role
    start_ms: int
    end_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": "monologue", "role": self.role.value, "start_ms": self.start_ms, "end_ms": self.end_ms}


@dataclass(frozen=True)
class SpeakerChange:
    """The turn passed from ``from_role`` to ``to_role`` at ``at_ms``."""

    from_role: Role
    to_role: Role
    at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": "speaker_change", "from": self.from_role.value, "to": self.to_role.value, "at_ms": self.at_ms}


Output = Run | Interruption | Monologue | SpeakerChange


@dataclass(frozen=True)
class Party:
    """Per-role part of the sweep: running totals and the role's open runs at the cursor."""

    talk_ms: int = 0
    interruptions: int = 0  # times this role interrupted the other
    speaking_since: int | None = None  # start of the continuous speech that reaches the cursor
    monologue_start: int | None = None  # open monologue, if any
    monologue_last: int = 0  # where the open monologue last had this role speaking alone
    longest: tuple[int, int] | None = None  # (start, end) of the longest completed monologue (first wins ties)

    def to_list(self) -> list[Any]:
        longest = None if self.longest is None else list(self.longest)
        return [
            self.talk_ms,
            self.interruptions,
            self.speaking_since,
            self.monologue_start,
            self.monologue_last,
            longest,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> Party:
        longest = None if data[5] is None else (int(data[5][0]), int(data[5][1]))
        return cls(int(data[0]), int(data[1]), _opt(data[2]), _opt(data[3]), int(data[4]), longest)


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


def _parties() -> Mapping[Role, Party]:
    return {role: Party() for role in ROLES}


@dataclass(frozen=True)
class Sweep:
    """The fold's state at ``cursor_ms`` (everything before the cursor is final)."""

    cursor_ms: int = 0
    parties: Mapping[Role, Party] = field(default_factory=_parties)
    silence_since: int | None = None
    overtalk_since: int | None = None
    hold_since: int | None = None
    last_solo: Role | None = None
    silence_ms: int = 0
    overtalk_ms: int = 0
    hold_ms: int = 0
    speaker_changes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cursor_ms": self.cursor_ms,
            "parties": {role.value: self.parties[role].to_list() for role in ROLES},
            "open": [self.silence_since, self.overtalk_since, self.hold_since],
            "last_solo": None if self.last_solo is None else self.last_solo.value,
            "totals": [self.silence_ms, self.overtalk_ms, self.hold_ms, self.speaker_changes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sweep:
        silence, overtalk, hold = (_opt(v) for v in data["open"])
        silence_ms, overtalk_ms, hold_ms, changes = (int(v) for v in data["totals"])
        return cls(
            cursor_ms=int(data["cursor_ms"]),
            parties={role: Party.from_list(data["parties"][role.value]) for role in ROLES},
            silence_since=silence,
            overtalk_since=overtalk,
            hold_since=hold,
            last_solo=None if data["last_solo"] is None else Role(data["last_solo"]),
            silence_ms=silence_ms,
            overtalk_ms=overtalk_ms,
            hold_ms=hold_ms,
            speaker_changes=changes,
        )


def advance(sweep: Sweep, pieces: Iterable[Piece], config: TalkConfig) -> tuple[Sweep, list[Output]]:
    """Fold pieces with flags (agent, customer, hold), contiguous from the cursor, into the sweep."""
    out: list[Output] = []
    for piece in pieces:
        if piece.start != sweep.cursor_ms or piece.end <= piece.start:
            raise OutOfOrderError(f"piece [{piece.start}, {piece.end}) does not continue the cursor {sweep.cursor_ms}")
        sweep = _piece(sweep, piece, config, out)
    return sweep, out


def finish(sweep: Sweep, config: TalkConfig) -> tuple[Sweep, list[Output]]:
    """Close every open run at the cursor (the call ended there)."""
    out: list[Output] = []
    at = sweep.cursor_ms
    parties = {role: _close_monologue(role, p, config, out) for role, p in sweep.parties.items()}
    open_runs: list[tuple[RunKind, int | None]] = [
        ("silence", sweep.silence_since),
        ("overtalk", sweep.overtalk_since),
        ("hold", sweep.hold_since),
    ]
    for kind, since in open_runs:
        if since is not None:
            out.append(Run(kind, since, at))
    return replace(sweep, parties=parties, silence_since=None, overtalk_since=None, hold_since=None), out


def _piece(sweep: Sweep, piece: Piece, config: TalkConfig, out: list[Output]) -> Sweep:
    agent, customer, hold = piece.flags
    speaking = {Role.AGENT: agent, Role.CUSTOMER: customer}
    parties = dict(sweep.parties)
    for role in ROLES:
        if speaking[OTHER[role]]:
            parties[role] = _close_monologue(role, parties[role], config, out)
    runs: dict[RunKind, tuple[int | None, bool]] = {
        "silence": (sweep.silence_since, not (agent or customer or hold)),
        "overtalk": (sweep.overtalk_since, agent and customer),
        "hold": (sweep.hold_since, hold),
    }
    since = {kind: _run(kind, was, now, piece.start, out) for kind, (was, now) in runs.items()}
    for role in ROLES:
        parties[role] = _speech(role, sweep.parties, parties[role], speaking, piece.start, config, out)
    solo = _solo(agent, customer)
    last_solo, changes = sweep.last_solo, sweep.speaker_changes
    if solo is not None:
        changes += _turn(last_solo, solo, piece.start, out)
        last_solo = solo
        party = parties[solo]
        start = party.monologue_start if party.monologue_start is not None else piece.start
        parties[solo] = replace(party, monologue_start=start, monologue_last=piece.end)
    for role in ROLES:
        if speaking[role]:
            parties[role] = replace(parties[role], talk_ms=parties[role].talk_ms + piece.length)
        elif not speaking[OTHER[role]] and piece.end >= parties[role].monologue_last + config.monologue_bridge_ms:
            parties[role] = _close_monologue(role, parties[role], config, out)
    return Sweep(
        cursor_ms=piece.end,
        parties=parties,
        silence_since=since["silence"],
        overtalk_since=since["overtalk"],
        hold_since=since["hold"],
        last_solo=last_solo,
        silence_ms=sweep.silence_ms + (piece.length if runs["silence"][1] else 0),
        overtalk_ms=sweep.overtalk_ms + (piece.length if runs["overtalk"][1] else 0),
        hold_ms=sweep.hold_ms + (piece.length if hold else 0),
        speaker_changes=changes,
    )


def _run(kind: RunKind, since: int | None, now: bool, at: int, out: list[Output]) -> int | None:
    """Start or end a silence/overtalk/hold run at ``at``; returns the run's start while it lasts."""
    if now:
        return since if since is not None else at
    if since is not None:
        out.append(Run(kind, since, at))
    return None


def _speech(
    role: Role,
    before: Mapping[Role, Party],
    party: Party,
    speaking: Mapping[Role, bool],
    at: int,
    config: TalkConfig,
    out: list[Output],
) -> Party:
    """Track the role's continuous speech; an onset over the other's established speech is an interruption."""
    if not speaking[role]:
        return replace(party, speaking_since=None)
    if party.speaking_since is not None:
        return party
    other = OTHER[role]
    other_since = before[other].speaking_since
    if speaking[other] and other_since is not None and at - other_since >= config.interruption_min_ms:
        out.append(Interruption(role, other, at))
        party = replace(party, interruptions=party.interruptions + 1)
    return replace(party, speaking_since=at)


def _turn(last_solo: Role | None, solo: Role, at: int, out: list[Output]) -> int:
    """1 and a SpeakerChange when ``solo`` is not the role that last spoke alone, else 0."""
    if last_solo is None or last_solo is solo:
        return 0
    out.append(SpeakerChange(last_solo, solo, at))
    return 1


def _solo(agent: bool, customer: bool) -> Role | None:
    if agent != customer:
        return Role.AGENT if agent else Role.CUSTOMER
    return None


def _close_monologue(role: Role, party: Party, config: TalkConfig, out: list[Output]) -> Party:
    """End the role's open monologue (if any) where the role last spoke alone."""
    start = party.monologue_start
    if start is None:
        return party
    end = party.monologue_last
    if end - start >= config.min_monologue_ms:
        out.append(Monologue(role, start, end))
    longest = party.longest
    if longest is None or end - start > longest[1] - longest[0]:
        longest = (start, end)
    return replace(party, monologue_start=None, longest=longest)
