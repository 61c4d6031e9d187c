"""The Faust app of the worker. Built by a factory from settings; nothing happens at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from infra.settings import Settings
from infra.topics import Topics
from schemas import AvroCodec


@dataclass(frozen=True)
class WorkerContext:
    """What the agents need: the app, topic names and the codec."""

    app: faust.App
    topics: Topics
    codec: AvroCodec


def create_app(settings: Settings, bootstrap: str, *, datadir: Path | None = None) -> WorkerContext:
    """A Faust app for ``bootstrap`` with every agent registered."""
    from processors.agents.calls import register  # agents need the app first

    app = faust.App(
        settings.group(settings.worker_id),
        broker=f"kafka://{bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        datadir=str(datadir or settings.data_dir / "worker"),
        web_enabled=settings.worker_web_port != 0,
        web_port=settings.worker_web_port or 6066,  # unused when web_enabled is False
        web_host="127.0.0.1",
        producer_acks=-1,
        producer_max_request_size=4 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=60.0,
    )
    ctx = WorkerContext(app=app, topics=Topics.from_settings(settings), codec=AvroCodec.default())
    register(ctx)
    return ctx


def run_worker(ctx: WorkerContext, loglevel: str = "info") -> Any:
    """Run the worker until SIGINT/SIGTERM (blocks; owns the event loop)."""
    worker = faust.Worker(ctx.app, loglevel=loglevel, quiet=True)
    return worker.execute_from_commandline()
