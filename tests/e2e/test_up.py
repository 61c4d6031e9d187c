"""`switchboard up` brings up the broker and every process, and Ctrl-C stops all of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.broker import free_port
from tests.conftest import JARS_DIR, alive


def _children_of(pid: int) -> set[int]:
    """Every live process whose parent chain leads to ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_up_serves_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    api_port, gateway_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_KAFKA_JARS_DIR=str(JARS_DIR),
        SWITCHBOARD_API_PORT=str(api_port),
        SWITCHBOARD_GATEWAY_PORT=str(gateway_port),
        SWITCHBOARD_WORKER_WEB_PORT="0",
        SWITCHBOARD_KAFKA_HEAP="256m",
    )
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 150
        while "Press Ctrl-C" not in log.read_text():
            assert up.poll() is None, f"switchboard up exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"switchboard up not ready:\n{log.read_text()}"
            time.sleep(0.5)
        started = _children_of(up.pid)
        assert len(started) >= 4, f"expected broker, gateway, worker, projector; got {started}"
        key = next(line.split(": ", 1)[1] for line in log.read_text().splitlines() if "API key for client 1" in line)
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
