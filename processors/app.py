"""The Faust app of the worker. Built by a factory from settings; nothing happens at import time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from infra.settings import Settings
from infra.topics import Topics
from processors import faust_fixes
from processors.analytics.sweep import TalkConfig
from processors.audio.segmenter import SegmenterParams
from processors.audio.vad import SileroModel, VadConfig, shared_silero_model
from processors.pipeline import PipelineConfig
from processors.rulebook import Rulebook
from processors.scheduling import OldestFirst
from processors.tracks import MediaConfig
from schemas import AvroCodec


@dataclass(frozen=True)
class WorkerContext:
    """What the agents need: the app, topic names, the codec, the analysis configuration and the rules."""

    app: faust.App
    topics: Topics
    codec: AvroCodec
    bootstrap: str = ""
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    rulebook: Rulebook = field(default_factory=Rulebook)
    silero: SileroModel | None = None
    rules_loaded: asyncio.Event = field(default_factory=asyncio.Event)
    call_retention_ms: int = 3_600_000  # how long a completed call's facts stay in the calls table


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The per-call analysis as the settings configure it."""
    vad = VadConfig(engine="silero" if settings.vad_engine == "silero" else "webrtc", mode=settings.vad_mode)
    segmenter = SegmenterParams(
        threshold=settings.vad_threshold,
        min_speech_ms=settings.vad_min_speech_ms,
        min_silence_ms=settings.vad_min_silence_ms,
        hangover_ms=settings.vad_hangover_ms,
    )
    return PipelineConfig(
        media=MediaConfig(vad=vad, segmenter=segmenter, activity_ms=settings.level_interval_ms),
        talk=TalkConfig(
            interruption_min_ms=settings.interruption_min_ms, monologue_bridge_ms=settings.monologue_bridge_ms
        ),
        metrics_every_ms=settings.metrics_every_ms,
    )


def app_options(settings: Settings, bootstrap: str, worker_dir: Path) -> dict[str, Any]:
    """The worker's Faust configuration (``faust.App`` keyword arguments besides its id)."""
    return {
        "broker": f"kafka://{bootstrap}",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "store": "memory://",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "datadir": str(worker_dir),
        "web_enabled": settings.worker_web_port != 0,
        "web_port": settings.worker_web_port or 6066,  # unused when web_enabled is False
        "web_host": "127.0.0.1",
        "producer_acks": -1,
        "producer_max_request_size": 4 * 1024 * 1024,
        "consumer_auto_offset_reset": "earliest",
        "table_cleanup_interval": 60.0,
        "processing_guarantee": "exactly_once",
        "broker_commit_interval": settings.worker_commit_interval_s,
        "ConsumerScheduler": OldestFirst,
    }


def create_app(settings: Settings, bootstrap: str, *, datadir: Path | None = None) -> WorkerContext:
    """A Faust app for ``bootstrap`` with every agent registered."""
    from processors.agents.calls import register  # agents need the app first
    from processors.agents.commands import register as register_commands
    from processors.agents.jobs import register as register_jobs
    from processors.agents.rules import register as register_rules

    faust_fixes.apply()
    worker_dir = datadir or settings.data_dir / "worker"
    worker_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(settings.group(settings.worker_id), **app_options(settings, bootstrap, worker_dir))
    pipeline = pipeline_config(settings)
    ctx = WorkerContext(
        app=app,
        topics=Topics.from_settings(settings),
        codec=AvroCodec.default(),
        bootstrap=bootstrap,
        pipeline=pipeline,
        silero=shared_silero_model() if pipeline.media.vad.engine == "silero" else None,
        call_retention_ms=int(settings.worker_call_retention_s * 1000),
    )
    register(ctx)
    register_rules(ctx)
    register_jobs(ctx)
    register_commands(ctx, settings)
    return ctx


def run_worker(ctx: WorkerContext, loglevel: str = "info") -> Any:
    """Run the worker until SIGINT/SIGTERM (blocks; owns the event loop)."""
    worker = faust.Worker(ctx.app, loglevel=loglevel, quiet=True)
    return worker.execute_from_commandline()
