"""`switchboard rules FILE` validates a rules file and publishes it to the rules topic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.settings import Settings
from processors.rules.model import from_record
from tests.harness import read_to_end


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        SWITCHBOARD_KAFKA_BOOTSTRAP=str(settings.kafka_bootstrap), SWITCHBOARD_TOPIC_PREFIX=settings.topic_prefix
    )
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "rules", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_publishes_a_valid_file_and_refuses_a_bad_one(settings: Settings, tmp_path: Path) -> None:
    good = tmp_path / "rules.json"
    good.write_text(
        json.dumps(
            {
                "cid": 2,
                "version": 5,
                "rules": [{"rule_id": "da", "kind": "dead_air", "severity": "CRITICAL", "params": {"min_ms": 7000}}],
            }
        )
    )
    done = run_cli(settings, str(good))
    assert done.returncode == 0, done.stderr
    assert "published 1 rule(s) of tenant 2 at version 5" in done.stdout
    published = await read_to_end(str(settings.kafka_bootstrap), f"{settings.topic_prefix}rules")
    assert [(r.key, r.name) for r in published] == [("2", "io.switchboard.rules.RuleSet")]
    rules = from_record(published[0].record)
    assert (rules.cid, rules.version, rules.rules[0].param("min_ms"), rules.rules[0].severity) == (
        2,
        5,
        7000,
        "CRITICAL",
    )

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cid": 2, "version": 6, "rules": [{"rule_id": "x", "kind": "shouting"}]}))
    refused = run_cli(settings, str(bad))
    assert refused.returncode == 2
    assert "rule x: unknown kind 'shouting'" in refused.stderr
    assert len(await read_to_end(str(settings.kafka_bootstrap), f"{settings.topic_prefix}rules")) == 1
