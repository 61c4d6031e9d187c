"""Typed settings, read once from ``SWITCHBOARD_*`` environment variables by the entry point and passed down.

Every field documents its default. Nothing here connects to anything.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All configuration of a Switchboard process."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path(".switchboard"),
        description="Root of local state: broker data and log, embedded ClickHouse data, worker table stores.",
    )

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port list of an existing Kafka cluster. Unset: `switchboard up` starts a local broker.",
    )
    kafka_port: int = Field(default=0, ge=0, le=65535, description="Local broker client port; 0 picks a free one.")
    kafka_jars_dir: Path = Field(
        default=Path.home() / ".cache" / "switchboard" / "kafka",
        description="Where the local broker's jars are resolved to by Maven (once, then reused).",
    )
    kafka_heap: str = Field(default="512m", description="Java heap (-Xmx) of the local broker.")
    kafka_start_timeout_s: float = Field(default=60.0, gt=0, description="How long to wait for the local broker.")
    topic_prefix: str = Field(default="", description="Prefix of every topic and consumer group name.")
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of each topic created by bootstrap.")
    topic_replication: int = Field(default=1, ge=1, description="Replication factor of each topic.")
    produce_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a producer waits for Kafka's acknowledgement before giving up.",
    )

    # --- ClickHouse -----------------------------------------------------------------------------
    clickhouse_url: str | None = Field(
        default=None,
        description="http(s)://user:password@host:port of a ClickHouse server. Unset: embedded chDB in data_dir.",
    )
    clickhouse_database: str = Field(default="switchboard", description="Database holding the projections.")

    # --- processes --------------------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Bind address of the read API.")
    api_port: int = Field(default=8080, ge=1, le=65535, description="Port of the read API.")
    gateway_host: str = Field(default="127.0.0.1", description="Bind address of the ingestion gateway.")
    gateway_port: int = Field(default=8081, ge=1, le=65535, description="Port of the ingestion gateway.")
    worker_id: str = Field(default="switchboard-worker", description="Faust app id = consumer group of the workers.")
    worker_web_port: int = Field(
        default=6066, ge=0, le=65535, description="Faust's own web/metrics port on 127.0.0.1; 0 disables it."
    )
    projector_group: str = Field(default="switchboard-projector", description="Consumer group of the projector.")
    projector_batch_size: int = Field(default=1000, ge=1, description="Rows per partition before a batch is written.")
    projector_flush_ms: int = Field(default=500, ge=1, description="Oldest row age (ms) before a batch is written.")

    # --- security --------------------------------------------------------------------------------
    api_keys: dict[int, SecretStr] = Field(
        default_factory=dict,
        description='Bearer API key of each tenant, as JSON: {"<cid>": "<key>"}. Empty: every request is refused.',
    )

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_topic_safe(cls, value: str) -> str:
        if value and not all(c.isalnum() or c in "._-" for c in value):
            raise ValueError("topic_prefix may hold only letters, digits, '.', '_' and '-'")
        return value

    @property
    def clickhouse_path(self) -> Path:
        """Data directory of embedded ClickHouse (chDB)."""
        return self.data_dir / "clickhouse"

    @property
    def broker_dir(self) -> Path:
        """Data and log directory of the local Kafka broker."""
        return self.data_dir / "kafka"

    def group(self, name: str) -> str:
        """Consumer group / app id with the topic prefix applied."""
        return f"{self.topic_prefix}{name}"
