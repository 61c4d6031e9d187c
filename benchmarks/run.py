"""One command, one report: the references and Switchboard side by side, in the same run.

Run:   .venv/bin/python benchmarks/run.py            (full; ~20 min on 2 cores; `make bench`)
       .venv/bin/python benchmarks/run.py --smoke    (about a minute; CI)
Kafka: SWITCHBOARD_KAFKA_BOOTSTRAP for the reference sections (unique uuid topics, left behind), or
unset: a local broker is started for them. The end-to-end section starts its own `switchboard up`.
Writes benchmarks/RESULTS.md and benchmarks/results.json (or --out DIR).

Sections: conditions; end to end (concurrent calls sustained, latency, CPU and memory per process,
worker profile: benchmarks/e2e.py); Kafka ceiling (raw aiokafka); Faust ceiling (pass-through agent
vs raw loop: faust_ceiling.py); G.711 (audioop vs ours); VAD speed (webrtcvad / Silero direct vs
TrackVad); the worker's per-call pipeline in process with a cProfile; uploaded-file job (1 h of
stereo audio end to end: upload_job.py); store ceiling (chDB inserts vs the projector:
store_ceiling.py); VAD quality (full run only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import e2e as e2e_bench
import faust_ceiling
import g711 as g711_bench
import store_ceiling
import upload_job
import vad as vad_bench

from infra.broker import LocalBroker
from infra.settings import Settings
from infra.simulate.codecs import ulaw_encode
from infra.simulate.plan import build_plan
from infra.simulate.speech import RATE_HZ, Voice
from processors.audio import g711

SECTIONS = (
    "Conditions",
    "End to end",
    "Kafka ceiling",
    "Faust ceiling",
    "G.711",
    "VAD speed",
    "Worker pipeline",
    "Profile",
    "Uploaded-file job",
    "Store ceiling",
    "VAD quality",
)
PACKAGES = ("numpy", "scipy", "aiokafka", "faust-streaming", "fastavro", "onnxruntime", "webrtcvad-wheels", "av",
            "chdb", "clickhouse-connect", "py-spy")  # fmt: skip
CHUNK = 1600  # 200 ms at 8 kHz: the gateway's record size


def conditions(smoke: bool) -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if smoke else "full",
        "cpu": model,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "packages": versions,
        "note": os.environ.get(
            "SWITCHBOARD_BENCH_NOTE",
            "every process of the run (broker, gateway, worker, projector, load generator) shares these cores; "
            "nothing else was meant to run, see the load average",
        ),
    }


# ---------------------------------------------------------------- Kafka ceiling


async def kafka_ceiling(bootstrap: str, records: int) -> dict[str, Any]:
    """Produce ``records`` PCMU-chunk-sized values (acks=all, idempotent) and consume them back."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"bench-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    value = os.urandom(CHUNK + 200)  # payload + Avro envelope of an AudioChunk
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        start = time.perf_counter()
        futures = [await producer.send(topic, value, key=f"call-{i % 200}".encode()) for i in range(records)]
        await asyncio.gather(*futures)
        produce_s = time.perf_counter() - start
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        start, seen = time.perf_counter(), 0
        while seen < records:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(v) for v in batch.values())
        consume_s = time.perf_counter() - start
    finally:
        await consumer.stop()
    mb = records * len(value) / 1e6
    return {
        "records": records,
        "record_bytes": len(value),
        "produce_records_per_s": round(records / produce_s),
        "produce_mb_per_s": round(mb / produce_s, 1),
        "consume_records_per_s": round(records / consume_s),
        "consume_mb_per_s": round(mb / consume_s, 1),
        # two tracks x 5 records/s per call
        "calls_at_produce_ceiling": round(records / produce_s / 10),
    }


# ---------------------------------------------------------------- G.711


def g711_table() -> list[dict[str, Any]]:
    audioop = g711_bench.audioop
    rng = np.random.default_rng(7)
    pcm = rng.normal(0, 4000, 60 * RATE_HZ).clip(-32768, 32767).astype(np.int16)
    ulaw = g711.ulaw_encode(pcm)
    chunks = [ulaw[i : i + CHUNK] for i in range(0, len(ulaw), CHUNK)]
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("ulaw decode 60 s", lambda: g711.ulaw_decode(ulaw), lambda: audioop.ulaw2lin(ulaw, 2)),
        ("ulaw decode 300 x 200 ms records", lambda: [g711.ulaw_decode(c) for c in chunks],
         lambda: [audioop.ulaw2lin(c, 2) for c in chunks]),
        ("ulaw encode 60 s", lambda: g711.ulaw_encode(pcm), lambda: audioop.lin2ulaw(pcm.tobytes(), 2)),
    ]  # fmt: skip
    out = []
    for name, ours, reference in cases:
        t_ours, t_ref = g711_bench._best(ours, repeat=5, number=3), g711_bench._best(reference, repeat=5, number=3)
        out.append({"case": name, "ours_ms": t_ours * 1e3, "audioop_ms": t_ref * 1e3, "ratio": t_ours / t_ref})
    return out


# ---------------------------------------------------------------- VAD speed


def demote(text: str) -> str:
    """A captured markdown table, its headings one level down (they sit under this report's sections)."""
    return "\n".join("#" + line if line.startswith("#") else line for line in text.strip().splitlines())


def vad_speed(seconds: int) -> str:
    voice = Voice(Path.home() / ".cache" / "switchboard" / "speech")
    speech = np.concatenate([voice.say(t) for t in vad_bench.SENTENCES[:4]]).astype(np.float64)
    clean = np.resize(speech, seconds * RATE_HZ)
    samples = vad_bench.to_int16(clean + np.random.default_rng(7).normal(0, 100, clean.size))
    vad_bench.shared_silero_model()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        vad_bench.speed(samples)
    return demote(out.getvalue())


# ---------------------------------------------------------------- worker pipeline


def call_records(seconds: float) -> list[tuple[str, dict[str, Any]]]:
    """A planned two-track PCMU call as the gateway records it: CallStarted, 200 ms chunks, CallEnded."""
    from schemas import AUDIO_CHUNK, CALL_EVENT

    plan = build_plan(Voice(Path.home() / ".cache" / "switchboard" / "speech"), seconds, with_hold=False)
    origin = int(time.time() * 1000)

    def event(kind: str, at_ms: int, **payload: Any) -> tuple[str, dict[str, Any]]:
        when = origin + at_ms
        payload_ = (f"io.switchboard.calls.{kind}", payload)
        record = {"event_id": f"bench-{kind}", "call_id": "bench", "cid": 1, "source": "TELNYX", "occurred_at": when,
                  "received_at": when, "payload": payload_, "raw": "", "attributes": {}}  # fmt: skip
        return CALL_EVENT, record

    out = [event("CallStarted", 0, direction="INBOUND")]
    for seq in range(plan.agent.size // CHUNK):
        for track, pcm in (("inbound", plan.customer), ("outbound", plan.agent)):
            start = seq * CHUNK
            out.append((AUDIO_CHUNK, {
                "call_id": "bench", "cid": 1, "track": track, "role": "UNSPECIFIED", "codec": "PCMU",
                "sample_rate": RATE_HZ, "channels": 1, "sequence": seq, "start_sample": start,
                "media_timestamp_ms": start // 8, "received_at": origin + start // 8,
                "payload": ulaw_encode(pcm[start : start + CHUNK]),
            }))  # fmt: skip
    out.append(event("CallEnded", int(seconds * 1000), reason="hangup"))
    return out


def pipeline_speed(seconds: float, engine: str, profile: bool) -> tuple[dict[str, Any], str]:
    """Feed one call through CallPipeline in process: x real time, calls per core, and optionally a profile."""
    from processors.app import pipeline_config
    from processors.pipeline import CallPipeline
    from processors.rules.model import DEFAULT_RULES
    from schemas import ALERT, SPEECH_SEGMENT, AvroCodec

    codec = AvroCodec.default()
    records = [(n, codec.decode(codec.encode(n, r)).record) for n, r in call_records(seconds)]
    config = pipeline_config(Settings(vad_engine=engine))
    pipe = CallPipeline("bench", config, DEFAULT_RULES)
    profiler = cProfile.Profile() if profile else None
    outputs: list[tuple[str, Any]] = []
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for name, record in records:
        outputs += pipe.on_record(name, record)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - start
    kinds = sorted({r["rule_kind"] for n, r in outputs if n == ALERT})
    result = {
        "vad_engine": engine,
        "call_seconds": seconds,
        "records": len(records),
        "process_s": round(elapsed, 3),
        "x_real_time": round(seconds / elapsed, 1),
        "calls_per_core": int(seconds / elapsed),
        "speech_records": sum(1 for n, _ in outputs if n == SPEECH_SEGMENT),
        "alert_kinds": kinds,
    }
    text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        text = "\n".join(line for line in out.getvalue().splitlines() if line.strip())
    return result, text


# ---------------------------------------------------------------- report


def vad_quality() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        vad_bench.quality()
    return demote(out.getvalue())


def markdown(results: dict[str, Any]) -> str:
    c = results["conditions"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `benchmarks/run.py{' --smoke' if c['mode'] == 'smoke' else ''}` on {c['date']}. "
        "Every reference ran in the same process tree and the same run as what it is compared with.",
        "",
        "## Conditions",
        "",
        f"- CPU: {c['cpu']}, {c['cores']} cores, load average at start {c['load_average']}",
        f"- Python {c['python']}; " + ", ".join(f"{k} {v}" for k, v in c["packages"].items()),
        f"- Note: {c['note']}",
        "",
        e2e_bench.markdown(results["e2e"]),
        "## Kafka ceiling",
        "",
    ]
    k = results["kafka"]
    lines += [
        f"Raw aiokafka, idempotent producer (acks=all), {k['records']} records of {k['record_bytes']} bytes "
        f"(a 200 ms PCMU AudioChunk): produce {k['produce_records_per_s']:,} rec/s ({k['produce_mb_per_s']} "
        f"MB/s), consume {k['consume_records_per_s']:,} rec/s ({k['consume_mb_per_s']} MB/s). At 10 records/s "
        f"per two-track call, Kafka alone carries about {k['calls_at_produce_ceiling']:,} calls here."
    ]
    lines += ["", faust_ceiling.markdown(results["faust"])]
    lines += ["## G.711", "", "| case | ours | audioop | ours/audioop |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['ours_ms']:.3f} ms | {r['audioop_ms']:.3f} ms | {r['ratio']:.2f}x |"
              for r in results["g711"]]  # fmt: skip
    lines += ["", "## VAD speed", "", results["vad_speed"], "", "## Worker pipeline", ""]
    lines += ["One call through `processors.pipeline.CallPipeline` in process (decode, VAD, talk analytics, "
              "prosody, every default rule), the worker's per-record work without Kafka or Faust.", "",
              "| VAD | call | records | time | x real time | calls per core | alerts |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in results["pipeline"]:
        lines.append(
            f"| {p['vad_engine']} | {p['call_seconds']:.0f} s | {p['records']} | {p['process_s']} s | "
            f"{p['x_real_time']}x | {p['calls_per_core']} | {', '.join(p['alert_kinds']) or '-'} |"
        )
    lines += ["", "## Profile", "", "cProfile of the webrtc pipeline run above, by cumulative time:", "", "```",
              results["profile"], "```", "", upload_job.markdown(results["upload_job"]),
              store_ceiling.markdown(results["store"]),
              "## VAD quality", "", results["vad_quality"]]  # fmt: skip
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def kafka_for_references() -> Iterator[str]:
    """SWITCHBOARD_KAFKA_BOOTSTRAP, or a local broker started for the run and stopped after it."""
    if os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP"):
        yield os.environ["SWITCHBOARD_KAFKA_BOOTSTRAP"]
        return
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="sb-bench-kafka-") as workdir:
        broker = LocalBroker(workdir=Path(workdir), jars_dir=settings.kafka_jars_dir, port=0,
                             heap=settings.kafka_heap, start_timeout_s=settings.kafka_start_timeout_s)  # fmt: skip
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="minutes, for CI: tiny inputs, no VAD quality")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="report directory")
    parser.add_argument("--calls", default="4,8,12,16,20,24,32,40", help="end-to-end ladder of concurrent calls")
    args = parser.parse_args()
    smoke: bool = args.smoke
    results: dict[str, Any] = {"conditions": conditions(smoke)}
    print("end to end ...", flush=True)
    ladder = [2] if smoke else [int(c) for c in args.calls.split(",")]
    results["e2e"] = asyncio.run(e2e_bench.ladder(ladder, 12.0 if smoke else 60.0, 1.0 if smoke else 10.0))
    with kafka_for_references() as bootstrap:
        print("Kafka and Faust ceilings ...", flush=True)
        results["kafka"] = asyncio.run(kafka_ceiling(bootstrap, 500 if smoke else 50_000))
        results["faust"] = asyncio.run(faust_ceiling.run(bootstrap, smoke))
        print("uploaded-file job and store ceiling ...", flush=True)
        results["upload_job"] = asyncio.run(upload_job.run(bootstrap, smoke))
        results["store"] = asyncio.run(store_ceiling.run(bootstrap, smoke))
    print("G.711, VAD, pipeline ...", flush=True)
    results["g711"] = g711_table()
    results["vad_speed"] = vad_speed(5 if smoke else 60)
    call_s = 10.0 if smoke else 300.0
    webrtc, profile = pipeline_speed(call_s, "webrtc", profile=True)
    results["pipeline"] = [webrtc] + ([] if smoke else [pipeline_speed(call_s, "silero", profile=False)[0]])
    results["profile"] = profile
    results["vad_quality"] = "(full run only)" if smoke else vad_quality()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "RESULTS.md").write_text(markdown(results), encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"wrote {args.out / 'RESULTS.md'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
