"""Two-track conversation metrics: exact outputs and totals on constructed timelines."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from processors.analytics.errors import (
    AnalyticsError,
    IllegalTransitionError,
    InvalidInputError,
    OutOfOrderError,
)
from processors.analytics.sweep import Interruption, Monologue, Role, Run, SpeakerChange, TalkConfig
from processors.analytics.talk import (
    CallEnd,
    ConversationState,
    HoldEnded,
    HoldStarted,
    Progress,
    Speech,
    TalkInput,
    fold,
    step,
)
from processors.analytics.totals import open_runs, totals

A, C = Role.AGENT, Role.CUSTOMER

# agent 0-10 s, customer 8-15 s, silence 15-20 s, hold 20-30 s, agent 30-35 s
REFERENCE_CALL: list[TalkInput] = [
    HoldStarted(20_000),
    HoldEnded(30_000),
    Speech(A, 0, 10_000),
    Speech(C, 8_000, 15_000),
    Speech(A, 30_000, 35_000),
    Progress(C, 35_000),
    CallEnd(35_000),
]


def run(items: list[TalkInput], config: TalkConfig | None = None) -> tuple[ConversationState, list[Any]]:
    return fold(items, config)


def test_reference_call_outputs_and_totals() -> None:
    state, outputs = run(REFERENCE_CALL)
    assert outputs == [
        Monologue(A, 0, 8_000),
        Interruption(C, A, 8_000),
        Run("overtalk", 8_000, 10_000),
        SpeakerChange(A, C, 10_000),
        Monologue(C, 10_000, 15_000),
        Run("silence", 15_000, 20_000),
        Run("hold", 20_000, 30_000),
        SpeakerChange(C, A, 30_000),
        Monologue(A, 30_000, 35_000),
    ]
    assert totals(state).to_dict() == {
        "watermark_ms": 35_000,
        "talk_ms": {"AGENT": 15_000, "CUSTOMER": 7_000},
        "silence_ms": 5_000,
        "overtalk_ms": 2_000,
        "hold_ms": 10_000,
        "interruptions": {"AGENT": 0, "CUSTOMER": 1},
        "longest_monologue": {
            "AGENT": {"start_ms": 0, "end_ms": 8_000, "ms": 8_000},
            "CUSTOMER": {"start_ms": 10_000, "end_ms": 15_000, "ms": 5_000},
        },
        "speaker_changes": 2,
        "late_hold_ms": 0,
        "talk_ratio": 15_000 / 22_000,
    }
    assert state.ended_ms == 35_000
    assert [o.to_dict() for o in outputs[:2]] == [
        {"type": "monologue", "role": "AGENT", "start_ms": 0, "end_ms": 8_000},
        {"type": "interruption", "by": "CUSTOMER", "of": "AGENT", "at_ms": 8_000},
    ]


def test_outputs_wait_for_the_joint_watermark() -> None:
    state = ConversationState()
    first = step(state, Speech(A, 0, 1_000))
    assert first.outputs == [] and first.state.watermark_ms == 0  # the customer has told nothing yet
    second = step(first.state, Progress(C, 5_000))
    assert second.outputs == [] and second.state.watermark_ms == 1_000
    third = step(second.state, Progress(A, 1_500))
    assert third.outputs == [] and third.state.watermark_ms == 1_500  # silence since 1000 is still open
    runs = open_runs(third.state)
    assert (runs.at_ms, runs.silence_since, runs.silence_ms) == (1_500, 1_000, 500)
    assert runs.monologue[A] == (0, 1_000)  # within the bridge: the agent may still continue
    fourth = step(third.state, Progress(A, 2_000))
    assert fourth.outputs == [Monologue(A, 0, 1_000)]  # the pause reached the 1 s bridge at 2000
    assert open_runs(fourth.state).monologue[A] is None
    fifth = step(fourth.state, Speech(A, 4_000, 5_500))
    assert fifth.state.watermark_ms == 5_000
    assert fifth.outputs == [Run("silence", 1_000, 4_000)]


def test_hold_is_never_silence_and_splits_silence_runs() -> None:
    items: list[TalkInput] = [
        HoldStarted(3_000),
        HoldEnded(6_000),
        Speech(A, 0, 1_000),
        Speech(C, 9_000, 10_000),
        Progress(A, 10_000),
        CallEnd(10_000),
    ]
    state, outputs = run(items)
    runs = [o for o in outputs if isinstance(o, Run)]
    assert runs == [Run("silence", 1_000, 3_000), Run("hold", 3_000, 6_000), Run("silence", 6_000, 9_000)]
    t = totals(state)
    assert (t.silence_ms, t.hold_ms, t.talk_ms[A], t.talk_ms[C]) == (5_000, 3_000, 1_000, 1_000)


def test_speech_during_hold_is_talk_not_silence() -> None:
    items: list[TalkInput] = [HoldStarted(0), Speech(A, 1_000, 2_000), Progress(C, 4_000), Progress(A, 4_000)]
    state, outputs = run(items)
    state = step(state, HoldEnded(4_000)).state
    state, closing = run_from(state, [CallEnd(4_000)])
    t = totals(state)
    assert (t.talk_ms[A], t.silence_ms, t.hold_ms) == (1_000, 0, 4_000)
    assert outputs == [Monologue(A, 1_000, 2_000)]
    assert closing == [Run("hold", 0, 4_000)]  # the run reached the watermark open; the call end closes it


def run_from(state: ConversationState, items: list[TalkInput]) -> tuple[ConversationState, list[Any]]:
    outputs: list[Any] = []
    for item in items:
        result = step(state, item)
        state = result.state
        outputs.extend(result.outputs)
    return state, outputs


def test_open_hold_is_closed_at_call_end() -> None:
    state, outputs = run([Speech(A, 0, 2_000), Progress(C, 5_000), HoldStarted(5_000), Progress(A, 8_000)])
    assert state.on_hold and state.watermark_ms == 5_000
    state, closing = run_from(state, [Progress(C, 8_000), CallEnd(12_000)])
    assert outputs == [Monologue(A, 0, 2_000)]
    assert closing == [Run("silence", 2_000, 5_000), Run("hold", 5_000, 12_000)]
    assert totals(state).hold_ms == 7_000 and totals(state).silence_ms == 3_000
    assert state.holds[-1].end == 12_000 and not state.on_hold


@pytest.mark.parametrize(
    ("agent", "customer", "expected"),
    [
        ((0, 5_000), (500, 3_000), [Interruption(C, A, 500)]),  # exactly the minimum counts
        ((0, 5_000), (499, 3_000), []),  # the agent spoke only 499 ms
        ((2_000, 5_000), (0, 4_000), [Interruption(A, C, 2_000)]),  # the other way round
        ((0, 5_000), (0, 3_000), []),  # simultaneous starts interrupt nobody
        ((0, 2_000), (2_000, 3_000), []),  # clean hand-over at 2000
    ],
)
def test_interruption_attribution(
    agent: tuple[int, int], customer: tuple[int, int], expected: list[Interruption]
) -> None:
    state, outputs = run([Speech(A, *agent), Speech(C, *customer), CallEnd(6_000)])
    assert [o for o in outputs if isinstance(o, Interruption)] == expected
    t = totals(state)
    assert t.interruptions == {A: sum(i.by is A for i in expected), C: sum(i.by is C for i in expected)}


def test_interruption_needs_continuous_speech_of_the_other() -> None:
    # the agent paused 1000-1100; at 1300 they had spoken for only 200 ms without a break
    items: list[TalkInput] = [Speech(A, 0, 1_000), Speech(A, 1_100, 3_000), Speech(C, 1_300, 2_000)]
    _, outputs = run([*items, CallEnd(3_000)])
    assert [o for o in outputs if isinstance(o, Interruption)] == []
    # abutting segments are continuous speech
    items = [Speech(A, 0, 300), Speech(A, 300, 3_000), Speech(C, 600, 2_000)]
    _, outputs = run([*items, CallEnd(3_000)])
    assert [o for o in outputs if isinstance(o, Interruption)] == [Interruption(C, A, 600)]


@pytest.mark.parametrize(
    ("second_start", "expected"),
    [
        (2_999, [Monologue(A, 0, 5_000)]),  # pause 999 ms < bridge: one monologue
        (3_000, [Monologue(A, 0, 2_000), Monologue(A, 3_000, 5_000)]),  # pause 1000 ms = bridge: two
    ],
)
def test_monologue_bridging(second_start: int, expected: list[Monologue]) -> None:
    state, outputs = run([Speech(A, 0, 2_000), Speech(A, second_start, 5_000), Progress(C, 6_000), CallEnd(6_000)])
    assert [o for o in outputs if isinstance(o, Monologue)] == expected
    assert totals(state).longest_monologue[A] == (expected[0].start_ms, expected[0].end_ms)


def test_monologue_broken_by_the_other_speaking_in_the_pause_and_by_overlap() -> None:
    items: list[TalkInput] = [
        Speech(A, 0, 2_000),
        Speech(C, 2_200, 2_400),  # a short reply in the agent's pause
        Speech(A, 2_500, 6_000),
        Speech(C, 5_000, 5_300),  # a backchannel over the agent
        CallEnd(7_000),
    ]
    state, outputs = run(items)
    assert [o for o in outputs if isinstance(o, Monologue)] == [
        Monologue(A, 0, 2_000),
        Monologue(C, 2_200, 2_400),
        Monologue(A, 2_500, 5_000),
        Monologue(A, 5_300, 6_000),
    ]
    assert totals(state).longest_monologue == {A: (2_500, 5_000), C: (2_200, 2_400)}
    assert [o for o in outputs if isinstance(o, SpeakerChange)] == [
        SpeakerChange(A, C, 2_200),
        SpeakerChange(C, A, 2_500),
    ]


def test_min_monologue_filters_reports_not_the_longest() -> None:
    config = TalkConfig(min_monologue_ms=1_500)
    state, outputs = run([Speech(A, 0, 1_000), Speech(C, 2_000, 4_000), CallEnd(5_000)], config)
    assert [o for o in outputs if isinstance(o, Monologue)] == [Monologue(C, 2_000, 4_000)]
    assert totals(state).longest_monologue[A] == (0, 1_000)


def test_open_monologue_does_not_grow_in_a_bridged_pause() -> None:
    state, _ = run([Speech(A, 0, 2_000), Progress(A, 2_500), Progress(C, 2_500)])
    runs = open_runs(state)
    assert runs.monologue[A] == (0, 2_000) and runs.monologue_ms(A) == 2_000 and runs.monologue_ms(C) == 0
    assert (runs.silence_since, runs.silence_ms, runs.overtalk_ms, runs.hold_ms) == (2_000, 500, 0, 0)


def test_speaker_changes_ignore_overlapped_interjections_and_pauses() -> None:
    items: list[TalkInput] = [
        Speech(A, 0, 3_000),
        Speech(C, 1_000, 1_500),  # inside the agent's talk: no turn
        Speech(A, 4_000, 5_000),  # the agent again after a pause: no turn
        Speech(C, 4_800, 7_000),  # overlap then customer alone: a turn at 5000
        Speech(A, 9_000, 9_500),  # a turn at 9000
        CallEnd(10_000),
    ]
    state, outputs = run(items)
    assert [o for o in outputs if isinstance(o, SpeakerChange)] == [
        SpeakerChange(A, C, 5_000),
        SpeakerChange(C, A, 9_000),
    ]
    assert totals(state).speaker_changes == 2


def test_open_segments_give_runs_at_the_watermark_and_call_end_flushes_them() -> None:
    items: list[TalkInput] = [
        Speech(A, 0, 1_000),
        Progress(A, 4_000, speaking_since_ms=2_000),
        Progress(C, 4_000, speaking_since_ms=3_000),
    ]
    state, outputs = run(items)
    assert outputs == [
        Monologue(A, 0, 1_000),
        Run("silence", 1_000, 2_000),
        Monologue(A, 2_000, 3_000),
        Interruption(C, A, 3_000),
    ]
    runs = open_runs(state)
    assert (runs.at_ms, runs.overtalk_since, runs.overtalk_ms) == (4_000, 3_000, 1_000)
    assert state.sweep.parties[C].speaking_since == 3_000
    # the call ends while both speak: the open overtalk run closes at the end
    ended, closing = run_from(state, [CallEnd(4_000)])
    assert closing == [Run("overtalk", 3_000, 4_000)]
    t = totals(ended)
    assert (t.talk_ms[A], t.talk_ms[C], t.overtalk_ms, t.silence_ms) == (3_000, 1_000, 1_000, 1_000)
    # audio not processed before the end counts as no speech: the open segments stop at their watermarks
    _, closing = run_from(state, [CallEnd(5_000)])
    assert closing == [Run("overtalk", 3_000, 4_000), Run("silence", 4_000, 5_000)]


def test_call_end_closes_open_silence_and_monologues() -> None:
    state, outputs = run([Speech(A, 0, 1_000), Speech(C, 1_000, 2_000), Progress(A, 3_000), CallEnd(4_000)])
    assert outputs == [
        Monologue(A, 0, 1_000),
        SpeakerChange(A, C, 1_000),
        Monologue(C, 1_000, 2_000),
        Run("silence", 2_000, 4_000),
    ]
    assert totals(state).silence_ms == 2_000  # the customer's unprocessed tail counts as no speech


def test_call_end_turns_an_open_segment_into_speech_up_to_its_watermark() -> None:
    state, outputs = run([Progress(A, 2_000, speaking_since_ms=500), Progress(C, 1_000), CallEnd(3_000)])
    assert outputs == [Run("silence", 0, 500), Monologue(A, 500, 2_000), Run("silence", 2_000, 3_000)]
    assert totals(state).talk_ms[A] == 1_500


def test_no_talk_means_no_talk_ratio() -> None:
    state, _ = run([CallEnd(1_000)])
    assert totals(state).talk_ratio is None and "talk_ratio" not in totals(state).to_dict()
    assert totals(state).silence_ms == 1_000


def test_redelivered_inputs_are_ignored() -> None:
    state, _ = run(REFERENCE_CALL[:4])
    for item in [REFERENCE_CALL[2], Speech(A, 0, 5_000), Progress(A, 9_000), HoldStarted(20_000), HoldEnded(30_000)]:
        result = step(state, item)
        assert result.duplicate and result.outputs == []
        assert result.state == type(state)(**{**vars(state), "duplicates": state.duplicates + 1})
        state = result.state
    ended, _ = run(REFERENCE_CALL)
    again = step(ended, CallEnd(35_000))
    assert again.duplicate and again.state.duplicates == 1


def test_late_hold_is_applied_from_the_watermark_and_accounted() -> None:
    state, _ = run([Speech(A, 0, 1_000), Progress(A, 10_000), Progress(C, 10_000)])
    state, outputs = run_from(state, [HoldStarted(8_000), Progress(A, 12_000), Progress(C, 12_000), HoldEnded(11_000)])
    assert state.holds[0].start == 10_000 and state.holds[0].end == 12_000
    assert state.late_hold_ms == 2_000 + 1_000
    assert outputs == [Run("silence", 1_000, 10_000)]
    state, closing = run_from(state, [CallEnd(13_000)])
    assert closing == [Run("hold", 10_000, 12_000), Run("silence", 12_000, 13_000)]
    assert totals(state).hold_ms == 2_000 and totals(state).late_hold_ms == 3_000


@pytest.mark.parametrize(
    ("history", "bad", "error", "message"),
    [
        ([], Speech(A, 500, 500), InvalidInputError, "AGENT segment [500, 500) is empty"),
        ([], Speech(A, -5, 10), InvalidInputError, "start_ms must be a non-negative int of ms, got -5"),
        ([Speech(A, 0, 1_000)], Speech(A, 900, 2_000), OutOfOrderError, "overlaps the previous one ending at 1000"),
        ([Progress(A, 3_000)], Speech(A, 2_000, 4_000), OutOfOrderError, "before the role's watermark 3000"),
        (
            [Progress(A, 3_000, 2_500)],
            Speech(A, 2_600, 4_000),
            OutOfOrderError,
            "does not close the open segment that started at 2500",
        ),
        ([Progress(A, 3_000, 2_500)], Progress(A, 4_000), OutOfOrderError, "without the Speech closing"),
        ([Progress(A, 3_000, 2_500)], Progress(A, 4_000, 2_600), OutOfOrderError, "open segment started at 2500"),
        ([Progress(A, 3_000)], Progress(A, 4_000, 2_000), OutOfOrderError, "outside its new audio [3000, 4000)"),
        ([], HoldEnded(1_000), IllegalTransitionError, "HoldEnded at 1000 ms while the call is not on hold"),
        ([HoldStarted(1_000)], HoldStarted(2_000), IllegalTransitionError, "while the call is on hold"),
        ([HoldStarted(1_000)], HoldEnded(500), OutOfOrderError, "ending at 500 ms before it started at 1000"),
        ([HoldStarted(1_000), HoldEnded(2_000)], HoldStarted(1_500), OutOfOrderError, "previous hold ended at 2000"),
        ([Progress(A, 5_000), Progress(C, 5_000)], CallEnd(4_000), OutOfOrderError, "before the joint watermark"),
        ([CallEnd(1_000)], Speech(A, 2_000, 3_000), IllegalTransitionError, "after the call ended at 1000 ms"),
        ([CallEnd(1_000)], CallEnd(2_000), IllegalTransitionError, "after the call ended at 1000 ms"),
        ([CallEnd(1_000)], HoldStarted(2_000), IllegalTransitionError, "after the call ended at 1000 ms"),
    ],
)
def test_refused_inputs_name_the_value_and_leave_the_state(
    history: list[TalkInput], bad: TalkInput, error: type[AnalyticsError], message: str
) -> None:
    state, _ = run(history)
    before = json.dumps(state.to_dict())
    with pytest.raises(error, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        step(state, bad)
    assert json.dumps(state.to_dict()) == before


def test_unknown_input_and_bad_config_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="do not take str inputs"):
        step(ConversationState(), "Speech")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="monologue_bridge_ms must be >= 0, got -1"):
        TalkConfig(monologue_bridge_ms=-1)
    with pytest.raises(InvalidInputError, match=r"got 1\.5"):
        step(ConversationState(), Progress(A, 1.5))  # type: ignore[arg-type]


def test_state_is_frozen_and_round_trips_through_json() -> None:
    state, _ = run([*REFERENCE_CALL[:3], Progress(C, 9_000, 8_000), HoldStarted(40_000)])
    with pytest.raises(FrozenInstanceError):
        state.ended_ms = 1  # type: ignore[misc]
    again = ConversationState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    assert again.to_dict() == state.to_dict()
