"""The end-to-end benchmark's arithmetic: arrival of audio by media time, latencies, lag verdicts, profiles."""

from __future__ import annotations

import pytest

from benchmarks.e2e_analysis import Arrivals, LagSeries, Seen, judge, latencies, percentiles, profile_rows


def _arrivals() -> Arrivals:
    a = Arrivals()
    # track "in": 200 ms chunks at 8 kHz received 1000, 1190, 1420 (added out of order)
    a.add("c1", "in", 1600, 8000, 1190.0)
    a.add("c1", "in", 0, 8000, 1000.0)
    a.add("c1", "in", 3200, 8000, 1420.0)
    # track "out" is G.722 at 16 kHz and lags 50 ms behind
    a.add("c1", "out", 0, 16000, 1050.0)
    a.add("c1", "out", 3200, 16000, 1240.0)
    return a


def test_arrival_of_a_media_time_inside_a_chunk_is_its_receive_time_plus_the_offset() -> None:
    a = _arrivals()
    assert a.at("c1", "in", 0.0) == 1000.0
    assert a.at("c1", "in", 150.0) == 1150.0
    assert a.at("c1", "in", 250.0) == 1240.0  # second chunk: 1190 + 50
    assert a.at("c1", "in", 450.0) == 1470.0
    assert a.at("c1", "out", 210.0) == 1250.0  # start 200 ms at 16 kHz
    assert a.at("c1", "in", -1.0) is None
    assert a.at("c2", "in", 10.0) is None


def test_a_call_level_arrival_waits_for_the_later_track() -> None:
    a = _arrivals()
    assert a.tracks("c1") == ["in", "out"]
    assert a.at_call("c1", 100.0) == 1150.0  # out: 1050 + 100 beats in: 1000 + 100
    assert a.at_call("c1", 250.0) == 1290.0  # out: 1240 + 50 beats in: 1190 + 60 ... 1240
    assert a.at_call("nope", 1.0) is None


def test_latencies_subtract_the_deciding_audio_and_skip_unknown_calls() -> None:
    seen = [
        Seen("segment", "c1", 150.0, 1900.0, 1400.0),
        Seen("alert", "c1", 250.0, 2290.0, 1390.0),
        Seen("segment", "c9", 10.0, 5000.0, 4000.0),  # its audio was never seen
    ]
    assert latencies(seen, _arrivals()) == {
        "segment": [700.0], "segment produced": [200.0], "alert": [1000.0], "alert produced": [100.0]
    }  # fmt: skip


def test_percentiles_of_nothing_and_of_a_hundred_values() -> None:
    assert percentiles([]) == {"count": 0}
    assert percentiles([float(v) for v in range(1, 101)]) == {"count": 100, "p50": 50, "p95": 95, "p99": 99, "max": 100}


def _series(values: list[int]) -> LagSeries:
    series = LagSeries()
    for t, lag in enumerate(values):
        series.add(float(t), lag)
    return series


def test_a_flat_sawtooth_lag_is_sustained() -> None:
    lags = [0, 40, 80, 10, 50, 90, 5, 45, 85, 0, 40, 80] * 3
    verdict = judge(_series(lags), (2.0, 30.0), input_rate=100.0, commit_s=0.5, max_lag_s=5.0)
    assert verdict.sustained, verdict.why


def test_a_growing_lag_is_not_sustained_even_while_small() -> None:
    verdict = judge(_series([10 * t for t in range(40)]), (0.0, 39.0), input_rate=100.0, commit_s=0.5, max_lag_s=5.0)
    assert not verdict.sustained
    assert verdict.why.startswith("lag grew 10.0 rec/s")


def test_a_flat_but_deep_lag_is_not_sustained() -> None:
    verdict = judge(_series([900] * 20), (0.0, 19.0), input_rate=100.0, commit_s=0.5, max_lag_s=5.0)
    assert not verdict.sustained
    assert verdict.why == "lag reached 900 records (9.0 s of input)"


def test_no_input_is_not_a_sustained_step() -> None:
    assert not judge(_series([0] * 10), (0.0, 9.0), 0.0, 0.5, 5.0).sustained


def test_profile_rows_count_self_and_inclusive_shares() -> None:
    raw = "\n".join([
        "<module> (/w/infra/cli.py:3);run (/w/processors/pipeline.py:10);push (/w/processors/tracks.py:5) 6",
        "<module> (/w/infra/cli.py:3);run (/w/processors/pipeline.py:10) 2",
        "<module> (/w/infra/cli.py:3);select (/usr/lib/selectors.py:9) 2",
        "garbage line without a count",
    ])  # fmt: skip
    total, rows = profile_rows(raw)
    assert total == 10
    by_name = {r.function: (r.own, r.inclusive, r.path) for r in rows}
    assert by_name["push (processors/tracks.py)"] == (0.6, 0.6, "/w/processors/tracks.py")
    assert by_name["run (processors/pipeline.py)"] == (0.2, 0.8, "/w/processors/pipeline.py")
    assert by_name["<module> (infra/cli.py)"] == (0.0, 1.0, "/w/infra/cli.py")
    assert by_name["select (lib/selectors.py)"] == (0.2, 0.2, "/usr/lib/selectors.py")
    assert rows[0].function == "<module> (infra/cli.py)"
    assert profile_rows("") == (0, [])


@pytest.mark.parametrize("line", ["a;b", "a;b x", " 5"])
def test_profile_rows_ignore_lines_without_stack_and_count(line: str) -> None:
    assert profile_rows(line) == (0, [])
