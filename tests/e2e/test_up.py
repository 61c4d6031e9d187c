"""`switchboard up` brings up the broker and every process, and Ctrl-C stops all of them."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from benchmarks.procs import descendants
from tests.conftest import alive
from tests.e2e.up import start_up


def test_up_serves_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    running = start_up(tmp_path)
    up, log, api_port, gateway_port = running.process, running.log, running.api_port, running.gateway_port
    try:
        lines = running.wait_for("Press Ctrl-C", timeout_s=150)
        started = descendants(up.pid)
        assert len(started) >= 4, f"expected broker, gateway, worker, projector; got {started}"
        key = next(line.split(": ", 1)[1] for line in lines if "API key for client 1" in line)
        health = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5)
        assert health.json() == {"status": "ok", "clickhouse": "chdb"}
        assert httpx.get(f"http://127.0.0.1:{gateway_port}/healthz", timeout=5).json() == {"status": "ok"}
        unknown = httpx.get(
            f"http://127.0.0.1:{api_port}/v1/clients/1/calls/none", headers={"Authorization": f"Bearer {key}"}
        )
        assert unknown.status_code == 404

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
    assert "all processes stopped" in log.read_text()
    survivors = {pid for pid in started if alive(pid)}
    assert survivors == set(), f"processes left behind: {survivors}\n{log.read_text()}"
