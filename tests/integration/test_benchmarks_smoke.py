"""CI smoke run of benchmarks/run.py: one run produces a report with every section, and each section
measured what it says (every record copied or projected, the job completed with the in-process
result, the calls played through a real `switchboard up`). Numbers are not asserted: speed belongs to
the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SECTIONS = (
    "Conditions",
    "End to end",
    "Kafka ceiling",
    "Faust ceiling",
    "G.711",
    "VAD speed",
    "Worker pipeline",
    "Profile",
    "Uploaded-file job",
    "Store ceiling",
    "VAD quality",
)


def test_smoke_run_writes_the_report_with_every_section(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "SWITCHBOARD_KAFKA_BOOTSTRAP": kafka_bootstrap}
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
    done = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    headings = [line[3:] for line in report.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert set(results) == {"conditions", "e2e", "kafka", "faust", "g711", "vad_speed", "pipeline", "profile",
                            "upload_job", "store", "vad_quality"}  # fmt: skip
    assert results["conditions"]["mode"] == "smoke"
    assert results["kafka"]["records"] == 500
    assert [p["vad_engine"] for p in results["pipeline"]] == ["webrtc"]
    step = results["e2e"]["steps"][0]  # two calls through a real `switchboard up`
    assert step["calls"] == 2 and step["simulator"]["calls_completed"] == 2
    assert step["records_seen"]["io.switchboard.calls.SpeechSegment"] > 0
    assert step["latency_ms"]["segment"]["count"] > 0
    assert step["profile"]["samples"] > 0
    report_faust(results["faust"], report)
    report_store(results["store"], report)
    report_upload(results["upload_job"], report)


def report_faust(result: dict[str, Any], report: str) -> None:
    assert (result["records"], result["record_bytes"]) == (1_000, 1_800)
    # our worker's commit policy: its commit interval setting, Faust's default record count
    assert (result["commit_interval_s"], result["commit_every"]) == (0.5, 10_000)
    names = [r["variant"] for r in result["runs"]]
    assert names == [
        "Faust exactly_once",
        "Faust at_least_once",
        "raw transactional, commit 0.5 s",
        "raw transactional, commit 0.1 s",
        "raw plain, commit 0.5 s",
    ]
    for run in result["runs"]:
        assert run["records_per_s"] > 0 and run["span_s"] >= 0 and run["startup_s"] >= 0, run
    rates = {r["variant"]: r["records_per_s"] for r in result["runs"]}
    transactional = [r for r in result["runs"] if "exactly_once" in r["variant"] or "transactional" in r["variant"]]
    assert [r["duplicates"] for r in transactional] == [0, 0, 0]
    assert result["ratios"]["faust_eos_over_raw_transactional"] == round(
        rates["Faust exactly_once"] / rates["raw transactional, commit 0.5 s"], 3
    )
    assert f"| Faust exactly_once | {rates['Faust exactly_once']:,} |" in report


def report_store(result: dict[str, Any], report: str) -> None:
    assert (result["rows"], result["batch_size"], result["partitions"]) == (2_000, 1_000, 4)
    rates = [result[k] for k in ("raw_insert_rows_per_s", "consume_only_rows_per_s", "projector_rows_per_s")]
    assert all(rate > 0 for rate in rates), rates
    raw, consumed, projected = rates
    assert result["ratios"] == {
        "projector_over_raw_insert": round(projected / raw, 3),
        "projector_over_consume_only": round(projected / consumed, 3),
    }
    assert f"| projector (consume, decode, batch, insert, commit) | {projected:,} |" in report


def report_upload(result: dict[str, Any], report: str) -> None:
    assert result["mode"] == "smoke"
    assert result["job"]["status"] == "completed"
    assert result["audio_s"] == 20.0
    assert result["file_bytes"] == 20 * 8000 * 2 * 2 + 44
    assert result["result_summary"]["totalduration_s"] == 20.0
    assert result["checks"]["same_as_in_process"] is True
    assert result["checks"]["talk_ok"] is True
    assert result["checks"]["alerts"] == {"overtalk": {"planned": 1, "raised": 1}}
    assert "same document as in process: True" in report
