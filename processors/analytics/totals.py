"""Read-outs of a ``ConversationState``: running totals and the runs still open at the joint watermark (ms)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from processors.analytics.sweep import ROLES, Role
from processors.analytics.talk import ConversationState


@dataclass(frozen=True)
class Totals:
    """Everything final before ``watermark_ms``. Talk includes overlap; silence excludes hold."""

    watermark_ms: int
    talk_ms: Mapping[Role, int]
    silence_ms: int
    overtalk_ms: int
    hold_ms: int
    interruptions: Mapping[Role, int]  # times the role interrupted the other
    longest_monologue: Mapping[Role, tuple[int, int] | None]  # (start_ms, end_ms), completed monologues only
    speaker_changes: int
    late_hold_ms: int

    @property
    def talk_ratio(self) -> float | None:
        """Agent talk / (agent + customer talk); None before anyone spoke."""
        both = self.talk_ms[Role.AGENT] + self.talk_ms[Role.CUSTOMER]
        return self.talk_ms[Role.AGENT] / both if both else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "watermark_ms": self.watermark_ms,
            "talk_ms": {r.value: self.talk_ms[r] for r in ROLES},
            "silence_ms": self.silence_ms,
            "overtalk_ms": self.overtalk_ms,
            "hold_ms": self.hold_ms,
            "interruptions": {r.value: self.interruptions[r] for r in ROLES},
            "longest_monologue": {
                r.value: {"start_ms": m[0], "end_ms": m[1], "ms": m[1] - m[0]}
                for r in ROLES
                if (m := self.longest_monologue[r]) is not None
            },
            "speaker_changes": self.speaker_changes,
            "late_hold_ms": self.late_hold_ms,
        }
        if self.talk_ratio is not None:
            out["talk_ratio"] = self.talk_ratio
        return out


@dataclass(frozen=True)
class OpenRuns:
    """Runs still going at ``at_ms`` (the joint watermark), for rules that fire when a run crosses a threshold."""

    at_ms: int
    silence_since: int | None
    overtalk_since: int | None
    hold_since: int | None
    monologue: Mapping[Role, tuple[int, int] | None]  # (start_ms, last ms the role spoke alone)

    @property
    def silence_ms(self) -> int:
        return 0 if self.silence_since is None else self.at_ms - self.silence_since

    @property
    def overtalk_ms(self) -> int:
        return 0 if self.overtalk_since is None else self.at_ms - self.overtalk_since

    @property
    def hold_ms(self) -> int:
        return 0 if self.hold_since is None else self.at_ms - self.hold_since

    def monologue_ms(self, role: Role) -> int:
        """Length of the role's open monologue; it does not grow during a bridged pause."""
        run = self.monologue[role]
        return 0 if run is None else run[1] - run[0]


def totals(state: ConversationState) -> Totals:
    sweep = state.sweep
    parties = sweep.parties
    return Totals(
        watermark_ms=sweep.cursor_ms,
        talk_ms={r: parties[r].talk_ms for r in ROLES},
        silence_ms=sweep.silence_ms,
        overtalk_ms=sweep.overtalk_ms,
        hold_ms=sweep.hold_ms,
        interruptions={r: parties[r].interruptions for r in ROLES},
        longest_monologue={r: parties[r].longest for r in ROLES},
        speaker_changes=sweep.speaker_changes,
        late_hold_ms=state.late_hold_ms,
    )


def open_runs(state: ConversationState) -> OpenRuns:
    sweep = state.sweep
    monologue: dict[Role, tuple[int, int] | None] = {}
    for role in ROLES:
        party = sweep.parties[role]
        start = party.monologue_start
        monologue[role] = None if start is None else (start, party.monologue_last)
    return OpenRuns(sweep.cursor_ms, sweep.silence_since, sweep.overtalk_since, sweep.hold_since, monologue)
