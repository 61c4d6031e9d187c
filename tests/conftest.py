"""Session fixtures: one real Kafka broker for the whole run, unique names per test, chDB in tmp dirs.

The broker is Apache Kafka from Maven Central, started by ``infra.broker.LocalBroker``; when
``SWITCHBOARD_KAFKA_BOOTSTRAP`` is set that cluster is used instead. If the broker does not
start, the session fails with the broker's log: it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.broker import LocalBroker
from infra.settings import Settings
from infra.store import ClickHouseStore

JARS_DIR = Path(os.environ.get("SWITCHBOARD_KAFKA_JARS_DIR", Path.home() / ".cache" / "switchboard" / "kafka"))


def alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of the session's broker."""
    configured = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = LocalBroker(workdir=tmp_path_factory.mktemp("kafka"), jars_dir=JARS_DIR, heap="768m")
    broker.start()  # raises BrokerError with the log tail if it cannot start
    print(f"\nKafka broker on {broker.bootstrap}: started in {broker.startup_seconds:.2f}s")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def prefix() -> str:
    """A unique topic / consumer-group prefix for one test."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(tmp_path: Path, prefix: str, kafka_bootstrap: str) -> Settings:
    """Settings of one test: its own topics, groups, data directory and an API key per tenant."""
    return Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=kafka_bootstrap,
        kafka_jars_dir=JARS_DIR,
        topic_prefix=prefix,
        topic_partitions=3,
        produce_timeout_s=5.0,
        worker_web_port=0,
        projector_flush_ms=100,
        clickhouse_url=os.environ.get("SWITCHBOARD_CLICKHOUSE_URL"),
        clickhouse_database=f"sb_{prefix.strip('.')}",
        api_keys={1: "key-tenant-1", 2: "key-tenant-2"},  # type: ignore[dict-item]
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[ClickHouseStore]:
    """The configured ClickHouse backend (embedded chDB in the test's tmp dir unless a URL is set)."""
    opened = ClickHouseStore.open(settings)
    try:
        yield opened
    finally:
        if opened.backend == "server":
            opened.command(f"DROP DATABASE IF EXISTS {opened.database}")
        opened.close()
