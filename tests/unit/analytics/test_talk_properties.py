"""Property tests: any interleaving of the two roles' inputs gives the same outputs and state, and both
agree with a brute-force reference that labels every millisecond."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from processors.analytics.sweep import Interruption, Monologue, Role, Run, SpeakerChange, TalkConfig
from processors.analytics.talk import (
    CallEnd,
    ConversationState,
    HoldEnded,
    HoldStarted,
    Progress,
    Speech,
    TalkInput,
    step,
)
from processors.analytics.totals import totals

A, C = Role.AGENT, Role.CUSTOMER
Mask = npt.NDArray[np.bool_]
CONFIG = TalkConfig(interruption_min_ms=500, monologue_bridge_ms=1000)


def segments(rng: random.Random, end: int) -> list[tuple[int, int]]:
    """Ordered, non-overlapping segments of one role (gaps may be zero: abutting segments)."""
    out: list[tuple[int, int]] = []
    t = rng.randrange(0, 1_500)
    while True:
        length = rng.randrange(50, 3_000)
        if t + length > end - 100:
            return out
        out.append((t, t + length))
        t += length + rng.choice([0, rng.randrange(1, 400), rng.randrange(400, 2_500)])


def role_inputs(rng: random.Random, role: Role, segs: list[tuple[int, int]], end: int) -> list[TalkInput]:
    """One role's inputs in its own order: watermarks in pauses, open segments, then the closed segment."""
    out: list[TalkInput] = []
    previous_end = 0
    for start, stop in segs:
        if rng.random() < 0.5:
            out.append(Progress(role, rng.randrange(previous_end, start + 1)))
        for until in sorted(rng.sample(range(start, stop), k=min(2, stop - start)))[: rng.randrange(0, 3)]:
            out.append(Progress(role, until, speaking_since_ms=start))
        out.append(Speech(role, start, stop))
        previous_end = stop
    out.append(Progress(role, end))
    return out


def holds(rng: random.Random, end: int) -> list[TalkInput]:
    out: list[TalkInput] = []
    t = rng.randrange(0, end)
    for _ in range(rng.randrange(0, 3)):
        stop = rng.randrange(t, min(end, t + 6_000) + 1)
        out += [HoldStarted(t), HoldEnded(stop)]
        t = rng.randrange(stop, end + 1)
    return out


def interleave(rng: random.Random, a: list[TalkInput], c: list[TalkInput]) -> list[TalkInput]:
    a, c, out = list(a), list(c), []
    while a or c:
        source = a if (a and (not c or rng.random() < 0.5)) else c
        out.append(source.pop(0))
    return out


def apply(items: list[TalkInput]) -> tuple[ConversationState, list[Any]]:
    """Fold with a JSON round trip of the state after every step (the Faust table's view)."""
    state, outputs = ConversationState(), []
    for item in items:
        result = step(state, item, CONFIG)
        outputs.extend(result.outputs)
        state = ConversationState.from_dict(json.loads(json.dumps(result.state.to_dict())))
    return state, outputs


# ---------------------------------------------------------------- brute-force reference, one label per ms


def mask(intervals: list[tuple[int, int]], end: int) -> Mask:
    m = np.zeros(end, dtype=bool)
    for s, e in intervals:
        m[s:e] = True
    return m


def runs_of(m: Mask) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], m, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def reference(a: Mask, c: Mask, h: Mask) -> dict[str, Any]:
    speaking = {A: a, C: c}
    interruptions = []
    for role, other in ((A, C), (C, A)):
        for start, _ in runs_of(speaking[role]):
            for o_start, o_end in runs_of(speaking[other]):
                if o_start < start < o_end and start - o_start >= CONFIG.interruption_min_ms:
                    interruptions.append(Interruption(role, other, start))
    solo = [(s, e, A) for s, e in runs_of(a & ~c)] + [(s, e, C) for s, e in runs_of(c & ~a)]
    solo.sort()
    changes = [SpeakerChange(p[2], n[2], n[0]) for p, n in itertools.pairwise(solo) if p[2] != n[2]]
    monologues = []
    for role in (A, C):
        current: list[int] | None = None
        for s, e, r in solo:
            if r is not role:
                continue
            if (
                current is not None
                and s - current[1] < CONFIG.monologue_bridge_ms
                and not (a | c)[current[1] : s].any()
            ):
                current[1] = e
                continue
            if current is not None:
                monologues.append(Monologue(role, current[0], current[1]))
            current = [s, e]
        if current is not None:
            monologues.append(Monologue(role, current[0], current[1]))
    return {
        "talk": {A: int(a.sum()), C: int(c.sum())},
        "silence": [Run("silence", s, e) for s, e in runs_of(~a & ~c & ~h)],
        "overtalk": [Run("overtalk", s, e) for s, e in runs_of(a & c)],
        "hold": [Run("hold", s, e) for s, e in runs_of(h)],
        "interruptions": sorted(interruptions, key=lambda i: (i.at_ms, i.by)),
        "changes": changes,
        "monologues": sorted(monologues, key=lambda m: (m.start_ms, m.role)),
    }


@pytest.mark.parametrize("seed", range(40))
def test_any_interleaving_gives_the_reference_result(seed: int) -> None:
    rng = random.Random(seed)
    end = rng.randrange(5_000, 40_000)
    seg_a, seg_c = segments(rng, end), segments(rng, end)
    hold_items = holds(rng, end)
    inputs_a, inputs_c = role_inputs(rng, A, seg_a, end), role_inputs(rng, C, seg_c, end)
    results = []
    for _ in range(6):
        items = [*hold_items, *interleave(rng, inputs_a, inputs_c), CallEnd(end)]
        results.append(apply(items))
    state, outputs = results[0]
    for other_state, other_outputs in results[1:]:
        assert other_outputs == outputs
        assert other_state.to_dict() == state.to_dict()

    hold_spans = [(h.start, h.end) for h in state.holds]
    assert all(h_end is not None for _, h_end in hold_spans)
    h = mask([(s, e) for s, e in hold_spans if e is not None], end)
    ref = reference(mask(seg_a, end), mask(seg_c, end), h)
    t = totals(state)
    assert dict(t.talk_ms) == ref["talk"]
    assert t.silence_ms == sum(r.end_ms - r.start_ms for r in ref["silence"])
    assert t.overtalk_ms == sum(r.end_ms - r.start_ms for r in ref["overtalk"])
    assert t.hold_ms == int(h.sum())
    assert [o for o in outputs if isinstance(o, Run) and o.kind == "silence"] == ref["silence"]
    assert [o for o in outputs if isinstance(o, Run) and o.kind == "overtalk"] == ref["overtalk"]
    assert [o for o in outputs if isinstance(o, Run) and o.kind == "hold"] == ref["hold"]
    assert (
        sorted((o for o in outputs if isinstance(o, Interruption)), key=lambda i: (i.at_ms, i.by))
        == ref["interruptions"]
    )
    assert [o for o in outputs if isinstance(o, SpeakerChange)] == ref["changes"]
    assert t.speaker_changes == len(ref["changes"])
    assert (
        sorted((o for o in outputs if isinstance(o, Monologue)), key=lambda m: (m.start_ms, m.role))
        == ref["monologues"]
    )
    assert t.interruptions == {r: sum(i.by is r for i in ref["interruptions"]) for r in (A, C)}
    assert state.late_hold_ms == 0


@pytest.mark.parametrize("seed", range(10))
def test_redelivering_every_input_changes_nothing(seed: int) -> None:
    rng = random.Random(1_000 + seed)
    end = rng.randrange(5_000, 20_000)
    inputs_a = role_inputs(rng, A, segments(rng, end), end)
    inputs_c = role_inputs(rng, C, segments(rng, end), end)
    items = [*holds(rng, end), *interleave(rng, inputs_a, inputs_c), CallEnd(end)]
    once_state, once_outputs = apply(items)
    doubled = [x for item in items for x in (item, item)]
    twice_state, twice_outputs = apply(doubled)
    assert twice_outputs == once_outputs
    assert twice_state.duplicates == once_state.duplicates + len(items)
    assert twice_state.to_dict() | {"duplicates": once_state.duplicates} == once_state.to_dict()
