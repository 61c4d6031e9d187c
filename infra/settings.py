"""Typed settings, read once from ``SWITCHBOARD_*`` environment variables by the entry point and passed down.

Every field documents its default. Nothing here connects to anything.
"""

from __future__ import annotations

import os
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
    worker_commit_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often (s) a worker commits its Kafka transaction: outputs (segments, alerts) become visible "
        "to read_committed subscribers at most this long after they are computed. Lower is fresher; each commit "
        "costs a transaction round trip per assigned partition (Faust's own default is 2.8 s).",
    )
    worker_call_retention_s: float = Field(
        default=3600,
        gt=0,
        description="How long (s) a completed call's facts stay in the worker's calls table (and its changelog) "
        "before they are deleted. Within it, a late or replayed record of the call is recognised as a duplicate; "
        "after it, the record would start a new call. Bounds the table to the calls of this period.",
    )
    projector_group: str = Field(default="switchboard-projector", description="Consumer group of the projector.")
    projector_batch_size: int = Field(default=1000, ge=1, description="Rows per partition before a batch is written.")
    projector_flush_ms: int = Field(default=500, ge=1, description="Oldest row age (ms) before a batch is written.")

    # --- gateway (all vendors) ----------------------------------------------------------------------
    gateway_node_id: int | None = Field(
        default=None,
        ge=0,
        le=1023,
        description="Node part (0-1023) of the 64-bit job ids this gateway issues. Unset: random per start; "
        "set distinct values on a fleet to make ids unique by construction rather than by chance.",
    )
    blob_dir: Path | None = Field(
        default=None, description="Where uploaded audio files are kept. Unset: <data_dir>/blobs."
    )
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1, description="Largest accepted audio upload.")
    max_frame_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest accepted WebSocket frame / NDJSON line / decoded audio message."
    )
    max_messages_per_s: float = Field(
        default=400.0, gt=0, description="Sustained messages per second one streaming connection may send."
    )
    max_messages_burst: int = Field(default=800, ge=1, description="Burst allowance of the per-connection rate limit.")
    audio_chunk_ms: int = Field(
        default=200, ge=20, le=2000, description="Audio is aggregated to records of about this many ms per track."
    )

    # --- oliver ----------------------------------------------------------------------------------------
    oliver_max_streams: int = Field(
        default=500, ge=1, description="Live audio WebSockets (/stream/{cid}) one gateway serves at once; more wait."
    )
    oliver_loaded_delay_s: int = Field(
        default=10, ge=0, description='Setup delay estimate (s) reported while all stream slots are taken ("loaded").'
    )
    oliver_idle_timeout_s: float = Field(
        default=30.0, gt=0, description="A streaming task that receives no audio for this long (s) ends."
    )
    oliver_job_max_age_s: int = Field(
        default=86_400, ge=60, description="A streaming job (pid) older than this (s) can no longer be started."
    )

    # --- mediaservice (iotcomms) -------------------------------------------------------------------
    mediaservice_policy_dir: Path | None = Field(
        default=None,
        description="Directory of per-domain policy files (<domain>.json) that answer decision callbacks. "
        "Unset: <data_dir>/policies.",
    )
    mediaservice_answer_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Decision callbacks are answered within this time even when Kafka is slow (see docs/gateway.md).",
    )
    mediaservice_callback_auth: str = Field(
        default="off",
        pattern="^(off|shared_secret|jwt)$",
        description="How callbacks are verified: off|shared_secret|jwt.",
    )
    mediaservice_callback_secret: SecretStr | None = Field(
        default=None, description="Shared secret expected in Authorization: Bearer (callback_auth=shared_secret)."
    )
    mediaservice_callback_public_key: Path | None = Field(
        default=None, description="PEM public key verifying RS256 JWT callbacks (callback_auth=jwt)."
    )
    mediaservice_url: str = Field(
        default="https://api.prod-eu-north-1.iotcomms.io/mediaservice",
        description="Base URL of the mediaservice REST API; commands go to <url>/<domain>/<op>.",
    )
    mediaservice_private_key: Path | None = Field(
        default=None, description="PEM RS256 private key signing the JWT of REST commands. Unset: no Authorization."
    )

    # --- telnyx ----------------------------------------------------------------------------------------
    telnyx_stream_auth_token: SecretStr | None = Field(
        default=None, description="Expected x-telnyx-streaming-auth-token on media WebSockets, if set."
    )
    telnyx_webhook_url: str | None = Field(
        default=None, description="Default webhook URL for streaming.* life-cycle events. Unset: not sent."
    )
    telnyx_webhook_private_key: Path | None = Field(
        default=None,
        description="PEM Ed25519 private key signing webhooks (telnyx-signature-ed25519). Unset: unsigned.",
    )
    telnyx_webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Delivery attempts per webhook (non-2xx / connection error: retry)."
    )
    telnyx_webhook_backoff_s: float = Field(
        default=0.5, gt=0, le=60, description="Wait before the 2nd webhook attempt, s; doubles per attempt (max 30 s)."
    )

    # --- cresta ----------------------------------------------------------------------------------------
    cresta_idle_flush_ms: int = Field(
        default=500,
        ge=10,
        le=60_000,
        description="A Cresta stream that receives nothing for this long (ms) while results are outstanding flushes "
        "its partial audio aggregates to Kafka and answers them (clients that wait for each result are not stalled).",
    )

    # --- worker analysis ------------------------------------------------------------------------------
    vad_engine: str = Field(default="webrtc", pattern="^(webrtc|silero)$", description="VAD engine: webrtc | silero.")
    vad_mode: int = Field(default=3, ge=0, le=3, description="WebRTC VAD aggressiveness 0-3 (3 = fewest false alarms).")
    vad_threshold: float = Field(default=0.5, gt=0, lt=1, description="Speech probability threshold (Silero).")
    vad_min_speech_ms: int = Field(default=250, ge=0, description="Shorter speech bursts are dropped, ms.")
    vad_min_silence_ms: int = Field(default=300, ge=0, description="Shorter pauses inside speech are bridged, ms.")
    vad_hangover_ms: int = Field(default=100, ge=0, description="Speech segments are padded by this much, ms.")
    level_interval_ms: int = Field(default=1000, ge=100, description="Length of LEVEL intervals per track, ms.")
    metrics_every_ms: int = Field(default=10_000, ge=1000, description="Media ms between interim CallMetrics.")
    interruption_min_ms: int = Field(
        default=500, ge=0, description="An interruption needs the other party to have been speaking this long, ms."
    )
    monologue_bridge_ms: int = Field(default=1000, ge=0, description="Pauses shorter than this keep a monologue, ms.")

    # --- read api --------------------------------------------------------------------------------
    admin_keys: set[SecretStr] = Field(
        default_factory=set,
        description='Bearer keys allowed to run read-only SQL (POST /v1/sql) over all tenants, as JSON: ["<key>"]. '
        "Empty: the SQL endpoint refuses every request.",
    )
    sql_max_execution_s: int = Field(default=10, ge=1, le=600, description="Time limit of one read-only SQL query, s.")
    sql_max_rows: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Rows one read-only SQL query may return (more: an error)."
    )
    alert_stream_keepalive_s: float = Field(
        default=15.0, gt=0, le=300, description="An idle alert stream (SSE) sends a comment line this often, s."
    )

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
    def blobs_path(self) -> Path:
        """Directory of uploaded audio files."""
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def policies_path(self) -> Path:
        """Directory of mediaservice per-domain policy files."""
        return self.mediaservice_policy_dir or self.data_dir / "policies"

    @property
    def broker_dir(self) -> Path:
        """Data and log directory of the local Kafka broker."""
        return self.data_dir / "kafka"

    def group(self, name: str) -> str:
        """Consumer group / app id with the topic prefix applied."""
        return f"{self.topic_prefix}{name}"

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment of a child ``switchboard`` process that shares these settings' data directory,
        broker and topics (its worker web server off), plus ``extra`` SWITCHBOARD_* variables."""
        env = dict(os.environ)
        env.update(
            SWITCHBOARD_DATA_DIR=str(self.data_dir),
            SWITCHBOARD_KAFKA_BOOTSTRAP=str(self.kafka_bootstrap),
            SWITCHBOARD_TOPIC_PREFIX=self.topic_prefix,
            SWITCHBOARD_TOPIC_PARTITIONS=str(self.topic_partitions),
            SWITCHBOARD_WORKER_WEB_PORT="0",
        )
        env.update(extra)
        return env
