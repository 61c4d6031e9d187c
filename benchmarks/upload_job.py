"""Uploaded-file jobs end to end: x real time for 1 h of stereo audio through the real gateway and worker.

Run:   /tmp/venv/bin/python benchmarks/upload_job.py            (1 h of audio; needs a Kafka broker)
       /tmp/venv/bin/python benchmarks/upload_job.py --smoke    (20 s of audio)
Kafka: SWITCHBOARD_KAFKA_BOOTSTRAP (fresh uuid-prefixed topics are created and left behind).

A planned two-party conversation (``infra.simulate.plan``, espeak-ng speech, overtalk, dead air,
monologue) is tiled to the length and written as a stereo 8 kHz 16-bit WAV (channel 0 agent,
1 customer). ``switchboard gateway`` and ``switchboard worker`` run as subprocesses on fresh topics;
the file is POSTed to the Oliver upload API (``/client/{cid}/process/audio``) and the job is followed
on jobs.transitions (read_committed, as the projector reads it). Measured: the upload, queued ->
processing -> completed from the JobTransition ``at`` stamps, the wall time until ``completed`` is
visible, the worker's CPU seconds and peak RSS. The reference, in the same run: the worker's own
work (``decode_file`` + ``processors.jobs.run_file``) called in this process on the same file,
without Kafka; its result document must equal the job's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from procs import usage

from infra.broker import free_port
from infra.settings import Settings
from infra.simulate.plan import build_plan
from infra.simulate.speech import RATE_HZ, Voice
from infra.topics import Topics, ensure_topics
from processors.rules.model import DEFAULT_RULES

REPO = Path(__file__).resolve().parent.parent
FULL_S = 3600
SMOKE_S = 20
PLAN_S = 300  # one planned conversation, tiled to the length
CID = 1
KEY = "bench-upload-key"
FRAME = RATE_HZ // 100  # 10 ms
SPEECH_RMS = 200.0  # 10x the plan's noise floor
TALK_TOLERANCE = 0.05  # the job's talk time per party must be within 5 % of the energy reference
Int16 = npt.NDArray[np.int16]


class BenchError(Exception):
    """The benchmark could not measure: a process died, the job failed, or a result is not what the audio holds."""


@dataclass(frozen=True)
class Conversation:
    """Both tracks (8 kHz int16) and what the plan puts in them."""

    agent: Int16
    customer: Int16
    expected_alerts: dict[str, int]

    @property
    def seconds(self) -> float:
        return self.agent.size / RATE_HZ


def conversation(seconds: int) -> Conversation:
    """A ``PLAN_S`` (or shorter) planned call repeated to ``seconds``; expected alerts counted per repeat."""
    plan = build_plan(Voice(Path.home() / ".cache" / "switchboard" / "speech"), min(seconds, PLAN_S), with_hold=False)
    repeats = -(-seconds // int(plan.seconds))
    total = seconds * RATE_HZ
    expected = Counter(e.kind for e in plan.expected)
    return Conversation(
        np.tile(plan.agent, repeats)[:total],
        np.tile(plan.customer, repeats)[:total],
        {kind: n * repeats for kind, n in sorted(expected.items())},
    )


def energy_talk_ms(track: Int16, settings: Settings) -> int:
    """Talk time (ms) by energy: 10 ms frames above ``SPEECH_RMS``, smoothed with the worker's VAD settings."""
    frames = track[: track.size // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    active = np.sqrt((frames**2).mean(axis=1)) > SPEECH_RMS
    runs = _runs(active)
    bridged: list[list[int]] = []
    for start, end in runs:
        if bridged and (start - bridged[-1][1]) * 10 < settings.vad_min_silence_ms:
            bridged[-1][1] = end
        else:
            bridged.append([start, end])
    kept = [(s, e) for s, e in bridged if (e - s) * 10 >= settings.vad_min_speech_ms]
    pad = settings.vad_hangover_ms // 10
    mask = np.zeros(active.size, dtype=bool)
    for start, end in kept:
        mask[max(0, start - pad) : end + pad] = True
    return int(mask.sum()) * 10


def _runs(active: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) frame indices of the True runs of ``active``."""
    edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def write_wav(path: Path, conv: Conversation) -> int:
    """Stereo 16-bit WAV at 8 kHz (channel 0 agent, 1 customer), written in one-minute blocks; its size in bytes."""
    block = 60 * RATE_HZ
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        for start in range(0, conv.agent.size, block):
            pair = np.stack([conv.agent[start : start + block], conv.customer[start : start + block]], axis=1)
            out.writeframes(pair.astype("<i2").tobytes())
    return path.stat().st_size


# ---------------------------------------------------------------- processes


class Child:
    """One ``switchboard`` subprocess (``python -m infra.cli <command>``), logging to ``<logs>/<command>.log``."""

    def __init__(self, command: str, env: dict[str, str], logs: Path) -> None:
        self.command = command
        self.log = logs / f"{command}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", command], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.command} exited with {self.proc.returncode}:\n{self.tail()}")

    async def wait_for_log(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.command} never logged {text!r} in {timeout_s:.0f} s:\n{self.tail()}")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


async def wait_healthy(url: str, gateway: Child, timeout_s: float = 60) -> None:
    """Until the gateway answers ``GET /healthz``."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            gateway.check_alive()
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.2)
    raise BenchError(f"the gateway did not answer {url}/healthz within {timeout_s:.0f} s:\n{gateway.tail()}")


def child_env(settings: Settings, gateway_port: int) -> dict[str, str]:
    """The environment of the gateway and worker subprocesses: this run's topics, data, key and limits."""
    return settings.child_env(
        SWITCHBOARD_GATEWAY_PORT=str(gateway_port),
        SWITCHBOARD_MAX_UPLOAD_BYTES=str(settings.max_upload_bytes),
        SWITCHBOARD_API_KEYS=json.dumps({str(CID): KEY}),
    )


# ---------------------------------------------------------------- the job


def upload(url: str, path: Path) -> tuple[int, float]:
    """POST the file to the Oliver upload API, streamed from disk; (pid, seconds from request start to the 2xx)."""
    params: dict[str, str | int] = {"channels": 2, "calldirection": 1, "agentId": "bench-agent", "name": "bench-1h"}
    with path.open("rb") as body, httpx.Client(timeout=600) as client:
        start = time.perf_counter()
        response = client.post(
            f"{url}/client/{CID}/process/audio",
            params=params,
            headers={"X-Auth-Token": KEY},
            files={"file": (path.name, body, "audio/wav")},
        )
        seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise BenchError(f"upload refused: HTTP {response.status_code} {response.text[:500]}")
    return int(response.json()["pid"]), seconds


async def follow(
    settings: Settings, topic: str, pid: int, worker: Child, timeout_s: float
) -> dict[int, dict[str, Any]]:
    """The job's transitions by to_status, each with ``seen_ms`` (wall ms this read_committed reader got it),
    until it completes; a failed or aborted job, a dead worker or the timeout is a ``BenchError``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from processors.session import epoch_ms
    from schemas import AvroCodec

    codec = AvroCodec.default()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    seen: dict[int, dict[str, Any]] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]  # as ensure_topics made it
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while 2 not in seen:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"job {pid} did not complete in {timeout_s:.0f} s (saw {sorted(seen)}):\n{worker.tail()}"
                )
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for msg in messages:
                    record = codec.decode(msg.value).record
                    if record["job_id"] == pid:
                        seen_ms = time.time_ns() // 1_000_000
                        seen[record["to_status"]] = {**record, "at": epoch_ms(record["at"]), "seen_ms": seen_ms}
            if bad := {-1, -2} & set(seen):
                raise BenchError(f"job {pid} failed: {seen[bad.pop()]['reason']}\n{worker.tail()}")
    finally:
        await consumer.stop()
    return seen


def timeline(seen: dict[int, dict[str, Any]], start_ms: int, audio_s: float, upload_s: float) -> dict[str, Any]:
    """Durations (s) between the job's transitions and x real time, from the JobTransition ``at`` stamps."""
    queued, processing, done = (seen[s] for s in (0, 1, 2))
    total_s = (done["seen_ms"] - start_ms) / 1000
    processing_s = (done["at"] - processing["at"]) / 1000
    return {
        "upload_s": round(upload_s, 3),
        "queued_after_s": round((queued["at"] - start_ms) / 1000, 3),
        "queued_to_processing_s": round((processing["at"] - queued["at"]) / 1000, 3),
        "processing_to_completed_s": round(processing_s, 3),
        "completed_visible_after_s": round((done["seen_ms"] - done["at"]) / 1000, 3),
        "total_s": round(total_s, 3),
        "x_real_time": round(audio_s / total_s, 1),
        "x_real_time_processing": round(audio_s / processing_s, 1),
    }


async def end_to_end(settings: Settings, wav: Path, audio_s: float, timeout_s: float) -> dict[str, Any]:
    """Gateway and worker subprocesses on fresh topics; upload ``wav`` and follow the job to completion.

    If anything fails, the processes' logs are copied to a kept directory named in the error."""
    assert settings.kafka_bootstrap is not None
    topics = Topics.from_settings(settings)
    await ensure_topics(settings.kafka_bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=1)
    port = free_port()
    env = child_env(settings, port)
    gateway = Child("gateway", env, settings.data_dir)
    worker = Child("worker", env, settings.data_dir)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, gateway)
        await worker.wait_for_log("Worker ready", timeout_s=120)
        before = {"gateway": usage(gateway.pid), "worker": usage(worker.pid)}
        start_ms = time.time_ns() // 1_000_000
        pid, upload_s = await asyncio.to_thread(upload, url, wav)
        seen = await follow(settings, topics.transitions, pid, worker, timeout_s)
        after = {"gateway": usage(gateway.pid), "worker": usage(worker.pid)}
    except BenchError as exc:
        kept = Path(tempfile.mkdtemp(prefix="bench-upload-logs-"))
        for child in (gateway, worker):
            child.stop()
            shutil.copy(child.log, kept / child.log.name)
        raise BenchError(f"{exc}\n(gateway and worker logs kept in {kept})") from exc
    finally:
        gateway.stop()
        worker.stop()
    out = timeline(seen, start_ms, audio_s, upload_s)
    out["pid"] = pid
    out["status"] = "completed"
    out["processes"] = {
        name: {
            "cpu_s": round(after[name].cpu_s - before[name].cpu_s, 2),
            "rss_before_mb": round(before[name].rss_mb, 1),
            "peak_rss_mb": round(after[name].peak_rss_mb, 1),
        }
        for name in before
    }
    out["results"] = json.loads(seen[2]["results"])
    return out


# ---------------------------------------------------------------- reference and checks


def in_process(wav: Path, settings: Settings) -> dict[str, Any]:
    """What the worker does for the job, called directly on the same file (no Kafka, no Faust)."""
    from processors.app import pipeline_config
    from processors.audio.files import decode_file
    from processors.jobs import run_file

    config, rules = pipeline_config(settings), replace(DEFAULT_RULES, cid=CID)
    metadata = {"mode": "batch", "channels": "2"}
    start = time.perf_counter()
    decoded = decode_file(wav)
    decoded_s = time.perf_counter() - start
    run = run_file("bench", CID, decoded, metadata, config, rules, int(time.time() * 1000))
    total_s = time.perf_counter() - start
    return {
        "decode_s": round(decoded_s, 3),
        "total_s": round(total_s, 3),
        "x_real_time": round(decoded.duration_s / total_s, 1),
        "outputs": len(run.outputs),
        "results": run.results,
    }


def checks(conv: Conversation, job: dict[str, Any], reference: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Did the job analyse this audio: talk time per party vs energy, alert kinds vs plan, equal to the reference."""
    metrics = job["results"]["metrics"]
    talk = {}
    for role, track in (("agent", conv.agent), ("customer", conv.customer)):
        energy, found = energy_talk_ms(track, settings), int(metrics[f"talk_{role}_ms"])
        talk[role] = {"job_ms": found, "energy_ms": energy, "deviation": round(found / energy - 1, 4)}
    raised = Counter(a["kind"] for a in job["results"]["alerts"])
    ruled = {rule.kind for rule in DEFAULT_RULES.rules if rule.enabled}
    planned = {kind: n for kind, n in conv.expected_alerts.items() if kind in ruled}
    alerts = {kind: {"planned": n, "raised": raised.get(kind, 0)} for kind, n in planned.items()}
    return {
        "talk": talk,
        "talk_ok": all(abs(t["deviation"]) <= TALK_TOLERANCE for t in talk.values()),
        "alerts": alerts,
        "planned_without_default_rule": sorted(set(conv.expected_alerts) - ruled),
        "other_alerts": {k: n for k, n in sorted(raised.items()) if k not in planned},
        "alerts_ok": all(a["raised"] == a["planned"] for a in alerts.values()),
        "same_as_in_process": job["results"] == reference["results"],
    }


async def run(bootstrap: str, smoke: bool, *, seconds: int | None = None) -> dict[str, Any]:
    """The whole benchmark on ``bootstrap``; JSON-able. ``smoke``: 20 s of audio instead of 1 h;
    ``seconds`` overrides the length (e.g. to find the longest file a worker completes)."""
    seconds = seconds or (SMOKE_S if smoke else FULL_S)
    conv = conversation(seconds)
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), kafka_bootstrap=bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:10]}.", topic_partitions=3
        )
        wav = settings.data_dir / "conversation.wav"
        file_bytes = write_wav(wav, conv)
        default_limit = settings.max_upload_bytes
        if file_bytes > default_limit:
            settings = settings.model_copy(update={"max_upload_bytes": file_bytes})
        job = await end_to_end(settings, wav, conv.seconds, timeout_s=max(180.0, float(seconds)))
        reference = await asyncio.to_thread(in_process, wav, settings)
    found = checks(conv, job, reference, settings)
    return {
        "mode": "smoke" if smoke else "full",
        "audio_s": conv.seconds,
        "file_bytes": file_bytes,
        "upload_limit": {
            "setting": "SWITCHBOARD_MAX_UPLOAD_BYTES (Settings.max_upload_bytes)",
            "default_bytes": default_limit,
            "used_bytes": settings.max_upload_bytes,
            "one_hour_stereo_8k_16bit_bytes": FULL_S * RATE_HZ * 2 * 2 + 44,
        },
        "processes": "gateway and worker as `python -m infra.cli gateway|worker` subprocesses",
        "job": {k: v for k, v in job.items() if k != "results"},
        "result_summary": _summary(job["results"]),
        "in_process": {k: v for k, v in reference.items() if k != "results"},
        "end_to_end_over_in_process": round(job["total_s"] / reference["total_s"], 2),
        "checks": found,
    }


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    metrics = results["metrics"]
    keys = ("talk_agent_ms", "talk_customer_ms", "silence_ms", "overtalk_ms", "speaker_changes")
    return {
        "totalduration_s": results["basic"]["totalduration"],
        "segments": results["segments"],
        "alerts": len(results["alerts"]),
        **{k: metrics[k] for k in keys},
    }


# ---------------------------------------------------------------- report


def markdown(result: dict[str, Any]) -> str:
    """The "## Uploaded-file job" section of the report."""
    job, ref, chk, lim = result["job"], result["in_process"], result["checks"], result["upload_limit"]
    p, summary = job["processes"], result["result_summary"]
    talk = "; ".join(
        f"{role} {t['job_ms'] / 1000:.1f} s vs {t['energy_ms'] / 1000:.1f} s by energy ({t['deviation']:+.1%})"
        for role, t in chk["talk"].items()
    )
    alerts = ", ".join(f"{k} {a['raised']}/{a['planned']}" for k, a in chk["alerts"].items()) or "none planned"
    others = ", ".join(f"{k} {n}" for k, n in chk["other_alerts"].items()) or "none"
    unruled = ", ".join(chk["planned_without_default_rule"]) or "none"
    limit = (
        f"fits the default upload limit ({lim['default_bytes']:,} bytes)"
        if lim["used_bytes"] == lim["default_bytes"]
        else f"exceeds the default limit {lim['default_bytes']:,}: run with {lim['setting']}={lim['used_bytes']}"
    )
    lines = [
        "## Uploaded-file job",
        "",
        f"{_length(result['audio_s'])} of stereo 8 kHz 16-bit WAV ({result['file_bytes']:,} bytes, {limit}; "
        f"1 h needs {lim['one_hour_stereo_8k_16bit_bytes']:,}) of planned two-party conversation, POSTed to "
        f"`/client/{{cid}}/process/audio`; {result['processes']}, fresh topics; times from the JobTransition stamps.",
        "",
        "| upload | upload -> queued | queued -> processing | processing -> completed | completed visible after | "
        "total | x real time | x real time (processing) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {job['upload_s']} s | {job['queued_after_s']} s | {job['queued_to_processing_s']} s | "
        f"{job['processing_to_completed_s']} s | {job['completed_visible_after_s']} s | {job['total_s']} s | "
        f"{job['x_real_time']}x | {job['x_real_time_processing']}x |",
        "",
        f"- Worker during the job: {p['worker']['cpu_s']} CPU s, peak RSS {p['worker']['peak_rss_mb']} MB "
        f"(before: {p['worker']['rss_before_mb']} MB); gateway: {p['gateway']['cpu_s']} CPU s, peak RSS "
        f"{p['gateway']['peak_rss_mb']} MB.",
        f"- In process (`decode_file` + `run_file`, no Kafka): {ref['total_s']} s (decode {ref['decode_s']} s), "
        f"{ref['x_real_time']}x real time; end to end takes {result['end_to_end_over_in_process']}x as long.",
        f"- Result: {summary['segments']} speech segments, {summary['alerts']} alerts, "
        f"{summary['totalduration_s']} s analysed; same document as in process: {chk['same_as_in_process']}.",
        f"- Talk time: {talk} (within {TALK_TOLERANCE:.0%}: {chk['talk_ok']}).",
        f"- Alerts raised/planned: {alerts} (as planned: {chk['alerts_ok']}); others: {others}; planned but not "
        f"in the default rules: {unruled}.",
    ]
    return "\n".join(lines) + "\n"


def _length(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="20 s of audio instead of 1 h")
    parser.add_argument("--seconds", type=int, default=None, help="audio length in s (overrides the mode's)")
    args = parser.parse_args()
    bootstrap = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP")
    if not bootstrap:
        parser.error("SWITCHBOARD_KAFKA_BOOTSTRAP is not set")
    result = asyncio.run(run(bootstrap, bool(args.smoke), seconds=args.seconds))
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
