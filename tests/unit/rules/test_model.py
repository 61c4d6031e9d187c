"""Rule parsing: defaults, coercion of string params, and errors that name the rule, parameter and value."""

from __future__ import annotations

import json

import pytest

from processors.rules.model import DEFAULT_RULES, KINDS, RuleError, from_record, parse_file, parse_rule, to_record


def test_defaults_are_filled_and_string_params_coerced() -> None:
    r = parse_rule({"rule_id": "x", "kind": "interruptions", "params": {"count": "5", "by_role": "AGENT"}})
    assert r.params == {"count": 5, "window_ms": 60_000, "by_role": "AGENT"}
    assert (r.severity, r.enabled) == ("WARNING", True)
    assert parse_rule({"rule_id": "q", "kind": "low_level", "params": {"max_dbfs": "-38.5"}}).param("max_dbfs") == -38.5


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "dead_air"}, "rule without rule_id"),
        ({"rule_id": "a", "kind": "shouting"}, "rule a: unknown kind 'shouting'; known kinds: call_duration, clipping"),
        ({"rule_id": "a", "kind": "dead_air", "params": {"min_s": 3}}, "unknown parameter(s) ['min_s']"),
        ({"rule_id": "a", "kind": "dead_air", "params": {"min_ms": "ten"}}, "parameter min_ms must be int, got 'ten'"),
        ({"rule_id": "a", "kind": "dead_air", "params": {"min_ms": -5}}, "parameter min_ms must be int, got -5"),
        ({"rule_id": "a", "kind": "dead_air", "params": {"min_ms": 1.5}}, "parameter min_ms must be int, got 1.5"),
        ({"rule_id": "a", "kind": "monologue", "params": {"role": "BOSS"}}, "role must be one of"),
        ({"rule_id": "a", "kind": "dead_air", "severity": "LOUD"}, "unknown severity 'LOUD'"),
    ],
)
def test_bad_rules_are_refused_with_a_message_naming_the_problem(rule: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    assert message in str(caught.value)


def test_record_round_trip_and_duplicate_ids() -> None:
    record = to_record(DEFAULT_RULES, updated_at_ms=5)
    assert record["rules"][0]["params"] == {"min_ms": "10000"}
    assert from_record(record) == DEFAULT_RULES
    record["rules"].append(dict(record["rules"][0]))
    with pytest.raises(RuleError, match="duplicate rule ids"):
        from_record(record)


def test_rules_file() -> None:
    text = json.dumps(
        {"cid": 3, "version": 2, "rules": [{"rule_id": "d", "kind": "dead_air", "params": {"min_ms": 8000}}]}
    )
    parsed = parse_file(text)
    assert (parsed.cid, parsed.version, parsed.rules[0].param("min_ms")) == (3, 2, 8000)
    with pytest.raises(RuleError, match="not valid JSON"):
        parse_file("{")
    with pytest.raises(RuleError, match="must be an object with cid, version and rules"):
        parse_file("[]")


def test_every_kind_documents_every_parameter() -> None:
    assert set(KINDS) == {
        "dead_air", "overtalk", "interruptions", "monologue", "long_hold", "no_media", "low_level", "clipping",
        "call_duration",
    }  # fmt: skip
    assert all(spec.doc for specs in KINDS.values() for spec in specs.values())
