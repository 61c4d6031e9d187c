"""Oliver jobs: their status table, and uploaded files run through the very same per-call pipeline.

Status (Oliver codes): 0 pending, 1 processing, 2 completed, -1 failed, -2 aborted. The transition
table below is the whole life cycle; ``JobState.step`` refuses anything else, naming both ends.

``run_file`` cuts a decoded file into the AudioChunk records a live stream of the same audio would
bring (200 ms of L16 per channel, each channel its own role: channel 0 agent, 1 customer by
default), between a CallStarted and a CallEnded, and feeds them to ``CallPipeline``. So a file and
a stream of the same samples give the same segments, metrics and alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from processors.audio.files import DecodedFile, iter_file_chunks
from processors.pipeline import CallPipeline, PipelineConfig, job_results
from processors.rules.model import RuleSetDef
from schemas import ALERT, AUDIO_CHUNK, CALL_EVENT, CALL_METRICS, SPEECH_SEGMENT

Record = dict[str, Any]
CHUNK_MS = 200


class JobError(Exception):
    """A job cannot make the asked transition, or its input cannot be processed."""


class Status(IntEnum):
    PENDING = 0
    PROCESSING = 1
    COMPLETED = 2
    FAILED = -1
    ABORTED = -2


STATUS_TEXT = {
    Status.PENDING: "pending",
    Status.PROCESSING: "processing",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.ABORTED: "aborted",
}

# (from, to): the legal moves. A failed job may be retried (the vendor's -1 is transient).
TRANSITIONS = frozenset(
    {
        (None, Status.PENDING),
        (Status.PENDING, Status.PROCESSING),
        (Status.PENDING, Status.ABORTED),
        (Status.PROCESSING, Status.COMPLETED),
        (Status.PROCESSING, Status.FAILED),
        (Status.PROCESSING, Status.ABORTED),
        (Status.FAILED, Status.PROCESSING),
        (Status.FAILED, Status.ABORTED),
    }
)


@dataclass(frozen=True)
class JobState:
    """What the worker remembers of one job."""

    job_id: int
    cid: int
    status: Status | None = None
    mode: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    history: tuple[tuple[int | None, int], ...] = ()  # (from, to) of every transition applied

    def step(self, to: Status) -> JobState:
        if (self.status, to) not in TRANSITIONS:
            before = "new" if self.status is None else STATUS_TEXT[self.status]
            raise JobError(f"job {self.job_id}: cannot go from {before} to {STATUS_TEXT[to]}")
        before_code = None if self.status is None else int(self.status)
        return replace(self, status=to, history=(*self.history, (before_code, int(to))))

    def has_seen(self, from_status: int | None, to_status: int) -> bool:
        """Whether this exact transition was applied already (a redelivery, or the agent's own record)."""
        return (from_status, to_status) in self.history

    def to_dict(self) -> Record:
        status = None if self.status is None else int(self.status)
        return {
            "job_id": self.job_id,
            "cid": self.cid,
            "status": status,
            "mode": self.mode,
            "metadata": dict(self.metadata),
            "history": [list(h) for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobState:
        status = data.get("status")
        return cls(
            job_id=int(data["job_id"]),
            cid=int(data["cid"]),
            status=None if status is None else Status(int(status)),
            mode=str(data.get("mode", "")),
            metadata=dict(data.get("metadata", {})),
            history=tuple((h[0], int(h[1])) for h in data.get("history", ())),
        )


def transition(job: JobState, to: Status, at_ms: int, reason: str = "", results: str | None = None) -> Record:
    """The JobTransition record of moving ``job`` to ``to`` (the state itself is ``job.step(to)``)."""
    return {
        "job_id": job.job_id,
        "cid": job.cid,
        "from_status": None if job.status is None else int(job.status),
        "to_status": int(to),
        "at": at_ms,
        "reason": reason or STATUS_TEXT[to],
        "metadata": {},
        "results": results,
    }


@dataclass(frozen=True)
class FileRun:
    """Everything a file produced, in emission order, and the job's result document."""

    outputs: list[tuple[str, Record]]
    results: Record


def channel_roles(channels: int, metadata: Mapping[str, str]) -> list[str]:
    """Role of each channel: stereo is agent/customer (swapped with ``agentchannel=1``); mono is mixed."""
    if channels == 1:
        return ["mixed"]
    if channels != 2:
        raise JobError(f"files with {channels} channels are not supported (1 or 2)")
    return ["customer", "agent"] if metadata.get("agentchannel") == "1" else ["agent", "customer"]


def file_records(
    call_id: str, cid: int, decoded: DecodedFile, roles: list[str], origin_ms: int
) -> list[tuple[str, Record]]:
    """The CallEvents and AudioChunks a live stream of this file would bring, in media order."""
    event = _event(call_id, cid, origin_ms)
    out: list[tuple[str, Record]] = [(CALL_EVENT, event("CallStarted", 0, {"answered": True}))]
    per_track = [list(iter_file_chunks(samples, decoded.sample_rate, CHUNK_MS)) for samples in decoded.channels]
    for index in range(max((len(chunks) for chunks in per_track), default=0)):
        for role, chunks in zip(roles, per_track, strict=True):
            if index >= len(chunks):
                continue
            start, block = chunks[index]
            out.append(
                (
                    AUDIO_CHUNK,
                    {
                        "call_id": call_id,
                        "cid": cid,
                        "track": role,
                        "role": role.upper() if role != "mixed" else "UNSPECIFIED",
                        "codec": "L16_LE",
                        "sample_rate": decoded.sample_rate,
                        "channels": 1,
                        "sequence": index,
                        "start_sample": start,
                        "media_timestamp_ms": start * 1000 // decoded.sample_rate,
                        "received_at": origin_ms + start * 1000 // decoded.sample_rate,
                        "payload": block.astype("<i2").tobytes(),
                    },
                )
            )
    end_ms = decoded.frames * 1000 // decoded.sample_rate
    out.append((CALL_EVENT, event("CallEnded", end_ms, {"reason": "end of file", "duration_ms": end_ms})))
    return out


def run_file(
    call_id: str,
    cid: int,
    decoded: DecodedFile,
    metadata: Mapping[str, str],
    config: PipelineConfig,
    rules: RuleSetDef,
    origin_ms: int,
) -> FileRun:
    """Analyse a whole file as a call; the outputs and the result document of the job."""
    roles = channel_roles(len(decoded.channels), metadata)
    pipe = CallPipeline(call_id, config, rules)
    outputs: list[tuple[str, Record]] = []
    for name, record in file_records(call_id, cid, decoded, roles, origin_ms):
        outputs += pipe.on_record(name, record)
    outputs += pipe.finish()  # the whole file is in: complete at once
    return FileRun(outputs, results(outputs, pipe.signals(), decoded))


def results(
    outputs: list[tuple[str, Record]], signals: Mapping[str, Any], decoded: DecodedFile | None = None
) -> Record:
    """The job's result document (as a streaming job's, see ``job_results``), plus the file's facts."""
    final = next((r for n, r in reversed(outputs) if n == CALL_METRICS and r["final"]), None)
    if final is None:
        raise JobError("the analysis ended without final metrics")
    segments = sum(1 for n, r in outputs if n == SPEECH_SEGMENT and r["kind"] == "SPEECH")
    raised = [
        {"rule_id": r["rule_id"], "kind": r["rule_kind"], "st": r["start_ms"] / 1000, "et": r["end_ms"] / 1000}
        for n, r in outputs
        if n == ALERT and r["status"] == "RAISED"
    ]
    doc = job_results(final, segments, raised, signals)
    if decoded is not None:
        doc["file"] = {"format": decoded.format, "sample_rate": decoded.sample_rate, "channels": len(decoded.channels)}
    return doc


def _event(call_id: str, cid: int, origin_ms: int) -> Any:
    def make(kind: str, at_ms: int, payload: Record) -> Record:
        return {
            "event_id": f"job:{call_id}:{kind}",
            "call_id": call_id,
            "cid": cid,
            "source": "OLIVER",
            "occurred_at": origin_ms + at_ms,
            "received_at": origin_ms + at_ms,
            "payload": (f"io.switchboard.calls.{kind}", payload),
            "raw": "",
            "attributes": {},
        }

    return make
