"""Pure parts of the worker: the rulebook, one participant's track, and the call agent's caches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from processors.agents.calls import CompletedCalls, QuietCalls, WorkingPipelines
from processors.pipeline import CallPipeline, PipelineConfig
from processors.rulebook import Rulebook
from processors.rules.model import DEFAULT_RULES, RuleError
from processors.tracks import MediaConfig, RoleTrack
from schemas import CALL_METRICS
from tests.speech import RATE, say


def rule_set(cid: int, version: int, min_ms: int = 5000) -> dict[str, object]:
    return {
        "cid": cid,
        "version": version,
        "rules": [{"rule_id": "da", "kind": "dead_air", "params": {"min_ms": min_ms}}],
    }


def test_rulebook_keeps_the_newest_version_per_tenant() -> None:
    book = Rulebook()
    assert book.for_tenant(7) == DEFAULT_RULES.__class__(cid=7, version=0, rules=DEFAULT_RULES.rules)
    assert book.apply(rule_set(7, 2, 4000)) is not None
    assert book.apply(rule_set(7, 1, 9000)) is None  # older: ignored
    assert book.apply(rule_set(7, 2, 9000)) is None  # same version: ignored
    assert book.for_tenant(7).rules[0].param("min_ms") == 4000
    assert book.for_tenant(8).cid == 8 and book.for_tenant(8).rules == DEFAULT_RULES.rules
    with pytest.raises(RuleError, match="unknown kind"):
        book.apply({"cid": 7, "version": 3, "rules": [{"rule_id": "x", "kind": "nope"}]})
    assert book.for_tenant(7).version == 2  # a bad rule set leaves the previous one in force
    assert book.tenants == [7]


def test_a_track_fills_gaps_with_silence_and_drops_overlaps() -> None:
    voice = say("Hello there, how are you doing today")
    whole = RoleTrack("AGENT", RATE, MediaConfig())
    whole_out = whole.push(np.concatenate((np.zeros(RATE, np.int16), voice)), 0) + whole.flush()

    pieces = RoleTrack("AGENT", RATE, MediaConfig())
    half = voice.size // 2
    out = pieces.push(voice[:half], RATE)  # starts one second in: the first second is filled with silence
    out += pieces.push(voice[half - 400 :], RATE + half - 400)  # 400 samples overlap what was processed
    out += pieces.flush()
    assert (pieces.filled, pieces.dropped) == (RATE, 400)
    assert [(s.start_sample, s.end_sample) for s in out.segments] == [
        (s.start_sample, s.end_sample) for s in whole_out.segments
    ]
    assert [a.start_sample for a in out.activity] == [a.start_sample for a in whole_out.activity]


def test_a_track_at_an_unusual_rate_is_resampled_for_the_vad() -> None:
    track = RoleTrack("CUSTOMER", 11025, MediaConfig())
    assert (track.rate, track.resampler is not None) == (16000, True)
    restored = RoleTrack.from_state(json.loads(json.dumps(track.to_state())), MediaConfig())
    assert restored.rate == 16000 and restored.resampler is not None


def test_working_pipelines_are_used_only_while_they_wrote_the_current_state() -> None:
    cache = WorkingPipelines(limit=2)
    pipe = CallPipeline("c1", PipelineConfig(), DEFAULT_RULES)
    cache.keep("c1", pipe)
    assert cache.get("c1", pipe.to_state()) is pipe
    assert cache.get("c1", {**pipe.to_state(), "records": pipe.records + 1}) is None  # another worker moved on
    assert cache.get("c1", None) is None
    cache.keep("c2", CallPipeline("c2", PipelineConfig(), DEFAULT_RULES))
    cache.keep("c3", CallPipeline("c3", PipelineConfig(), DEFAULT_RULES))
    assert cache.get("c1", pipe.to_state()) is None  # least recently used, evicted at the limit
    cache.drop("c3")
    assert cache.get("c3", {"records": 0}) is None


def test_quiet_calls_are_due_a_tick_after_a_second_without_audio() -> None:
    quiet = QuietCalls()
    quiet.saw("a", 1, last_audio_ms=10_000, ended=False)
    quiet.saw("b", 2, last_audio_ms=10_600, ended=False)
    quiet.saw("c", 1, last_audio_ms=None, ended=False)  # no audio yet: nothing to miss
    assert quiet.due(11_000) == [("a", 1)]
    assert sorted(quiet.due(11_700)) == [("a", 1), ("b", 2)]
    quiet.saw("a", 1, last_audio_ms=10_000, ended=True)
    assert quiet.due(20_000) == [("b", 2)]


def test_a_completed_call_keeps_only_its_facts() -> None:
    from tests.speech import Utterance, build
    from tests.unit.test_pipeline import CALL, RULES, records

    conv = build([Utterance("AGENT", 0.2, "Thank you for calling")], seconds=4.0)
    pipe = CallPipeline(CALL, PipelineConfig(), RULES)
    for name, record in records(conv, [1600]):
        pipe.on_record(name, record)
    live = json.dumps(pipe.to_state())
    pipe.finish()
    done = pipe.to_state()
    assert done["tracks"] == {} and done["decoders"] == {} and len(json.dumps(done)) < len(live) / 4
    again = CallPipeline(CALL, PipelineConfig(), RULES, state=json.loads(json.dumps(done)))
    assert again.ended and again.finish() == [] and again.on_tick(10**13) == []


def test_a_resumed_pipeline_starts_its_wall_clock_waits_again() -> None:
    from tests.speech import Utterance, build
    from tests.unit.test_pipeline import CALL, RULES, records

    conv = build([Utterance("AGENT", 0.2, "Thank you for calling")], seconds=2.0)
    pipe = CallPipeline(CALL, PipelineConfig(), RULES)
    for name, record in records(conv, [1600])[:-1]:  # the call is still going
        pipe.on_record(name, record)
    last = pipe.last_audio_wall_ms
    assert last is not None
    again = CallPipeline(CALL, PipelineConfig(), RULES, state=json.loads(json.dumps(pipe.to_state())))
    again.resume(last + 60_000)  # restarted a minute later, its backlog not yet read
    assert again.last_audio_wall_ms == last + 60_000
    assert again.on_tick(last + 60_500) == []  # no no_media for audio that may still be queued


def test_completed_calls_expire_after_their_retention_once() -> None:
    completed = CompletedCalls(retention_ms=60_000)
    completed.add("a", 1, now_ms=1_000)
    completed.add("a", 1, now_ms=30_000)  # a late duplicate seen after completion does not extend it
    completed.add("b", 2, now_ms=20_000)
    assert completed.due(60_999) == []
    assert completed.due(61_000) == [("a", 1)]
    assert sorted(completed.due(80_000)) == [("a", 1), ("b", 2)]
    completed.forget("a")
    assert completed.due(90_000) == [("b", 2)]
    assert len(completed) == 1


def test_a_restarted_worker_adopts_the_completed_calls_of_its_table() -> None:
    from tests.speech import Utterance, build
    from tests.unit.test_pipeline import CALL, RULES, records

    conv = build([Utterance("AGENT", 0.2, "Thank you for calling")], seconds=4.0)
    pipe = CallPipeline(CALL, PipelineConfig(), RULES)
    for name, record in records(conv, [1600]):
        pipe.on_record(name, record)
    live = json.loads(json.dumps(pipe.to_state()))
    pipe.finish()
    done = json.loads(json.dumps(pipe.to_state()))  # as the table holds them
    completed = CompletedCalls(retention_ms=1_000)
    completed.add("known", 3, now_ms=0)
    completed.adopt([(CALL, done), ("live", live), ("known", done), ("gone", None)], now_ms=5_000)
    assert completed.due(5_999) == [("known", 3)]  # "known" keeps its first expiry
    assert sorted(completed.due(6_000)) == [(CALL, 1), ("known", 3)]


def test_a_worker_that_takes_over_an_ending_call_ticks_it_to_completion_and_drops_calls_it_gave_away() -> None:
    from tests.speech import Utterance, build
    from tests.unit.test_pipeline import CALL, RULES, records

    conv = build([Utterance("AGENT", 0.2, "Thank you for calling")], seconds=4.0)
    pipe = CallPipeline(CALL, PipelineConfig(), RULES)
    for name, record in records(conv, [1600]):
        pipe.on_record(name, record)
    ending = json.loads(json.dumps(pipe.to_state()))  # its CallEnded is in, the grace period not over
    assert ending["ending"] is not None and not ending["ended"]
    pipe.finish()
    done = json.loads(json.dumps(pipe.to_state()))

    quiet = QuietCalls()
    quiet.saw("given-away", 4, last_audio_ms=1_000, ended=False)
    quiet.saw("still-mine", 5, last_audio_ms=1_000, ended=False)
    table = [(CALL, ending), ("done", done), ("still-mine", ending)]
    quiet.adopt(table, now_ms=50_000)
    assert "given-away" not in quiet and "done" not in quiet
    assert sorted(quiet.due(51_000)) == [(CALL, 1), ("still-mine", 5)]  # its own watch is kept, not restarted

    taken_over = CallPipeline(CALL, PipelineConfig(), RULES, state=ending)
    taken_over.resume(50_000)
    assert taken_over.on_tick(51_000) == []  # the grace period runs from the takeover
    outputs = taken_over.on_tick(10**13)
    assert any(name == CALL_METRICS and record["final"] for name, record in outputs)
    saved = json.loads(json.dumps(taken_over.to_state()))  # what the agent persists with those outputs
    assert saved["ended"] and saved["ending"] == ending["ending"]
