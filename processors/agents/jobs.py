"""The job agent: follows jobs.transitions, and runs uploaded-file jobs through the call pipeline.

A batch job's ``queued`` transition (status 0, mode batch) makes the agent move it to processing,
decode its file (``uri``: a file:// URI of the blob store) and run ``processors.jobs.run_file``
in a thread, then send the processing transition, the segments, metrics and alerts under the call
id ``str(pid)`` and the completion with its results (or the failure with the reason) in one go.
Streaming jobs are completed by the call agent when their stream ends. Every transition the agent
sees is folded into its job table; one it did not expect is logged and ignored. State, outputs and
the input's offset commit together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import faust
import orjson

from processors.agents.outputs import TransactionalOutputs
from processors.audio.errors import AudioError
from processors.audio.files import decode_file
from processors.jobs import JobError, JobState, Status, run_file, transition
from processors.pipeline import PipelineError
from schemas import JOB_TRANSITION, SchemaError

if TYPE_CHECKING:
    from processors.app import WorkerContext

log = logging.getLogger(__name__)


def blob_path(uri: str) -> Path:
    """The local path of a ``file://`` blob URI; other schemes are refused."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise JobError(f"cannot read job audio from {uri!r}: only file:// blobs are supported")
    return Path(unquote(parsed.path))


def register(ctx: WorkerContext) -> None:
    """Register the job agent and its table on ``ctx.app``."""
    app, topics, codec = ctx.app, ctx.topics, ctx.codec
    source = app.topic(topics.transitions, key_type=bytes, value_type=bytes)
    jobs = app.Table(
        "jobs",
        default=None,
        partitions=app.conf.topic_partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    out = TransactionalOutputs(app, topics, codec)

    async def run(event: Any, job: JobState) -> JobState:
        # Nothing is sent until the file is analysed: a send opens the partition's transaction, and one
        # held open across a long analysis outlives the producer's transaction timeout (60 s) and gets
        # the worker fenced. PROCESSING keeps its start time and commits with the outcome.
        now = time.time_ns() // 1_000_000
        processing = (JOB_TRANSITION, transition(job, Status.PROCESSING, now))
        job = job.step(Status.PROCESSING)
        try:
            decoded = await asyncio.to_thread(decode_file, blob_path(job.metadata.get("uri", "")))
            rules = ctx.rulebook.for_tenant(job.cid)
            result = await asyncio.to_thread(
                run_file, str(job.job_id), job.cid, decoded, job.metadata, ctx.pipeline, rules, now
            )
        except (AudioError, PipelineError, JobError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("job %s failed: %s", job.job_id, reason)
            done = transition(job, Status.FAILED, time.time_ns() // 1_000_000, reason=reason)
            await out.emit(event, str(job.job_id), [processing, (JOB_TRANSITION, done)])
            return job.step(Status.FAILED)
        document = orjson.dumps(result.results).decode()
        done = transition(job, Status.COMPLETED, time.time_ns() // 1_000_000, results=document)
        await out.emit(event, str(job.job_id), [processing, *result.outputs, (JOB_TRANSITION, done)])
        return job.step(Status.COMPLETED)

    @app.agent(source, name="jobs")
    async def follow_jobs(stream: Any) -> None:
        await ctx.rules_loaded.wait()
        async for event in stream.events():
            try:
                record = codec.decode(event.value).record
                key = str(record["job_id"])
                current = jobs.get(key)
                job = JobState.from_dict(current) if current else JobState(int(record["job_id"]), int(record["cid"]))
                if job.has_seen(record["from_status"], int(record["to_status"])):
                    continue  # the agent's own transition coming back, or a redelivery: already folded in
                job = job.step(Status(int(record["to_status"])))
                if record["from_status"] is None:
                    metadata = dict(record["metadata"])
                    job = replace(job, mode=metadata.get("mode", ""), metadata=metadata)
                    if job.mode == "batch":
                        job = await run(event, job)
            except (SchemaError, JobError, ValueError) as exc:
                log.warning("job transition ignored at %s/%s: %s", event.message.partition, event.message.offset, exc)
                continue
            await out.save(event, jobs, key, job.to_dict())
