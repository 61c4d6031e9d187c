"""The framework's ceiling: a pass-through Faust agent vs a raw aiokafka consume -> produce loop, same records.

Run: /tmp/venv/bin/python benchmarks/faust_ceiling.py [--smoke]   (Kafka: SWITCHBOARD_KAFKA_BOOTSTRAP)

Topic A is pre-filled with N records of 1,800 bytes (a 200 ms PCMU AudioChunk with its envelope),
keyed by 200 call ids. Each variant then runs as its own subprocess and copies A to a fresh topic B:
a real Faust worker (our worker's app settings, exactly_once and at_least_once) whose agent sends
each record unchanged the way our agents send outputs, and a raw aiokafka loop (plain idempotent
producer; transactional producer committing offsets in the transaction). This process watches B
with a read_committed consumer. Rate = N / (first output record's CreateTime -> last record
visible); startup = process start -> first output record, reported apart. Under exactly-once
nothing on B is visible before the first commit, so the rate starts at the first record's
creation rather than its visibility, or a short run would measure only commit intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.settings import Settings

if TYPE_CHECKING:
    import faust

RECORD_BYTES = 1800
KEYS = 200
INDEX_BYTES = 8  # each value starts with its record index, so B is checked complete and duplicate-free
FAST_COMMIT_S = 0.1


class CeilingError(Exception):
    """A variant failed or did not copy every record in time; the message names it and its log."""


@dataclass(frozen=True)
class Plan:
    """What every variant of one run shares: the broker, the pre-filled topic and the commit policy."""

    bootstrap: str
    source: str
    records: int
    commit_every: int
    workdir: Path


@dataclass(frozen=True)
class Variant:
    """One pass-through: ``faust`` (guarantee) or ``raw`` (transactional or not, commit every ``commit_s``)."""

    name: str
    kind: str
    guarantee: str = "at_least_once"
    commit_s: float = 0.0


def bench_settings(prefix: str, data_dir: Path) -> Settings:
    """Our worker's settings with this run's topic prefix (and so app id) and data directory."""
    return Settings(topic_prefix=prefix, data_dir=data_dir, worker_web_port=0)


def faust_app(settings: Settings, bootstrap: str, guarantee: str) -> faust.App:
    """A Faust app configured as ``processors.app.create_app`` configures ours; only ``processing_guarantee``
    varies (that factory also registers our agents, so the app is built here from the same options)."""
    import faust

    from processors.app import app_options

    options = {**app_options(settings, bootstrap, settings.data_dir / "worker"), "processing_guarantee": guarantee}
    return faust.App(settings.group(settings.worker_id), **options)


# ---------------------------------------------------------------- the subprocesses


def faust_child(args: argparse.Namespace) -> None:
    """Run the pass-through agent in a Faust worker until SIGTERM."""
    from infra.topics import Topics
    from processors import faust_fixes
    from processors.agents.outputs import TransactionalOutputs
    from processors.app import WorkerContext, run_worker
    from schemas import AvroCodec

    faust_fixes.apply()
    settings = bench_settings(args.prefix, Path(args.datadir))
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level, as in create_app
    app = faust_app(settings, args.bootstrap, args.guarantee)
    topics, codec = Topics.from_settings(settings), AvroCodec.default()
    outputs = TransactionalOutputs(app, topics, codec)
    exactly_once = args.guarantee == "exactly_once"
    sink: str = args.sink

    @app.agent(app.topic(args.source, key_type=bytes, value_type=bytes), name="passthrough")
    async def passthrough(stream: Any) -> None:
        async for event in stream.events():
            transaction = outputs.transaction(event) if exactly_once else None
            await app.producer.send(sink, event.key, event.value, None, None, None, transactional_id=transaction)

    run_worker(WorkerContext(app=app, topics=topics, codec=codec))  # as `switchboard worker` runs ours


async def raw_child(args: argparse.Namespace) -> None:
    """Copy ``args.records`` records, committing every ``commit_s`` s or ``commit_every`` records, then exit."""
    transactional = args.guarantee == "exactly_once"
    consumer = AIOKafkaConsumer(
        args.source,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed" if transactional else "read_uncommitted",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        enable_idempotence=True,
        acks="all",
        max_request_size=4 * 1024 * 1024,
        transactional_id=f"{args.group}-0" if transactional else None,
    )
    await producer.start()
    await consumer.start()
    try:
        await _copy(consumer, producer, args, transactional)
    finally:
        await consumer.stop()
        await producer.stop()


async def _copy(consumer: Any, producer: Any, args: argparse.Namespace, transactional: bool) -> None:
    done, since_commit, last_commit = 0, 0, time.monotonic()
    offsets: dict[Any, int] = {}
    pending: list[Any] = []
    if transactional:
        await producer.begin_transaction()
    while done < args.records:
        for tp, messages in (await consumer.getmany(timeout_ms=100)).items():
            for message in messages:
                pending.append(await producer.send(args.sink, message.value, key=message.key))
            offsets[tp] = messages[-1].offset + 1
            done += len(messages)
            since_commit += len(messages)
        due = time.monotonic() - last_commit >= args.commit_s or since_commit >= args.commit_every
        if offsets and (due or done >= args.records):
            if transactional:
                await producer.send_offsets_to_transaction(offsets, args.group)
                await producer.commit_transaction()
                if done < args.records:
                    await producer.begin_transaction()
            else:
                await asyncio.gather(*pending)
                await consumer.commit(offsets)
            pending, offsets, since_commit, last_commit = [], {}, 0, time.monotonic()


# ---------------------------------------------------------------- the measurement


async def create_topics(bootstrap: str, names: list[str], partitions: int, timeout_s: float = 30) -> None:
    """Create the topics and wait until every partition has a leader (fewer NotLeader retries in the timings)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
        deadline = time.monotonic() + timeout_s
        while not _led(await admin.describe_topics(names), partitions):
            if time.monotonic() > deadline:
                raise CeilingError(f"topics {names} have no leader for every partition after {timeout_s:g} s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def _led(described: list[dict[str, Any]], partitions: int) -> bool:
    led = [p for t in described for p in t.get("partitions") or [] if p.get("leader", -1) >= 0]
    return len(led) == partitions * len(described)


async def prefill(bootstrap: str, topic: str, records: int) -> float:
    """Write ``records`` values of RECORD_BYTES (index + random body); returns records/s."""
    body = os.urandom(RECORD_BYTES - INDEX_BYTES)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        start = time.perf_counter()
        futures = [
            await producer.send(topic, i.to_bytes(INDEX_BYTES, "big") + body, key=f"call-{i % KEYS}".encode())
            for i in range(records)
        ]
        await asyncio.gather(*futures)
        return records / (time.perf_counter() - start)
    finally:
        await producer.stop()


def child_command(variant: Variant, plan: Plan, sink: str, tag: str) -> list[str]:
    """The command line of ``variant``'s subprocess (this file with ``--child``)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--bootstrap", plan.bootstrap, "--source", plan.source]
    command += ["--sink", sink, "--guarantee", variant.guarantee, "--records", str(plan.records)]
    if variant.kind == "faust":
        return [*command, "--child", "faust", "--prefix", f"{tag}.", "--datadir", str(plan.workdir / tag)]
    command += ["--commit-s", str(variant.commit_s), "--commit-every", str(plan.commit_every)]
    return [*command, "--child", "raw", "--group", tag]


async def measure(variant: Variant, plan: Plan) -> dict[str, Any]:
    """Run one variant as a subprocess copying ``plan.source`` to a new topic; time its output."""
    tag = f"bench-{uuid.uuid4().hex[:10]}"
    sink = f"{tag}.out"
    await create_topics(plan.bootstrap, [sink], bench_settings(tag, plan.workdir).topic_partitions)
    watcher = AIOKafkaConsumer(
        sink,
        bootstrap_servers=plan.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await watcher.start()
    log = plan.workdir / f"{tag}.log"
    records = plan.records
    try:
        with log.open("wb") as out:
            started = time.time()
            command = child_command(variant, plan, sink, tag)
            proc = await asyncio.create_subprocess_exec(*command, stdout=out, stderr=subprocess.STDOUT)
            try:
                seen = await _watch(watcher, proc, records, variant, log, timeout_s=120 + records / 100)
            finally:
                await _stop(proc)
    finally:
        await watcher.stop()
    first_created, first_visible, last_visible, total = seen
    return {
        "variant": variant.name,
        "records_per_s": round(records / max(last_visible - first_created, 1e-3)),
        "span_s": round(last_visible - first_created, 2),
        "startup_s": round(first_created - started, 2),
        "first_visible_s": round(first_visible - started, 2),
        "duplicates": total - records,
    }


async def _watch(
    watcher: Any, proc: asyncio.subprocess.Process, records: int, variant: Variant, log: Path, timeout_s: float
) -> tuple[float, float, float, int]:
    """(first CreateTime, first seen, last seen, records read incl. duplicates), wall-clock seconds."""
    indices: set[int] = set()
    first_created, first_visible, total = float("inf"), 0.0, 0
    deadline = time.monotonic() + timeout_s
    while len(indices) < records:
        if time.monotonic() > deadline or proc.returncode not in (None, 0):
            copied = f"{len(indices)} of {records} records copied (exit {proc.returncode})"
            raise CeilingError(f"{variant.name}: {copied}; log {log}:\n{_tail(log)}")
        batch = await watcher.getmany(timeout_ms=100, max_records=10_000)
        now = time.time()
        for messages in batch.values():
            for message in messages:
                indices.add(int.from_bytes(message.value[:INDEX_BYTES], "big"))
                first_created = min(first_created, message.timestamp / 1000)
                total += 1
            first_visible = first_visible or now
    return first_created, first_visible, time.time(), total


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (a Faust worker shuts down cleanly), SIGKILL after 30 s."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it exited since
            proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def faust_commit_policy(bootstrap: str) -> tuple[float, int]:
    """(broker_commit_interval s, broker_commit_every records) of our worker's Faust configuration."""
    with tempfile.TemporaryDirectory() as tmp:
        conf = faust_app(bench_settings("x.", Path(tmp)), bootstrap, "exactly_once").conf
        return float(conf.broker_commit_interval), int(conf.broker_commit_every)


async def run(bootstrap: str, smoke: bool) -> dict[str, Any]:
    """Every variant over the same pre-filled topic (1,000 records smoke / 50,000 full)."""
    records = 1_000 if smoke else 50_000
    interval_s, every = faust_commit_policy(bootstrap)
    variants = [
        Variant("Faust exactly_once", "faust", "exactly_once"),
        Variant("Faust at_least_once", "faust", "at_least_once"),
        Variant(f"raw transactional, commit {interval_s:g} s", "raw", "exactly_once", interval_s),
        Variant(f"raw transactional, commit {FAST_COMMIT_S:g} s", "raw", "exactly_once", FAST_COMMIT_S),
        Variant(f"raw plain, commit {interval_s:g} s", "raw", "at_least_once", interval_s),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="sb-faust-ceiling-"))
    try:
        source = f"bench-{uuid.uuid4().hex[:10]}.in"
        partitions = bench_settings("x.", workdir).topic_partitions
        await create_topics(bootstrap, [source], partitions)
        prefill_rate = await prefill(bootstrap, source, records)
        plan = Plan(bootstrap, source, records, every, workdir)
        runs = [await measure(v, plan) for v in variants]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rate = {r["variant"]: r["records_per_s"] for r in runs}
    eos, alo, txn, plain = (rate[v.name] for v in (variants[0], variants[1], variants[2], variants[4]))
    return {
        "records": records,
        "record_bytes": RECORD_BYTES,
        "partitions": partitions,
        "commit_interval_s": interval_s,
        "commit_every": every,
        "prefill_records_per_s": round(prefill_rate),
        "runs": runs,
        "ratios": {
            "faust_eos_over_raw_transactional": round(eos / txn, 3),
            "faust_alo_over_raw_plain": round(alo / plain, 3),
            "faust_eos_over_faust_alo": round(eos / alo, 3),
        },
    }


def markdown(result: dict[str, Any]) -> str:
    r = result["ratios"]
    lines = [
        "## Faust ceiling",
        "",
        f"{result['records']:,} records of {result['record_bytes']:,} bytes ({result['partitions']} partitions, "
        "200 keys) copied unchanged from one topic to a fresh one by a subprocess: a Faust worker with our "
        "worker's app settings (pass-through agent sending as our agents do), or a raw aiokafka consume -> "
        "produce loop. Rate = records / (first output record created -> last one visible to a read_committed "
        f"consumer); startup (process start -> first output record) is excluded. Faust commits every "
        f"{result['commit_interval_s']:g} s or {result['commit_every']:,} records; the raw loops commit on "
        "the interval named.",
        "",
        "| variant | rec/s | span | startup | first visible | duplicates |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {v['variant']} | {v['records_per_s']:,} | {v['span_s']} s | {v['startup_s']} s | "
        f"{v['first_visible_s']} s | {v['duplicates']} |"
        for v in result["runs"]
    ]
    lines += [
        "",
        f"Ratios: Faust exactly_once / raw transactional (same commit interval) "
        f"{r['faust_eos_over_raw_transactional']:.2f}x; Faust at_least_once / raw plain "
        f"{r['faust_alo_over_raw_plain']:.2f}x; Faust exactly_once / at_least_once "
        f"{r['faust_eos_over_faust_alo']:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="1,000 records instead of 50,000")
    parser.add_argument("--child", choices=("faust", "raw"), help=argparse.SUPPRESS)
    for option in ("--bootstrap", "--source", "--sink", "--guarantee", "--prefix", "--datadir", "--group"):
        parser.add_argument(option, help=argparse.SUPPRESS)
    for option, kind in (("--records", int), ("--commit-every", int), ("--commit-s", float)):
        parser.add_argument(option, type=kind, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "faust":
        faust_child(args)
    elif args.child == "raw":
        asyncio.run(raw_child(args))
    else:
        bootstrap = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP")
        if not bootstrap:
            parser.error("set SWITCHBOARD_KAFKA_BOOTSTRAP to a Kafka broker")
        print(markdown(asyncio.run(run(bootstrap, args.smoke))))


if __name__ == "__main__":
    main()
