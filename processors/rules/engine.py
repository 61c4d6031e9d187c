"""The rule engine: observations of one call on media time in, Alert records out. Pure and deterministic.

The analytics layer reports *runs* (silence, overtalk, monologue per role, hold): an open run has no
end yet; a closed run is reported once, in the first observation after it closed. A run rule raises
an alert as soon as a run reaches its threshold — the alert's range is [run start, start +
threshold], independent of when the observation arrived — and clears it (same ``alert_id``, status
CLEARED, range = the whole run) when the run closes. Interruptions, level intervals and call
duration are evaluated the same way, so replaying the same media yields the same alerts whatever
the chunking. Only ``no_media`` is about absence: ``absence()`` is given the wall-clock "now".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.rules.model import Rule, RuleSetDef

_ALERT_NAMESPACE = uuid.UUID("0b7f3e1a-9c4d-4e2b-8f61-2d5a7c9e4b30")

Record = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """An interval on media time (ms); ``end_ms`` is None while it lasts."""

    start_ms: int
    end_ms: int | None = None
    until_ms: int | None = None  # open runs: known to last through here (default: the observation's at_ms)


@dataclass(frozen=True)
class Interruption:
    """``by_role`` started speaking over ``of_role`` at ``at_ms``."""

    at_ms: int
    by_role: str
    of_role: str


@dataclass(frozen=True)
class LevelInterval:
    """Level facts of one role over [start_ms, end_ms)."""

    role: str
    start_ms: int
    end_ms: int
    speech_rms_dbfs: float | None  # RMS of voiced audio; None when nobody spoke (or not measured here)
    clipped_ratio: float | None = None  # share of clipped samples; None when not measured here


@dataclass(frozen=True)
class Observation:
    """What the analytics know of one call up to ``at_ms`` (media time) that they did not report before."""

    at_ms: int
    silence: tuple[Run, ...] = ()
    overtalk: tuple[Run, ...] = ()
    monologue: tuple[tuple[str, Run], ...] = ()
    hold: tuple[Run, ...] = ()
    interruptions: tuple[Interruption, ...] = ()
    levels: tuple[LevelInterval, ...] = ()


@dataclass(frozen=True)
class CallRef:
    """The call the alerts are about; ``origin_ms`` is the wall-clock time (UTC ms) of media time 0."""

    call_id: str
    cid: int
    origin_ms: int


@dataclass(frozen=True)
class RuleState:
    """Per-call engine memory (JSON-able through to_dict/from_dict)."""

    raised: Mapping[str, int] = field(default_factory=dict)  # occurrence key -> start_ms, raised not cleared
    once: frozenset[str] = frozenset()  # rules that fire once per call and did
    overtalk_closed_ms: int = 0
    interruptions: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # rule id -> recent times
    level_runs: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # rule|role -> (start, last end)

    def to_dict(self) -> Record:
        return {
            "raised": dict(self.raised),
            "once": sorted(self.once),
            "overtalk_closed_ms": self.overtalk_closed_ms,
            "interruptions": {k: list(v) for k, v in self.interruptions.items()},
            "level_runs": {k: list(v) for k, v in self.level_runs.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleState:
        return cls(
            raised={str(k): int(v) for k, v in dict(data.get("raised", {})).items()},
            once=frozenset(data.get("once", ())),
            overtalk_closed_ms=int(data.get("overtalk_closed_ms", 0)),
            interruptions={str(k): tuple(int(t) for t in v) for k, v in dict(data.get("interruptions", {})).items()},
            level_runs={str(k): (int(v[0]), int(v[1])) for k, v in dict(data.get("level_runs", {})).items()},
        )


class _Emitter:
    """Collects alert records and the state changes of one evaluation."""

    def __init__(self, call: CallRef, state: RuleState) -> None:
        self.call = call
        self.raised = dict(state.raised)
        self.once = set(state.once)
        self.records: list[Record] = []

    def alert(
        self, rule: Rule, key: str, start: int, end: int, status: str, detected: int, details: Mapping[str, str]
    ) -> None:
        self.records.append(
            {
                "alert_id": str(uuid.uuid5(_ALERT_NAMESPACE, f"{self.call.call_id}\x1f{key}")),
                "rule_id": rule.rule_id,
                "call_id": self.call.call_id,
                "cid": self.call.cid,
                "severity": rule.severity,
                "start_ms": start,
                "end_ms": end,
                "detected_at": self.call.origin_ms + detected,
                "details": {"kind": rule.kind, **{k: str(v) for k, v in rule.params.items()}, **details},
                "status": status,
                "rule_kind": rule.kind,
            }
        )

    def run(self, rule: Rule, key: str, run: Run, at_ms: int, threshold: int, details: Mapping[str, str]) -> None:
        """Raise when the run reaches ``threshold``; clear a raised run when it ends."""
        if run.end_ms is not None:
            length = run.end_ms - run.start_ms
        else:
            length = (run.until_ms if run.until_ms is not None else at_ms) - run.start_ms
        if key not in self.raised and length >= threshold:
            crossed = run.start_ms + threshold
            self.alert(rule, key, run.start_ms, crossed, "RAISED", crossed, {**details, "measured_ms": str(threshold)})
            self.raised[key] = run.start_ms
        if run.end_ms is not None and key in self.raised:
            self.alert(
                rule,
                key,
                run.start_ms,
                run.end_ms,
                "CLEARED",
                run.end_ms,
                {**details, "measured_ms": str(run.end_ms - run.start_ms)},
            )
            del self.raised[key]


def evaluate(rules: RuleSetDef, state: RuleState, obs: Observation, call: CallRef) -> tuple[RuleState, list[Record]]:
    """Apply one observation to every enabled rule: the new state and the Alert records to emit, in order."""
    out = _Emitter(call, state)
    interruptions = dict(state.interruptions)
    level_runs = dict(state.level_runs)
    overtalk_closed = state.overtalk_closed_ms
    for rule in rules.rules:
        if not rule.enabled:
            continue
        if rule.kind in ("dead_air", "long_hold"):
            runs = obs.silence if rule.kind == "dead_air" else obs.hold
            for run in runs:
                out.run(rule, f"{rule.rule_id}|{run.start_ms}", run, obs.at_ms, rule.param("min_ms"), {})
        elif rule.kind == "overtalk":
            _overtalk(rule, obs, out, overtalk_closed)
        elif rule.kind == "monologue":
            for role, run in obs.monologue:
                if rule.param("role") in ("", role):
                    key = f"{rule.rule_id}|{role}|{run.start_ms}"
                    out.run(rule, key, run, obs.at_ms, rule.param("min_ms"), {"role": role})
        elif rule.kind == "interruptions":
            interruptions[rule.rule_id] = _interruptions(rule, obs, out, interruptions.get(rule.rule_id, ()))
        elif rule.kind in ("low_level", "clipping"):
            _levels(rule, obs, out, level_runs)
        elif rule.kind == "call_duration" and rule.rule_id not in out.once and obs.at_ms >= rule.param("max_ms"):
            limit = rule.param("max_ms")
            out.alert(rule, f"{rule.rule_id}|0", 0, limit, "RAISED", limit, {"measured_ms": str(limit)})
            out.once.add(rule.rule_id)
    overtalk_closed += sum(r.end_ms - r.start_ms for r in obs.overtalk if r.end_ms is not None)
    new_state = RuleState(out.raised, frozenset(out.once), overtalk_closed, interruptions, level_runs)
    return new_state, out.records


def _overtalk(rule: Rule, obs: Observation, out: _Emitter, closed_before: int) -> None:
    for run in obs.overtalk:
        out.run(rule, f"{rule.rule_id}|{run.start_ms}", run, obs.at_ms, rule.param("min_ms"), {})
    total_limit = rule.param("total_ms")
    if not total_limit or f"{rule.rule_id}:total" in out.once:
        return
    total = closed_before
    for run in sorted(obs.overtalk, key=lambda r: r.start_ms):
        length = (run.end_ms if run.end_ms is not None else obs.at_ms) - run.start_ms
        if total + length >= total_limit:
            crossed = run.start_ms + (total_limit - total)
            key = f"{rule.rule_id}|total"
            out.alert(rule, key, 0, crossed, "RAISED", crossed, {"total_ms": str(total_limit)})
            out.once.add(f"{rule.rule_id}:total")
            return
        total += length


def _interruptions(rule: Rule, obs: Observation, out: _Emitter, recent: Iterable[int]) -> tuple[int, ...]:
    times = list(recent)
    window, count = rule.param("window_ms"), rule.param("count")
    for hit in sorted(obs.interruptions, key=lambda i: i.at_ms):
        if rule.param("by_role") not in ("", hit.by_role):
            continue
        times = [t for t in times if t > hit.at_ms - window] + [hit.at_ms]
        if len(times) >= count:
            details = {"count": str(len(times)), "by_role": hit.by_role, "of_role": hit.of_role}
            out.alert(rule, f"{rule.rule_id}|{times[0]}", times[0], hit.at_ms, "RAISED", hit.at_ms, details)
            times = []  # the next occurrence needs `count` new interruptions
    return tuple(times)


def _levels(rule: Rule, obs: Observation, out: _Emitter, runs: dict[str, tuple[int, int]]) -> None:
    """Consecutive level intervals of a role meeting the condition form a run; the run rule applies to it."""
    for level in sorted(obs.levels, key=lambda lv: (lv.role, lv.start_ms)):
        if rule.param("role") not in ("", level.role):
            continue
        slot = f"{rule.rule_id}|{level.role}"
        if rule.kind == "low_level":
            hit = level.speech_rms_dbfs is not None and level.speech_rms_dbfs < rule.param("max_dbfs")
            neutral = level.speech_rms_dbfs is None  # no speech: neither extends nor breaks the run
        else:
            hit = level.clipped_ratio is not None and level.clipped_ratio >= rule.param("min_ratio")
            neutral = level.clipped_ratio is None
        current = runs.get(slot)
        if neutral:
            continue
        if hit:
            start = current[0] if current is not None else level.start_ms
            runs[slot] = (start, level.end_ms)
            run = Run(start, None)
            out.run(rule, f"{slot}|{start}", run, level.end_ms, rule.param("min_ms"), {"role": level.role})
        elif current is not None:
            del runs[slot]
            run = Run(current[0], current[1])
            out.run(rule, f"{slot}|{current[0]}", run, current[1], rule.param("min_ms"), {"role": level.role})


def absence(
    rules: RuleSetDef, state: RuleState, call: CallRef, *, silent_for_ms: int, media_at_ms: int
) -> tuple[RuleState, list[Record]]:
    """``no_media`` rules: no audio has arrived for ``silent_for_ms`` (wall clock) while the call is active.

    The occurrence starts at the media position where audio stopped (``media_at_ms``); it clears through
    ``media_resumed`` when audio comes back.
    """
    out = _Emitter(call, state)
    for rule in rules.rules:
        if rule.enabled and rule.kind == "no_media":
            key = f"{rule.rule_id}|{media_at_ms}"
            if key not in out.raised and silent_for_ms >= rule.param("min_ms"):
                details = {"silent_for_ms": str(silent_for_ms)}
                out.alert(rule, key, media_at_ms, media_at_ms, "RAISED", media_at_ms, details)
                out.raised[key] = media_at_ms
    return _with(state, out), out.records


def media_resumed(rules: RuleSetDef, state: RuleState, call: CallRef, *, at_ms: int) -> tuple[RuleState, list[Record]]:
    """Audio arrived again at media time ``at_ms``: clear every raised ``no_media`` occurrence."""
    out = _Emitter(call, state)
    by_id = {r.rule_id: r for r in rules.rules}
    for key, start in sorted(state.raised.items()):
        rule = by_id.get(key.split("|", 1)[0])
        if rule is not None and rule.kind == "no_media":
            out.alert(rule, key, start, max(start, at_ms), "CLEARED", at_ms, {})
            del out.raised[key]
    return _with(state, out), out.records


def close(rules: RuleSetDef, state: RuleState, call: CallRef, *, at_ms: int) -> tuple[RuleState, list[Record]]:
    """The call ended at media time ``at_ms``: clear every occurrence still raised (no run outlives its call)."""
    out = _Emitter(call, state)
    by_id = {r.rule_id: r for r in rules.rules}
    for key, start in sorted(state.raised.items()):
        rule = by_id.get(key.split("|", 1)[0])
        if rule is not None:
            out.alert(rule, key, start, max(start, at_ms), "CLEARED", at_ms, {"closed_by": "call end"})
        del out.raised[key]
    return _with(state, out), out.records


def _with(state: RuleState, out: _Emitter) -> RuleState:
    return RuleState(out.raised, frozenset(out.once), state.overtalk_closed_ms, state.interruptions, state.level_runs)
