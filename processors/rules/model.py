"""Typed alert rules, parsed from a RuleSet record (params are strings) or a rules file (JSON).

Each rule kind has a parameter model with documented defaults; an unknown kind or a bad parameter
raises ``RuleError`` naming the rule, the parameter and the value. Durations are milliseconds,
levels dBFS, ratios 0..1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROLES = ("AGENT", "CUSTOMER")


class RuleError(Exception):
    """A rule or rule set is not valid."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a rule kind: its type and default (None = required)."""

    kind: type
    default: Any
    doc: str


# kind -> parameter specs. Thresholds are media time (ms) except no_media, which is wall-clock absence.
KINDS: Mapping[str, Mapping[str, ParamSpec]] = {
    "dead_air": {
        "min_ms": ParamSpec(int, 10_000, "silence (nobody speaks, call active and not on hold) lasting this long"),
    },
    "overtalk": {
        "min_ms": ParamSpec(int, 3_000, "both parties speaking continuously this long"),
        "total_ms": ParamSpec(int, 0, "or: overtalk adding up to this much over the call (0 = off)"),
    },
    "interruptions": {
        "count": ParamSpec(int, 3, "this many interruptions ..."),
        "window_ms": ParamSpec(int, 60_000, "... within this window"),
        "by_role": ParamSpec(str, "", "only interruptions made by this role (AGENT/CUSTOMER); empty = either"),
    },
    "monologue": {
        "min_ms": ParamSpec(int, 60_000, "one participant talking continuously this long"),
        "role": ParamSpec(str, "", "only this role; empty = either"),
    },
    "long_hold": {"min_ms": ParamSpec(int, 120_000, "one hold lasting this long")},
    "no_media": {"min_ms": ParamSpec(int, 10_000, "no audio arriving for this long (wall clock) on an active call")},
    "low_level": {
        "max_dbfs": ParamSpec(float, -45.0, "speech level (RMS of voiced audio) below this ..."),
        "min_ms": ParamSpec(int, 10_000, "... for this long"),
        "role": ParamSpec(str, "", "only this role; empty = either"),
    },
    "clipping": {
        "min_ratio": ParamSpec(float, 0.01, "share of clipped samples in a level interval at or above this ..."),
        "min_ms": ParamSpec(int, 3_000, "... for this long"),
        "role": ParamSpec(str, "", "only this role; empty = either"),
    },
    "call_duration": {"max_ms": ParamSpec(int, 1_800_000, "media time of the call reaching this")},
}
SEVERITIES = ("INFO", "WARNING", "CRITICAL")


@dataclass(frozen=True)
class Rule:
    """One validated rule."""

    rule_id: str
    kind: str
    severity: str = "WARNING"
    name: str = ""
    enabled: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        return self.params[name]


@dataclass(frozen=True)
class RuleSetDef:
    """A tenant's rules at one version."""

    cid: int
    version: int
    rules: tuple[Rule, ...]


def parse_rule(data: Mapping[str, Any]) -> Rule:
    """A rule from a RuleSet record's rule or a rules-file entry (params given as strings or numbers)."""
    rule_id = str(data.get("rule_id") or "")
    if not rule_id:
        raise RuleError(f"rule without rule_id: {dict(data)!r}")
    kind = str(data.get("kind", ""))
    specs = KINDS.get(kind)
    if specs is None:
        raise RuleError(f"rule {rule_id}: unknown kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    severity = str(data.get("severity", "WARNING"))
    if severity not in SEVERITIES:
        raise RuleError(f"rule {rule_id}: unknown severity {severity!r}; known: {', '.join(SEVERITIES)}")
    given = dict(data.get("params") or {})
    unknown = set(given) - set(specs)
    if unknown:
        raise RuleError(f"rule {rule_id} ({kind}): unknown parameter(s) {sorted(unknown)}; known: {sorted(specs)}")
    params = {name: _coerce(rule_id, name, spec, given.get(name, spec.default)) for name, spec in specs.items()}
    for role_param in ("role", "by_role"):
        if params.get(role_param) and params[role_param] not in ROLES:
            raise RuleError(f"rule {rule_id}: {role_param} must be one of {ROLES} or empty, got {params[role_param]!r}")
    enabled = data.get("enabled", True)
    if isinstance(enabled, str):
        enabled = enabled.lower() == "true"
    return Rule(rule_id, kind, severity, str(data.get("name", "")), bool(enabled), params)


def _coerce(rule_id: str, name: str, spec: ParamSpec, value: Any) -> Any:
    try:
        if spec.kind is int:
            number = float(value)
            if number != int(number) or number < 0:
                raise ValueError(value)
            return int(number)
        if spec.kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise RuleError(f"rule {rule_id}: parameter {name} must be {spec.kind.__name__}, got {value!r}") from None


def from_record(record: Mapping[str, Any]) -> RuleSetDef:
    """A RuleSet record (as decoded) into typed rules."""
    rules = tuple(parse_rule(r) for r in record.get("rules", ()))
    ids = [r.rule_id for r in rules]
    if len(ids) != len(set(ids)):
        raise RuleError(f"rule set of tenant {record.get('cid')}: duplicate rule ids {sorted(ids)}")
    return RuleSetDef(cid=int(record["cid"]), version=int(record["version"]), rules=rules)


def to_record(rules: RuleSetDef, updated_at_ms: int) -> dict[str, Any]:
    """The RuleSet record of typed rules (params as strings, as the schema stores them)."""
    return {
        "cid": rules.cid,
        "version": rules.version,
        "updated_at": updated_at_ms,
        "rules": [
            {
                "rule_id": r.rule_id,
                "name": r.name,
                "kind": r.kind,
                "severity": r.severity,
                "enabled": r.enabled,
                "params": {k: str(v) for k, v in r.params.items()},
            }
            for r in rules.rules
        ],
    }


def parse_file(text: str) -> RuleSetDef:
    """A rules file: JSON ``{"cid": 1, "version": 3, "rules": [{"rule_id": ..., "kind": ..., "params": {...}}]}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleError(f"rules file is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "cid" not in data or "version" not in data:
        raise RuleError("rules file must be an object with cid, version and rules")
    return from_record({"cid": data["cid"], "version": data["version"], "rules": data.get("rules", [])})


DEFAULT_RULES = RuleSetDef(
    cid=0,
    version=0,
    rules=(
        Rule("dead-air", "dead_air", "WARNING", "Dead air", True, {"min_ms": 10_000}),
        Rule("overtalk", "overtalk", "WARNING", "Overtalk", True, {"min_ms": 3_000, "total_ms": 0}),
        Rule("long-hold", "long_hold", "INFO", "Long hold", True, {"min_ms": 120_000}),
        Rule("no-media", "no_media", "CRITICAL", "No media", True, {"min_ms": 10_000}),
    ),
)
