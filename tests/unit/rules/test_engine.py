"""The rule engine on constructed timelines with known answers, at several observation granularities."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from processors.rules.engine import (
    CallRef,
    Interruption,
    LevelInterval,
    Observation,
    RuleState,
    Run,
    absence,
    close,
    evaluate,
    media_resumed,
)
from processors.rules.model import Rule, RuleSetDef

CALL = CallRef(call_id="call-1", cid=7, origin_ms=1_700_000_000_000)


def rules(*items: Rule) -> RuleSetDef:
    return RuleSetDef(cid=7, version=1, rules=items)


def rule(rule_id: str, kind: str, **params: Any) -> Rule:
    from processors.rules.model import parse_rule

    return parse_rule({"rule_id": rule_id, "kind": kind, "severity": "CRITICAL", "params": params})


Interval = tuple[int, int]


def observations(
    end_ms: int,
    step_ms: int,
    *,
    silence: Sequence[Interval] = (),
    overtalk: Sequence[Interval] = (),
    hold: Sequence[Interval] = (),
    monologue: Sequence[tuple[str, Interval]] = (),
) -> list[Observation]:
    """What the analytics contract reports when its watermark advances by ``step_ms``: runs open at the
    watermark without an end, runs that closed since the previous watermark with their end."""

    def report(runs: Iterable[Interval], prev: int, at: int) -> tuple[Run, ...]:
        out = []
        for start, end in runs:
            if start < at and end > at:
                out.append(Run(start, None))
            elif prev < end <= at:
                out.append(Run(start, end))
        return tuple(out)

    obs = []
    prev = 0
    for at in [*range(step_ms, end_ms, step_ms), end_ms]:
        obs.append(
            Observation(
                at_ms=at,
                silence=report(silence, prev, at),
                overtalk=report(overtalk, prev, at),
                hold=report(hold, prev, at),
                monologue=tuple((role, run) for role, iv in monologue for run in report([iv], prev, at)),
            )
        )
        prev = at
    return obs


def run_all(ruleset: RuleSetDef, obs: Iterable[Observation], state: RuleState | None = None) -> list[dict[str, Any]]:
    state = state or RuleState()
    alerts: list[dict[str, Any]] = []
    for o in obs:
        state, out = evaluate(ruleset, state, o, CALL)
        alerts.extend(out)
    return alerts


def summary(alerts: Iterable[dict[str, Any]]) -> list[tuple[str, str, int, int, int]]:
    return [(a["rule_id"], a["status"], a["start_ms"], a["end_ms"], a["detected_at"] - CALL.origin_ms) for a in alerts]


# ---------------------------------------------------------------- run rules


def test_dead_air_raises_at_the_threshold_and_clears_with_the_whole_run() -> None:
    ruleset = rules(rule("da", "dead_air", min_ms=5000))
    alerts = run_all(ruleset, observations(60_000, 200, silence=[(1000, 3000), (10_000, 22_000), (30_000, 35_500)]))
    assert summary(alerts) == [
        ("da", "RAISED", 10_000, 15_000, 15_000),
        ("da", "CLEARED", 10_000, 22_000, 22_000),
        ("da", "RAISED", 30_000, 35_000, 35_000),
        ("da", "CLEARED", 30_000, 35_500, 35_500),
    ]
    raised, cleared = alerts[0], alerts[1]
    assert raised["alert_id"] == cleared["alert_id"]  # one occurrence, marked cleared
    assert alerts[0]["alert_id"] != alerts[2]["alert_id"]
    assert raised["severity"] == "CRITICAL"
    assert raised["rule_kind"] == "dead_air"
    assert raised["details"] == {"kind": "dead_air", "measured_ms": "5000", "min_ms": "5000"}
    assert cleared["details"]["measured_ms"] == "12000"
    assert raised["cid"] == 7 and raised["call_id"] == "call-1"


@pytest.mark.parametrize("step_ms", [20, 200, 1000, 7000, 60_000])
def test_alerts_do_not_depend_on_how_often_the_analytics_report(step_ms: int) -> None:
    ruleset = rules(
        rule("da", "dead_air", min_ms=5000),
        rule("ot", "overtalk", min_ms=2000, total_ms=4500),
        rule("hold", "long_hold", min_ms=10_000),
        rule("mono", "monologue", min_ms=20_000, role="AGENT"),
    )
    timeline = {
        "silence": [(10_000, 22_000)],
        "overtalk": [(1000, 4000), (5000, 6000), (40_000, 41_000)],
        "hold": [(23_000, 34_000)],
        "monologue": [("AGENT", (35_000, 58_000)), ("CUSTOMER", (0, 30_000))],
    }
    reference = run_all(ruleset, observations(60_000, 10, **timeline))  # type: ignore[arg-type]
    assert sorted(summary(run_all(ruleset, observations(60_000, step_ms, **timeline)))) == sorted(  # type: ignore[arg-type]
        summary(reference)
    )
    assert sorted(summary(reference)) == sorted(
        [
            ("da", "RAISED", 10_000, 15_000, 15_000),
            ("da", "CLEARED", 10_000, 22_000, 22_000),
            ("ot", "RAISED", 1000, 3000, 3000),
            ("ot", "CLEARED", 1000, 4000, 4000),
            ("ot", "RAISED", 0, 40_500, 40_500),  # total overtalk 3000 + 1000 + 500 crosses 4500 at 40.5 s
            ("hold", "RAISED", 23_000, 33_000, 33_000),
            ("hold", "CLEARED", 23_000, 34_000, 34_000),
            ("mono", "RAISED", 35_000, 55_000, 55_000),
            ("mono", "CLEARED", 35_000, 58_000, 58_000),
        ]
    )


def test_a_run_that_is_reported_only_once_closed_raises_and_clears_together() -> None:
    ruleset = rules(rule("da", "dead_air", min_ms=5000))
    alerts = run_all(ruleset, [Observation(at_ms=30_000, silence=(Run(2000, 9000),))])
    assert summary(alerts) == [("da", "RAISED", 2000, 7000, 7000), ("da", "CLEARED", 2000, 9000, 9000)]


def test_short_runs_never_fire_and_disabled_rules_never_fire() -> None:
    disabled = Rule("off", "dead_air", "INFO", "", False, {"min_ms": 1})
    ruleset = rules(rule("da", "dead_air", min_ms=5000), disabled)
    assert run_all(ruleset, observations(20_000, 500, silence=[(0, 4999), (6000, 10_000)])) == []


def test_state_survives_a_round_trip_mid_occurrence() -> None:
    ruleset = rules(rule("da", "dead_air", min_ms=5000), rule("i", "interruptions", count=2, window_ms=10_000))
    obs = observations(40_000, 1000, silence=[(10_000, 30_000)])
    obs[5] = Observation(at_ms=obs[5].at_ms, interruptions=(Interruption(5500, "AGENT", "CUSTOMER"),))
    obs[20] = Observation(
        at_ms=obs[20].at_ms, silence=obs[20].silence, interruptions=(Interruption(20_500, "AGENT", "CUSTOMER"),)
    )
    straight = run_all(ruleset, obs)
    state = RuleState()
    resumed: list[dict[str, Any]] = []
    for i, o in enumerate(obs):
        if i in (6, 17):
            state = RuleState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, out = evaluate(ruleset, state, o, CALL)
        resumed.extend(out)
    assert resumed == straight
    assert [a["status"] for a in straight] == ["RAISED", "CLEARED"]  # 5.5 s and 20.5 s are 15 s apart: no alert


# ---------------------------------------------------------------- interruptions


def hits(*spec: tuple[int, str]) -> tuple[Interruption, ...]:
    return tuple(Interruption(at, by, "CUSTOMER" if by == "AGENT" else "AGENT") for at, by in spec)


def test_interruptions_within_a_window_by_role() -> None:
    ruleset = rules(rule("agent-int", "interruptions", count=3, window_ms=30_000, by_role="AGENT"))
    obs = [
        Observation(at_ms=10_000, interruptions=hits((1000, "AGENT"), (2000, "CUSTOMER"), (9000, "AGENT"))),
        Observation(at_ms=40_000, interruptions=hits((35_000, "AGENT"), (36_000, "AGENT"))),
        Observation(at_ms=80_000, interruptions=hits((50_000, "AGENT"), (70_000, "AGENT"), (75_000, "AGENT"))),
    ]
    alerts = run_all(ruleset, obs)
    # 1000 falls out of the window before 35_000; 9000, 35_000, 36_000 fall within 30 s -> fires at 36_000.
    # Then a new occurrence needs three fresh ones: 50_000, 70_000, 75_000 (within 30 s) -> fires at 75_000.
    assert summary(alerts) == [
        ("agent-int", "RAISED", 9000, 36_000, 36_000),
        ("agent-int", "RAISED", 50_000, 75_000, 75_000),
    ]
    assert alerts[0]["details"]["by_role"] == "AGENT"
    assert alerts[0]["details"]["of_role"] == "CUSTOMER"


# ---------------------------------------------------------------- levels


def levels(role: str, values: Sequence[tuple[float | None, float]], step: int = 1000) -> tuple[LevelInterval, ...]:
    return tuple(LevelInterval(role, i * step, (i + 1) * step, rms, clip) for i, (rms, clip) in enumerate(values))


def test_low_level_needs_consecutive_quiet_speech_and_ignores_intervals_without_speech() -> None:
    ruleset = rules(rule("quiet", "low_level", max_dbfs=-40, min_ms=3000, role="CUSTOMER"))
    customer = levels("CUSTOMER", [(-50, 0), (-48, 0), (None, 0), (-45, 0), (-20, 0), (-50, 0), (-50, 0)])
    agent = levels("AGENT", [(-60, 0)] * 7)
    alerts = run_all(ruleset, [Observation(at_ms=7000, levels=customer + agent)])
    # 0-2 s and 3-4 s are quiet speech (2-3 s has no speech and neither extends nor breaks): 4 s -> raises
    # at start + 3000 = 3000 and clears at 4000 when loud speech arrives; 5-7 s is only 2 s long.
    assert summary(alerts) == [("quiet", "RAISED", 0, 3000, 3000), ("quiet", "CLEARED", 0, 4000, 4000)]
    assert alerts[0]["details"]["role"] == "CUSTOMER"


def test_clipping_runs() -> None:
    ruleset = rules(rule("clip", "clipping", min_ratio=0.05, min_ms=2000))
    agent = levels("AGENT", [(-3, 0.2), (-3, 0.1), (-3, 0.0), (-3, 0.06)])
    obs = [Observation(at_ms=2000, levels=agent[:2]), Observation(at_ms=4000, levels=agent[2:])]
    assert summary(run_all(ruleset, obs)) == [("clip", "RAISED", 0, 2000, 2000), ("clip", "CLEARED", 0, 2000, 2000)]


# ---------------------------------------------------------------- duration, absence, call end


def test_call_duration_fires_once() -> None:
    ruleset = rules(rule("long", "call_duration", max_ms=60_000))
    obs = [Observation(at_ms=t) for t in (30_000, 61_234, 90_000, 120_000)]
    assert summary(run_all(ruleset, obs)) == [("long", "RAISED", 0, 60_000, 60_000)]


def test_no_media_raises_on_absence_and_clears_when_audio_resumes() -> None:
    ruleset = rules(rule("nm", "no_media", min_ms=10_000), rule("da", "dead_air", min_ms=1000))
    state = RuleState()
    state, early = absence(ruleset, state, CALL, silent_for_ms=9_999, media_at_ms=42_000)
    assert early == []
    state, raised = absence(ruleset, state, CALL, silent_for_ms=10_000, media_at_ms=42_000)
    state, again = absence(ruleset, state, CALL, silent_for_ms=25_000, media_at_ms=42_000)
    assert again == []  # once per occurrence
    state, cleared = media_resumed(ruleset, state, CALL, at_ms=42_000)
    assert summary(raised + cleared) == [
        ("nm", "RAISED", 42_000, 42_000, 42_000),
        ("nm", "CLEARED", 42_000, 42_000, 42_000),
    ]
    assert raised[0]["details"]["silent_for_ms"] == "10000"
    assert state.raised == {}


def test_call_end_clears_what_is_still_raised() -> None:
    ruleset = rules(rule("hold", "long_hold", min_ms=1000))
    state, out = evaluate(ruleset, RuleState(), Observation(at_ms=5000, hold=(Run(1000, None),)), CALL)
    assert summary(out) == [("hold", "RAISED", 1000, 2000, 2000)]
    state, closing = close(ruleset, state, CALL, at_ms=7000)
    assert summary(closing) == [("hold", "CLEARED", 1000, 7000, 7000)]
    assert closing[0]["details"]["closed_by"] == "call end"
    assert state.raised == {}


def test_replaying_the_same_observations_gives_the_same_alert_ids() -> None:
    ruleset = rules(rule("da", "dead_air", min_ms=2000))
    rng = random.Random(7)
    silences = sorted({(s, s + rng.randint(500, 6000)) for s in range(0, 200_000, 10_000)})
    obs = observations(210_000, 300, silence=silences)
    first, second = run_all(ruleset, obs), run_all(ruleset, obs)
    assert first == second
    assert len({a["alert_id"] for a in first}) == sum(1 for s, e in silences if e - s >= 2000)
