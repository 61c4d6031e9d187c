"""Pure mapping between the Oliver API and Switchboard records (no I/O, no clock: times are passed in, in UTC ms).

Records are dicts as ``schemas.AvroCodec`` takes them; union payloads are ``(full name, record)`` tuples.

Result messages pushed on the WebSocket (PROTOCOLS.md §1.4 interim shape; the nesting is our choice)::

    {"id": "<pid>-<n>", "pid": <pid>, "st": <s>, "et": <s>, "is_final": false,
     "stream": {"segment_id", "track", "role", "kind", "start_sample", "end_sample", "sample_rate",
                "rms_dbfs", "peak_dbfs", "speech_probability", "detector"}}            # a SpeechSegment
    {"id": ..., "pid": ..., "st": ..., "et": ..., "is_final": false,
     "alerts": [{"id", "type" (rule id), "severity", "st", "et", "detected_at", "details"}]}  # an Alert
    {"id": ..., "pid": ..., "st": 0.0, "et": <largest et sent>, "is_final": true,
     "status": 2, "statusmsg": "completed", "reason": "..."}                            # the job ended

``n`` counts the messages of one pid on one socket from 0; ``st``/``et`` are media seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from producers.oliver.framing import RAW_SAMPLE_RATE, Chunk
from producers.oliver.models import CallDirection, JobInfo, Mode, ProcessParams, Status, StreamFormat, Tasks
from schemas import ALERT, JOB_TRANSITION, SPEECH_SEGMENT

Record = dict[str, Any]

_CALLS = "io.switchboard.calls"
STREAM_CODEC = {StreamFormat.RAW: "L16_LE", StreamFormat.WAV: "WAV", StreamFormat.MP3: "MP3"}


def iso_ms(at_ms: int) -> str:
    """UTC ms as ISO-8601 with milliseconds and ``Z``."""
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def track_for(channels: int) -> str:
    """AudioChunk track of an Oliver stream: the client mixes both parties ("mixed") or interleaves them ("stereo")."""
    return "mixed" if channels == 1 else "stereo"


def queued_transition(pid: int, cid: int, at_ms: int, metadata: Mapping[str, str]) -> Record:
    """JobTransition of a new job: null -> 0 (pending)."""
    return {
        "job_id": pid,
        "cid": cid,
        "from_status": None,
        "to_status": int(Status.PENDING),
        "at": at_ms,
        "reason": Status.PENDING.message,
        "metadata": dict(metadata),
        "results": None,
    }


def batch_metadata(params: ProcessParams, audio: Mapping[str, str]) -> dict[str, str]:
    """Metadata of an uploaded-file job: the inputs, mode "batch" and the stored audio's facts (uri, duration...)."""
    return {**params.metadata(), **audio, "mode": Mode.BATCH.value}


def stream_metadata(params: ProcessParams) -> dict[str, str]:
    """Metadata of a streaming job: the inputs (tasks as JSON) and mode "stream"."""
    return {**params.metadata(), "mode": Mode.STREAM.value}


def process_record(
    pid: int, cid: int, at_ms: int, params: ProcessParams, mode: Mode, *, duration_s: float, uri: str
) -> Record:
    """The process object answered by the create calls (PROTOCOLS.md §1.2), pending, results at defaults."""
    return {
        "pid": pid,
        "id": pid,
        "cid": cid,
        "name": params.name or "",
        "status": int(Status.PENDING),
        "statusmsg": Status.PENDING.message,
        "duration": duration_s,
        "datetime": iso_ms(at_ms),
        "uri": uri,
        **params.echo(),
        "mode": mode.value,
    }


def job_from_transition(record: Mapping[str, Any]) -> JobInfo | None:
    """The streaming job a queued JobTransition created; None for any other transition or a batch job."""
    metadata = dict(record.get("metadata") or {})
    if record.get("from_status") is not None or metadata.get("mode") != Mode.STREAM.value:
        return None
    tasks = Tasks.parse(metadata["tasks"]) if "tasks" in metadata else Tasks()
    channels = metadata.get("channels", "2")
    return JobInfo(
        pid=int(record["job_id"]),
        cid=int(record["cid"]),
        mode=Mode.STREAM.value,
        channels=int(channels) if channels in ("1", "2") else 2,
        tasks=tasks,
        metadata=metadata,
        status=int(record["to_status"]),
    )


def call_event(job: JobInfo, kind: str, payload: Record, at_ms: int, raw: str) -> Record:
    """A CallEvent of an Oliver stream (call id = pid); the id derives from the pid and the event kind."""
    return {
        "event_id": f"oliver:{job.pid}:{kind}",
        "call_id": str(job.pid),
        "cid": job.cid,
        "source": "OLIVER",
        "occurred_at": at_ms,
        "received_at": at_ms,
        "payload": (f"{_CALLS}.{kind}", payload),
        "raw": raw,
        "attributes": {"pid": str(job.pid), "mode": Mode.STREAM.value},
    }


def stream_started(job: JobInfo, fmt: StreamFormat, channels: int, at_ms: int, raw: str) -> list[Record]:
    """CallStarted (direction, ANI, agent and customer ids from the job) and StreamStarted.

    StreamStarted.sample_rate is 8000 Hz for ``raw``; for ``wav``/``mp3`` it is 0: the rate is only
    known from the audio itself and is on every AudioChunk.
    """
    direction = {str(int(d)): f"{'IN' if d == CallDirection.INCOMING else 'OUT'}BOUND" for d in CallDirection}
    participants = [
        {"role": role, "participant_id": job.metadata[key]}
        for role, key in (("AGENT", "agentId"), ("CUSTOMER", "customerId"))
        if job.metadata.get(key)
    ]
    started = {
        "from_number": job.metadata.get("ANI"),
        "to_number": None,
        "direction": direction.get(job.metadata.get("calldirection", ""), "UNSPECIFIED"),
        "participants": participants,
        "answered": True,
    }
    stream = {
        "stream_id": str(job.pid),
        "codec": STREAM_CODEC[fmt],
        "sample_rate": RAW_SAMPLE_RATE if fmt == StreamFormat.RAW else 0,
        "channels": channels,
    }
    return [
        call_event(job, "CallStarted", started, at_ms, raw),
        call_event(job, "StreamStarted", stream, at_ms, raw),
    ]


def stream_stopped(job: JobInfo, reason: str, duration_ms: int | None, at_ms: int, raw: str) -> list[Record]:
    """StreamStopped and CallEnded (an Oliver stream is the whole call); ``reason`` is empty for a normal end."""
    return [
        call_event(job, "StreamStopped", {"stream_id": str(job.pid), "reason": reason}, at_ms, raw),
        call_event(job, "CallEnded", {"reason": reason or "end", "duration_ms": duration_ms}, at_ms, raw),
    ]


def audio_chunk(job: JobInfo, chunk: Chunk, sequence: int, received_ms: int) -> Record:
    """AudioChunk of streamed audio (call id = pid)."""
    return {
        "call_id": str(job.pid),
        "cid": job.cid,
        "track": track_for(chunk.channels),
        "role": "UNSPECIFIED",
        "codec": chunk.codec,
        "sample_rate": chunk.sample_rate,
        "channels": chunk.channels,
        "sequence": sequence,
        "start_sample": chunk.start_sample,
        "media_timestamp_ms": None,
        "received_at": received_ms,
        "payload": chunk.payload,
    }


@dataclass
class ResultStream:
    """Numbers and shapes the result messages of one job on one socket; filters by the job's tasks."""

    pid: int
    tasks: Tasks
    sent: int = 0
    last_et: float = 0.0

    def message(self, name: str, record: Mapping[str, Any]) -> Record | None:
        """The JSON message for a record of this job, or None when the job's tasks do not ask for it."""
        if name == SPEECH_SEGMENT and self.tasks.stream:
            rate = int(record["sample_rate"]) or 1
            st, et = record["start_sample"] / rate, record["end_sample"] / rate
            return self._next(st, et, {"stream": _segment(record)})
        if name == ALERT and self.tasks.alerts:
            st, et = record["start_ms"] / 1000, record["end_ms"] / 1000
            return self._next(st, et, {"alerts": [_alert(record)]})
        if name == JOB_TRANSITION and int(record["to_status"]) in _FINAL:
            status = Status(int(record["to_status"]))
            body = {"status": int(status), "statusmsg": status.message, "reason": str(record.get("reason", ""))}
            return self._next(0.0, self.last_et, body, final=True)
        return None

    def _next(self, st: float, et: float, body: Record, final: bool = False) -> Record:
        message = {"id": f"{self.pid}-{self.sent}", "pid": self.pid, "st": round(st, 3), "et": round(et, 3)}
        self.sent += 1
        self.last_et = max(self.last_et, round(et, 3))
        return {**message, "is_final": final, **body}


_FINAL = frozenset(int(s) for s in Status if s.final)


def _segment(record: Mapping[str, Any]) -> Record:
    keys = ("segment_id", "track", "role", "kind", "start_sample", "end_sample", "sample_rate")
    return {
        **{k: record[k] for k in keys},
        **{k: record.get(k) for k in ("rms_dbfs", "peak_dbfs", "speech_probability")},
        "detector": record.get("detector", ""),
    }


def _alert(record: Mapping[str, Any]) -> Record:
    detected = record["detected_at"]
    detected_ms = int(detected.timestamp() * 1000) if isinstance(detected, datetime) else int(detected)
    return {
        "id": record["alert_id"],
        "type": record["rule_id"],
        "severity": record["severity"],
        "st": record["start_ms"] / 1000,
        "et": record["end_ms"] / 1000,
        "detected_at": iso_ms(detected_ms),
        "details": dict(record.get("details") or {}),
    }


def dumps(message: Mapping[str, Any]) -> str:
    """Compact JSON text of a socket message."""
    return json.dumps(message, separators=(",", ":"))
