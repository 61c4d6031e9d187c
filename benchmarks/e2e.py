"""End to end: how many concurrent calls one machine carries in real time, and how fast outputs arrive.

Starts ``switchboard up`` (its own Kafka broker, gateway, worker, projector + API: every process a
user runs) on fresh data, then climbs a ladder of load steps. Each step plays N calls with
``switchboard simulate``'s engine in this process (Telnyx media on both tracks rotating PCMU/PCMA/G722
with mediaservice callbacks, and Cresta sessions with holds, paced in real time), ramped over
``ramp_s`` and all live together for the hold. While it runs, this process samples

- the worker group's consumer lag on calls.events + calls.audio (committed offsets vs log ends);
- CPU seconds and resident memory of every process of the tree (/proc);
- every AudioChunk (the gateway's receive time of its audio) and, as a read_committed subscriber,
  every speech segment and alert, with the wall time it became visible;
- a py-spy profile of the worker during the hold.

A step is sustained when the lag does not grow during the hold (``e2e_analysis.judge``). The ladder
stops at the first step that is not. Latency arithmetic is in ``e2e_analysis``.

Run alone: ``python benchmarks/e2e.py [--smoke] [--calls 4,8,12]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from e2e_analysis import Arrivals, LagSeries, ProfileRow, Seen, judge, latencies, percentiles, profile_rows
from procs import cmdline, descendants, usage
from pydantic import SecretStr

from infra.broker import free_port
from infra.settings import Settings
from infra.simulate.runner import Options, run
from infra.simulate.vendors import Target
from infra.topics import Topics
from schemas import ALERT, AUDIO_CHUNK, SPEECH_SEGMENT, AvroCodec

KEY = "bench-key-1"
DOMAIN = "bench.switchboard.local"
MAX_LAG_S = 5.0


@dataclass
class Stack:
    """A running ``switchboard up`` tree."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    bootstrap: str
    gateway: str
    api: str
    settings: Settings
    pids: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def stack(workdir: Path) -> Iterator[Stack]:
    """Start ``switchboard up`` on fresh data and free ports; SIGINT and wait on the way out."""
    kafka_port, api_port, gateway_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    data = workdir / "data"
    env.update(
        SWITCHBOARD_DATA_DIR=str(data),
        SWITCHBOARD_KAFKA_PORT=str(kafka_port),
        SWITCHBOARD_API_PORT=str(api_port),
        SWITCHBOARD_GATEWAY_PORT=str(gateway_port),
        SWITCHBOARD_WORKER_WEB_PORT="0",
        SWITCHBOARD_API_KEYS=json.dumps({"1": KEY}),
    )
    log = workdir / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "Press Ctrl-C" not in log.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"switchboard up did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        settings = Settings(_env_file=None, data_dir=data, api_keys={1: SecretStr(KEY)})  # type: ignore[call-arg]
        s = Stack(up, data, log, f"127.0.0.1:{kafka_port}", f"http://127.0.0.1:{gateway_port}",
                  f"http://127.0.0.1:{api_port}", settings)  # fmt: skip
        s.pids = processes_of(up.pid)
        yield s
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def processes_of(root: int) -> dict[str, int]:
    """The tree's processes by role: up, broker, gateway, worker, projector."""
    roles = {"up": root}
    for pid in descendants(root):
        cmd = cmdline(pid)
        role = "broker" if "kafka.Kafka" in cmd else next(
            (r for r in ("gateway", "worker", "projector") if cmd.rstrip().endswith(f"infra.cli {r}")), None
        )  # fmt: skip
        if role:
            roles[role] = pid
    return roles


class Sampler:
    """Lag, CPU and memory, once a second, for the current step."""

    def __init__(self, s: Stack) -> None:
        self.stack = s
        self.topics = Topics.from_settings(s.settings)
        self.group = s.settings.group(s.settings.worker_id)
        self.lag = LagSeries()
        self.rss: dict[str, float] = {}
        self.began = time.monotonic()
        self.pids = {**s.pids, "load generator": os.getpid()}  # the simulator and this sampler share the machine
        self.cpu0 = {name: usage(pid).cpu_s for name, pid in self.pids.items()}
        self.ends0 = 0

    async def run(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        n = self.stack.settings.topic_partitions  # how `switchboard up` created them
        parts = [TopicPartition(t, p) for t in (self.topics.events, self.topics.audio) for p in range(n)]
        self.ends0 = sum((await consumer.end_offsets(parts)).values())
        while True:
            ends = await consumer.end_offsets(parts)
            committed = await admin.list_consumer_group_offsets(self.group, partitions=parts)
            done = {tp: max(0, c.offset) for tp, c in committed.items() if c is not None}  # -1: nothing committed
            lag = sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())
            self.lag.add(time.monotonic() - self.began, lag)
            self.ends = sum(ends.values())
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.rss[name] = max(self.rss.get(name, 0.0), usage(pid).rss_mb)
            await asyncio.sleep(1.0)

    def cpu(self) -> dict[str, float]:
        return {name: usage(pid).cpu_s - self.cpu0[name] for name, pid in self.pids.items()}


class Tap:
    """Audio arrivals (all chunks) and outputs as a read_committed subscriber sees them."""

    def __init__(self) -> None:
        self.codec = AvroCodec.default()
        self.arrivals = Arrivals()
        self.seen: list[Seen] = []
        self.counts: dict[str, int] = {}

    async def follow(self, consumer: AIOKafkaConsumer) -> None:
        async for message in consumer:
            now_ms = time.time() * 1000.0
            if message.value is None:
                continue
            decoded = self.codec.decode(message.value)
            r = decoded.record
            self.counts[decoded.name] = self.counts.get(decoded.name, 0) + 1
            if decoded.name == AUDIO_CHUNK:
                received = r["received_at"]
                received_ms = received.timestamp() * 1000.0 if hasattr(received, "timestamp") else float(received)
                self.arrivals.add(r["call_id"], r["track"], r["start_sample"], r["sample_rate"], received_ms)
            elif decoded.name == SPEECH_SEGMENT and r["kind"] == "SPEECH":
                end_ms = r["end_sample"] * 1000.0 / r["sample_rate"]
                self.seen.append(Seen("segment", r["call_id"], end_ms, now_ms, float(message.timestamp)))
            elif decoded.name == ALERT and r["status"] == "RAISED" and r["rule_kind"] != "no_media":
                self.seen.append(Seen("alert", r["call_id"], float(r["end_ms"]), now_ms, float(message.timestamp)))


@contextlib.asynccontextmanager
async def kafka(s: Stack) -> AsyncIterator[tuple[AIOKafkaAdminClient, AIOKafkaConsumer, AIOKafkaConsumer]]:
    topics = Topics.from_settings(s.settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap)
    offsets = AIOKafkaConsumer(bootstrap_servers=s.bootstrap, enable_auto_commit=False)
    tap = AIOKafkaConsumer(
        bootstrap_servers=s.bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )  # assigned, not subscribed: no group join delay, and it reads from the ends fixed before the step
    await admin.start()
    await offsets.start()
    await tap.start()
    parts = [TopicPartition(t, p) for t in (topics.audio, topics.speech, topics.alerts)
             for p in range(s.settings.topic_partitions)]  # fmt: skip
    tap.assign(parts)
    await tap.seek_to_end(*parts)
    for tp in parts:
        await tap.position(tp)  # resolve the end now, before any call starts
    try:
        yield admin, offsets, tap
    finally:
        await tap.stop()
        await offsets.stop()
        await admin.close()


async def step(s: Stack, calls: int, duration_s: float, ramp_s: float, profile_dir: Path) -> dict[str, Any]:
    """One load step: play ``calls`` calls, measure, wait for the worker to drain; the step's figures."""
    async with kafka(s) as (admin, offsets, tap_consumer):
        sampler, tap = Sampler(s), Tap()
        tasks = [asyncio.create_task(sampler.run(admin, offsets)), asyncio.create_task(tap.follow(tap_consumer))]
        hold = (ramp_s + 2.0, duration_s - 1.0)
        spy = asyncio.create_task(_py_spy(s.pids.get("worker"), hold, profile_dir / f"worker-{calls}.raw", duration_s))
        target = Target(s.gateway, KEY, 1, DOMAIN)
        options = Options(calls=calls, duration_s=duration_s, ramp_s=ramp_s, target=target,
                          policy_dir=s.settings.policies_path, progress_s=10.0)  # fmt: skip
        stats = await run(options, echo=lambda line: print(f"  [{calls} calls] {line}", flush=True))
        played_s = time.monotonic() - sampler.began
        cpu = sampler.cpu()
        input_rate = (sampler.ends - sampler.ends0) / max(1e-9, played_s)
        drained = await _drain(sampler, limit_s=120.0)
        await asyncio.sleep(3.0)  # last outputs of the calls' ends
        for task in tasks:
            task.cancel()
        for failure in await asyncio.gather(*tasks, return_exceptions=True):
            if not isinstance(failure, asyncio.CancelledError | None):
                raise RuntimeError(f"a measuring task failed: {failure!r}") from failure
        raw = await spy
    verdict = judge(sampler.lag, hold, input_rate, s.settings.worker_commit_interval_s, MAX_LAG_S)
    lat = latencies(tap.seen, tap.arrivals)
    total, rows = profile_rows(raw) if raw else (0, [])
    return {
        "calls": calls,
        "call_s": duration_s,
        "ramp_s": ramp_s,
        "input_records_per_s": round(input_rate, 1),
        "sustained": verdict.sustained and stats.failed == 0,
        "why": verdict.why if stats.failed == 0 else f"{stats.failed} calls failed: {stats.first_errors[:3]}",
        "drain_s": drained,
        "lag": sampler.lag.points,
        "cpu_pct": {n: round(100.0 * c / played_s, 1) for n, c in cpu.items()},
        "rss_mb": {n: round(v) for n, v in sampler.rss.items()},
        "latency_ms": {kind: percentiles(values) for kind, values in sorted(lat.items())},
        "simulator": stats.summary(),
        "records_seen": tap.counts,
        "profile": {"samples": total, "self": _by_self(rows), "ours": _ours(rows)},
    }


OUR_PACKAGES = ("processors/", "schemas/", "infra/", "producers/", "projections/", "api/")


def _by_self(rows: list[ProfileRow], top: int = 15) -> list[tuple[str, float, float]]:
    """Where the worker's CPU goes: the functions most often on top of the stack."""
    return [(r.function, r.own, r.inclusive) for r in sorted(rows, key=lambda r: -r.own)[:top] if r.own > 0]


def _ours(rows: list[ProfileRow], top: int = 20) -> list[tuple[str, float, float]]:
    """Switchboard's own functions by inclusive share (the start-up frames every sample passes through left out)."""
    ours = [r for r in rows if any(p in r.path for p in OUR_PACKAGES)]
    work = [r for r in ours if not r.path.endswith("infra/cli.py") and not r.function.startswith("run_worker ")]
    return [(r.function, r.own, r.inclusive) for r in work][:top]


async def _drain(sampler: Sampler, limit_s: float) -> float | None:
    """Seconds after the calls ended until the lag reached 0; None if it did not within ``limit_s``."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if sampler.lag.points and sampler.lag.points[-1][1] == 0:
            return round(time.monotonic() - start, 1)
        await asyncio.sleep(0.5)
    return None


async def _py_spy(pid: int | None, hold: tuple[float, float], out: Path, duration_s: float) -> str:
    """Record the worker for the hold (collapsed stacks), or '' when py-spy or the worker is missing."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if pid is None or spy is None:
        return ""
    await asyncio.sleep(hold[0])
    seconds = max(1, int(min(hold[1], duration_s) - hold[0]))
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "50", "--format", "raw",
        "--nonblocking", "--output", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        return f"# py-spy failed: {err.decode(errors='replace')[-300:]}"
    return await asyncio.to_thread(out.read_text)


async def ladder(ladder_calls: Sequence[int], duration_s: float, ramp_s: float) -> dict[str, Any]:
    """Climb the ladder on one ``switchboard up``; stop after the first step that is not sustained."""
    workdir = Path(tempfile.mkdtemp(prefix="sb-e2e-"))
    steps: list[dict[str, Any]] = []
    try:
        with stack(workdir) as s:
            for calls in ladder_calls:
                print(f"e2e: {calls} concurrent calls of {duration_s:.0f} s ...", flush=True)
                result = await step(s, calls, duration_s, ramp_s, workdir / "profiles")
                steps.append(result)
                print(f"e2e: {calls} calls: sustained={result['sustained']} ({result['why']})", flush=True)
                if not result["sustained"]:
                    break
    finally:
        if os.environ.get("SWITCHBOARD_BENCH_KEEP"):
            print(f"e2e: kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    best = max((st["calls"] for st in steps if st["sustained"]), default=0)
    commit_s = Settings().worker_commit_interval_s
    return {"steps": steps, "max_sustained_calls": best, "commit_s": commit_s, "max_lag_s": MAX_LAG_S}


def markdown(result: dict[str, Any]) -> str:
    """The "End to end" section."""
    steps = result["steps"]
    lines = [
        "## End to end",
        "",
        "`switchboard up` (its own broker, gateway, one worker, projector + API) on this machine, loaded by "
        "`switchboard simulate`'s engine in the benchmark process (sharing the same cores): Telnyx calls "
        "(both tracks, 20 ms packets, PCMU/PCMA/G722) with mediaservice callbacks, and Cresta sessions with "
        "holds, paced in real time. A step is sustained when the worker group's lag (calls.events + "
        f"calls.audio) does not grow during the hold and stays under {result['max_lag_s']:.0f} s of input. "
        "Latency: a read_committed subscriber's receive time minus the gateway's receive time of the audio "
        "that decided the output (a segment's last speech sample; an alert's threshold crossing), so it "
        "includes the VAD's end-of-speech hangover, the gateway's 200 ms chunking and the worker's "
        "exactly-once commit interval.",
        "",
        f"**Maximum sustained: {result['max_sustained_calls']} concurrent calls.**",
        "",
        "| calls | input rec/s | sustained | segment p50/p95/p99 ms | alert p50/p95/p99 ms | drain s | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for st in steps:
        seg, alert = st["latency_ms"].get("segment", {}), st["latency_ms"].get("alert", {})
        lines.append(
            f"| {st['calls']} | {st['input_records_per_s']} | {'yes' if st['sustained'] else 'no'} | "
            f"{_pcts(seg)} | {_pcts(alert)} | {st['drain_s']} | {st['why']} |"
        )
    lines += ["", "The same latencies up to the moment the worker sent the output (its Kafka timestamp), before the "
              "transaction that makes it visible commits:", "",
              "| calls | segment sent p50/p95/p99 ms | alert sent p50/p95/p99 ms | segments | alerts |",
              "|---|---|---|---|---|"]  # fmt: skip
    for st in steps:
        lat = st["latency_ms"]
        lines.append(
            f"| {st['calls']} | {_pcts(lat.get('segment produced', {}))} | {_pcts(lat.get('alert produced', {}))} "
            f"| {lat.get('segment', {}).get('count', 0)} | {lat.get('alert', {}).get('count', 0)} |"
        )
    names = sorted({n for st in steps for n in st["cpu_pct"]})
    lines += ["", "CPU (% of one core, averaged over the step) and peak resident memory (MB) per process:", "",
              "| calls | " + " | ".join(f"{n} CPU % / MB" for n in names) + " |",
              "|---|" + "---|" * len(names)]  # fmt: skip
    for st in steps:
        cells = [f"{st['cpu_pct'].get(n, 0)} / {st['rss_mb'].get(n, 0)}" for n in names]
        lines.append(f"| {st['calls']} | " + " | ".join(cells) + " |")
    lags = ", ".join(f"{st['calls']} calls {_pcts(st['simulator']['send_lag_ms'])}" for st in steps)
    lines += ["", f"The simulator's own send lag behind real time (ms, p50/p95/p99) per step: {lags}."]
    profiled = [st for st in steps if st["profile"]["samples"]]
    if profiled:
        top = max((st for st in profiled if st["sustained"]), key=lambda st: st["calls"], default=profiled[-1])
        lines += ["", f"### Worker profile at {top['calls']} calls", "",
                  f"py-spy, {top['profile']['samples']} samples of the worker process during the hold (idle "
                  "threads excluded). Shares of the samples: on top of the stack (self), anywhere on it (inclusive).",
                  "", "Top of the stack:", "", "| function | self | inclusive |", "|---|---|---|"]  # fmt: skip
        lines += [f"| `{name}` | {own:.1%} | {inc:.1%} |" for name, own, inc in top["profile"]["self"]]
        lines += ["", "Switchboard's own code, inclusive:", "", "| function | self | inclusive |", "|---|---|---|"]
        lines += [f"| `{name}` | {own:.1%} | {inc:.1%} |" for name, own, inc in top["profile"]["ours"]]
    return "\n".join(lines) + "\n"


def _pcts(p: dict[str, Any]) -> str:
    if not p or not p.get("count", 1):
        return "-"
    return f"{p['p50']:.0f} / {p['p95']:.0f} / {p['p99']:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one step of 2 calls of 12 s")
    parser.add_argument("--calls", default="4,8,12,16,20,24,32,40", help="the ladder, comma separated")
    parser.add_argument("--duration", type=float, default=60.0, help="call length, s")
    parser.add_argument("--ramp", type=float, default=10.0, help="ramp, s")
    args = parser.parse_args()
    if args.smoke:
        result = asyncio.run(ladder([2], 12.0, 1.0))
    else:
        result = asyncio.run(ladder([int(c) for c in args.calls.split(",")], args.duration, args.ramp))
    print(markdown(result))


if __name__ == "__main__":
    main()
