"""CI smoke run of benchmarks/run.py: it produces a report with every section (numbers are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SECTIONS = (
    "Conditions",
    "Kafka ceiling",
    "G.711",
    "VAD speed",
    "Worker pipeline",
    "Profile",
    "VAD quality",
    "Not measured in this run",
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
    assert set(results) == {"conditions", "kafka", "g711", "vad_speed", "pipeline", "profile", "vad_quality",
                            "not_measured"}  # fmt: skip
    assert results["conditions"]["mode"] == "smoke"
    assert results["kafka"]["records"] == 500
    assert [p["vad_engine"] for p in results["pipeline"]] == ["webrtc"]
