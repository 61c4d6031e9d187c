"""Local single-node Apache Kafka (KRaft) for development and tests: resolve jars, format, start, stop.

The broker's runtime classpath comes from Maven Central through ``infra/kafka/pom.xml``; it is
resolved once into ``jars_dir/<pom hash>`` and reused. Each broker gets its own data directory
and log file, listens on loopback only, and is stopped with its whole process group.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType

_PR_SET_PDEATHSIG = 1


class BrokerError(Exception):
    """The local broker could not be resolved, formatted, started or stopped."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the launching process dies (no orphans)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group led by ``proc``; SIGKILL it if it is still there after ``grace_s``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _kafka_resource(name: str) -> Path:
    return Path(str(resources.files("infra").joinpath("kafka", name)))


def resolve_jars(cache_root: Path, *, mvn: str | None = None) -> Path:
    """Resolve the broker classpath with Maven once; return the directory holding the jars."""
    pom = _kafka_resource("pom.xml")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    target = cache_root / digest
    if (target / ".complete").exists():
        return target
    mvn = mvn or shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH: it is needed once to resolve the Kafka broker jars")
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{digest}.", dir=cache_root))
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(f"resolving Kafka jars failed ({' '.join(cmd)}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    (staging / ".complete").write_text(digest)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / ".complete").exists():
            raise
    return target


def _server_properties(data: Path, port: int, controller_port: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Topics are created on purpose by bootstrap; a typo must not silently create one.
            "auto.create.topics.enable=false",
            "num.partitions=1",
            "",
        ]
    )


@dataclass
class LocalBroker:
    """One single-node KRaft broker in ``workdir`` (data in ``workdir/data``, log in ``workdir/broker.log``)."""

    workdir: Path
    jars_dir: Path
    port: int = 0
    heap: str = "512m"
    start_timeout_s: float = 60.0
    java: str = field(default_factory=lambda: shutil.which("java") or "java")
    cluster_id: str | None = None  # used when formatting new storage; random when None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    startup_seconds: float | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        """host:port for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def log_tail(self, lines: int = 60) -> str:
        """The end of the broker log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def _java(self, classpath: Path, *args: str) -> list[str]:
        log_config = _kafka_resource("log4j2.xml")
        return [
            self.java,
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp",
            f"{classpath}/*",
            *args,
        ]

    def _format(self, classpath: Path, config: Path, data: Path) -> None:
        if (data / "meta.properties").exists():
            return
        # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding; it may begin with
        # '-', hence the --option=value form.
        cid = self.cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = self._java(classpath, "kafka.tools.StorageTool", "format", f"--cluster-id={cid}", f"--config={config}")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

    def start(self) -> LocalBroker:
        """Resolve jars, format storage on first use, start the broker and wait until it serves clients."""
        if self._process is not None:
            raise BrokerError("broker already started")
        classpath = resolve_jars(self.jars_dir)
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        controller_port = free_port()
        config = self.workdir / "server.properties"
        config.write_text(_server_properties(data, self.port, controller_port))
        self._format(classpath, config, data)
        began = time.monotonic()
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                self._java(classpath, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self._wait_ready(began)
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, began: float) -> None:
        assert self._process is not None
        deadline = began + self.start_timeout_s
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise BrokerError(f"Kafka broker exited with code {code} while starting. Log:\n{self.log_tail()}")
            if _port_open(self.port) and "Kafka Server started" in self.log_tail(400):
                return
            time.sleep(0.1)
        self.stop()
        raise BrokerError(
            f"Kafka broker did not answer on {self.bootstrap} within {self.start_timeout_s:.0f}s. "
            f"Log:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the broker's process group, then SIGKILL what is left after ``grace_s``."""
        proc, self._process = self._process, None
        if proc is not None:
            stop_process_group(proc, grace_s)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
