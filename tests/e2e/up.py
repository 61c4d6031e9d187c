"""`switchboard up` as a real subprocess tree for the e2e tests: start it and wait for its output
(``benchmarks.procs.descendants`` lists its processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infra.broker import free_port
from tests.conftest import JARS_DIR


@dataclass
class Up:
    """A running ``switchboard up``: its process, its output file and the ports it serves."""

    process: subprocess.Popen[bytes]
    log: Path
    api_port: int
    gateway_port: int

    def wait_for(self, marker: str, timeout_s: float) -> list[str]:
        """Until the output holds ``marker``; the output lines then. Fails if up exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while marker not in self.log.read_text():
            assert self.process.poll() is None, f"switchboard up exited early:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"no {marker!r} within {timeout_s:.0f}s:\n{self.log.read_text()}"
            time.sleep(0.5)
        return self.log.read_text().splitlines()


def start_up(tmp_path: Path, *args: str) -> Up:
    """``switchboard up [args]`` on fresh data under ``tmp_path``, free ports and the cached Kafka jars."""
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
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "up", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Up(process, log, api_port, gateway_port)
