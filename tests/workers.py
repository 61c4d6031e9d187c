"""A real ``switchboard worker`` subprocess for integration tests: start, wait until ready, kill, stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.settings import Settings


class WorkerProcess:
    """One worker process of a test, logging to ``<logs>/worker-<n>.log``."""

    def __init__(self, settings: Settings, logs: Path, **env: str) -> None:
        self.settings = settings
        self.logs = logs
        self.extra_env = env
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.logs / f"worker-{self.runs}.log"

    def start(self) -> None:
        self.runs += 1
        env = self.settings.child_env(**self.extra_env)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_for(self, text: str, timeout_s: float = 90) -> None:
        """Until the current run's log contains ``text``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        pytest.fail(f"worker never logged {text!r}:\n{self.tail()}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"worker exited with {self.proc.returncode}:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.proc = None

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
