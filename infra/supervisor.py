"""`switchboard up`: the local broker, topic bootstrap, and every Switchboard process, stopped together.

Children run in their own process groups and are told to die with this process (Linux
PR_SET_PDEATHSIG), so neither Ctrl-C nor a crash of the supervisor leaves an orphan.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.broker import LocalBroker, die_with_parent, stop_process_group
from infra.settings import Settings
from infra.topics import Topics, ensure_topics


class SupervisorError(Exception):
    """A process of `switchboard up` failed to start or died."""


@dataclass
class Child:
    """One supervised process and its log."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    def stop(self, grace_s: float) -> None:
        if self.process is not None:
            stop_process_group(self.process, grace_s)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_http(url: str, timeout_s: float, children: list[Child]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in children:
            code = child.exit_code()
            if code is not None:
                raise SupervisorError(f"{child.name} exited with code {code}; see {child.log_path}")
        if _healthy(url):
            return
        time.sleep(0.2)
    raise SupervisorError(f"{url} did not answer within {timeout_s:.0f}s")


def run_up(
    settings: Settings,
    echo: Callable[[str], object] = print,
    on_ready: Callable[[str, str, str, str], object] | None = None,
) -> int:
    """Run everything until SIGINT/SIGTERM; return the exit code.

    ``on_ready(gateway_url, api_url, bootstrap, key of client 1)`` runs in a daemon thread once all is up.
    """
    say: Callable[[str], object] = echo
    stop = {"requested": False}

    def request_stop(signum: int, _frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    broker: LocalBroker | None = None
    children: list[Child] = []
    env = dict(os.environ)
    try:
        bootstrap = settings.kafka_bootstrap
        if bootstrap is None:
            broker = LocalBroker(
                workdir=settings.broker_dir,
                jars_dir=settings.kafka_jars_dir,
                port=settings.kafka_port,
                heap=settings.kafka_heap,
                start_timeout_s=settings.kafka_start_timeout_s,
            )
            say(f"starting local Kafka broker (data {settings.broker_dir}) ...")
            broker.start()
            bootstrap = broker.bootstrap
            say(f"  Kafka broker up on {bootstrap} in {broker.startup_seconds:.1f}s (log {broker.log_file})")
        created = asyncio.run(
            ensure_topics(
                bootstrap,
                Topics.from_settings(settings).specs(),
                partitions=settings.topic_partitions,
                replication=settings.topic_replication,
            )
        )
        say(f"  topics ready ({len(created)} created)")
        env["SWITCHBOARD_KAFKA_BOOTSTRAP"] = bootstrap
        api_key = None
        if not settings.api_keys:
            api_key = f"dev-{secrets.token_urlsafe(18)}"
            env["SWITCHBOARD_API_KEYS"] = f'{{"1": "{api_key}"}}'
        logs = settings.data_dir / "logs"
        cli = [sys.executable, "-m", "infra.cli"]
        children = [
            Child("gateway", [*cli, "gateway"], logs / "gateway.log"),
            Child("worker", [*cli, "worker"], logs / "worker.log"),
            Child("projector", [*cli, "projector"], logs / "projector.log"),
        ]
        for child in children:
            child.start(env)
            say(f"  started {child.name} (pid {child.process.pid if child.process else '?'}, log {child.log_path})")
        api = f"http://{settings.api_host}:{settings.api_port}"
        gateway = f"http://{settings.gateway_host}:{settings.gateway_port}"
        _wait_http(f"{api}/healthz", 120, children)
        _wait_http(f"{gateway}/healthz", 60, children)
        say("")
        say(f"Switchboard is up.  Read API: {api}   Gateway: {gateway}   Kafka: {bootstrap}")
        if api_key:
            say(f"Development API key for client 1: {api_key}")
            say(f"  curl -H 'Authorization: Bearer {api_key}' {api}/v1/clients/1/calls/<call_id>")
        say("Press Ctrl-C to stop everything.")
        key = api_key or (settings.api_keys[1].get_secret_value() if 1 in settings.api_keys else "")
        if on_ready is not None:
            threading.Thread(target=on_ready, args=(gateway, api, bootstrap, key), daemon=True).start()
        while not stop["requested"]:
            for child in children:
                code = child.exit_code()
                if code is not None:
                    raise SupervisorError(f"{child.name} exited with code {code}; see {child.log_path}")
            time.sleep(0.5)
        say("stopping ...")
        return 0
    except SupervisorError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        for child in reversed(children):
            child.stop(grace_s=15)
        if broker is not None:
            broker.stop()
        say("all processes stopped")
