"""`switchboard up --demo` plays its calls, prints their alerts live and API queries that work; Ctrl-C stops all.

Two calls of 30 s: call 0 is Telnyx (PCMU) with a mediaservice life cycle, call 1 is Cresta. At
30 s every plan has an overtalk section and 12 s of dead air (infra/simulate/plan.py), so under the
default rules each call must raise exactly the kinds ``overtalk`` and ``dead_air``.
"""

from __future__ import annotations

import re
import shlex
import signal
from pathlib import Path
from typing import Any

import httpx

from benchmarks.procs import descendants
from tests.conftest import alive
from tests.e2e.up import start_up

PLANNED = {"dead_air", "overtalk"}
CALL_LINE = re.compile(r"^demo: call (\S+): planned ([^;]+); raised (.+)$")
ALERT_LINE = re.compile(r"^ALERT (RAISED|CLEARED) +(\S+) +call (\S+) media ")


def _check_output(lines: list[str]) -> list[str]:
    """The printed plan comparison and live alerts; returns the demo's call ids (in order)."""
    text = "\n".join(lines)
    assert "demo: calls: 2 started, 2 completed, 0 failed" in lines, text
    assert "demo: errors: 0" in lines, text
    compared = {m[1]: (set(m[2].split(", ")), set(m[3].split(", "))) for m in map(CALL_LINE.match, lines) if m}
    calls = sorted(compared)
    assert len(calls) == 2 and all(re.fullmatch(r"sim-[0-9a-f]{6}-0000[01]", c) for c in calls), text
    assert compared == {call: (PLANNED, PLANNED) for call in calls}, text
    assert "demo: every planned alert was raised" in lines, text
    alerts = [m.groups() for m in map(ALERT_LINE.match, lines) if m]
    raised = {(kind, call) for status, kind, call in alerts if status == "RAISED"}
    assert raised == {(kind, call) for kind in PLANNED for call in calls}, text
    report = lines.index("demo: calls: 2 started, 2 completed, 0 failed")
    assert any(ALERT_LINE.match(line) for line in lines[:report]), f"no alert printed while the calls ran:\n{text}"
    return calls


def _curls(lines: list[str]) -> list[tuple[dict[str, str], str]]:
    """(headers, url) of each printed ``curl -H '...' '<url>'`` line."""
    found = []
    for line in lines[lines.index("demo: every planned alert was raised") :]:
        if line.startswith("  curl "):
            argv = shlex.split(line)
            assert argv[0:2] == ["curl", "-H"] and len(argv) == 4, line
            name, value = argv[2].split(": ", 1)
            found.append(({name: value}, argv[3]))
    return found


def _get(headers: dict[str, str], url: str) -> Any:
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    return response.json()


def _check_queries(lines: list[str], calls: list[str], api_port: int) -> None:
    key = next(line.split(": ", 1)[1] for line in lines if "API key for client 1" in line)
    base = f"http://127.0.0.1:{api_port}/v1/clients/1"
    first = calls[0]
    queries = _curls(lines)
    assert [url for _, url in queries] == [
        f"{base}/calls",
        f"{base}/calls/{first}",
        f"{base}/calls/{first}/segments?kind=SPEECH",
        f"{base}/calls/{first}/metrics",
        f"{base}/alerts?call_id={first}",
    ]
    assert all(headers == {"Authorization": f"Bearer {key}"} for headers, _ in queries)
    listed, session, segments, metrics, alerts = (_get(headers, url) for headers, url in queries)
    assert {c["call_id"]: c["state"] for c in listed["calls"]} == {call: "ENDED" for call in calls}
    assert (session["call_id"], session["state"], session["metrics_final"]) == (first, "ENDED", True)
    assert sorted(session["sources"]) == ["MEDIASERVICE", "TELNYX"]
    assert session["alert_count"] == 2 and session["open_alerts"] == 0
    speech = segments["segments"]
    assert speech and {s["kind"] for s in speech} == {"SPEECH"} and {s["role"] for s in speech} == {"AGENT", "CUSTOMER"}
    assert metrics["call_id"] == first and metrics["metrics"]["final"] is True
    assert metrics["metrics"]["overtalk_ms"] >= 3000 and metrics["metrics"]["silence_ms"] >= 10000
    assert {(a["call_id"], a["rule_kind"], a["status"]) for a in alerts["alerts"]} == {
        (first, kind, "CLEARED") for kind in PLANNED
    }
    refused = httpx.get(queries[1][1], timeout=10)  # the same query without the key
    assert refused.status_code == 401


def test_demo_plays_calls_prints_live_alerts_and_working_queries(tmp_path: Path) -> None:
    running = start_up(tmp_path, "--demo", "--demo-calls", "2", "--demo-seconds", "30")
    up, log, api_port = running.process, running.log, running.api_port
    started: set[int] = set()
    try:
        lines = running.wait_for("demo: done.", timeout_s=180)
        started = descendants(up.pid)
        assert len(started) >= 4, f"expected broker, gateway, worker, projector; got {started}"
        calls = _check_output(lines)
        _check_queries(lines, calls, api_port)

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
    assert "all processes stopped" in log.read_text()
    survivors = {pid for pid in started if alive(pid)}
    assert survivors == set(), f"processes left behind: {survivors}\n{log.read_text()}"
