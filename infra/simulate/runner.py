"""A simulation run: plan the conversations, ramp the calls up, hold them, show progress, report.

Calls rotate over the audio protocols (Telnyx, Cresta); Telnyx calls rotate over PCMU, PCMA and
G722. With ``mediaservice`` among the protocols a Telnyx call's life cycle comes from mediaservice
callbacks under the same call id (newCall, callAnswered before the stream; callEvent
calledPartyDrop and sessionCompleted after it). Cresta calls carry their own life cycle and holds.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.exceptions import WebSocketException

from infra.simulate import SimulateError
from infra.simulate.codecs import CODECS, encode, ulaw_encode
from infra.simulate.plan import Plan, build_plan
from infra.simulate.speech import Voice
from infra.simulate.stats import Stats
from infra.simulate.vendors import Audio, Mediaservice, Target, cresta_call, telnyx_call

PROTOCOLS = ("telnyx", "cresta", "mediaservice")
AUDIO_PROTOCOLS = ("telnyx", "cresta")
VARIANTS = 3  # distinct conversations per kind of call; calls share them (memory stays flat)


@dataclass(frozen=True)
class Options:
    """What ``switchboard simulate`` was asked to do."""

    calls: int
    duration_s: float
    ramp_s: float
    target: Target
    protocols: tuple[str, ...] = PROTOCOLS
    policy_dir: Path | None = None
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "switchboard" / "speech")
    progress_s: float = 1.0
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))

    def __post_init__(self) -> None:
        unknown = set(self.protocols) - set(PROTOCOLS)
        if unknown:
            raise SimulateError(f"unknown protocol(s) {sorted(unknown)}; choose from {', '.join(PROTOCOLS)}")
        if not set(self.protocols) & set(AUDIO_PROTOCOLS):
            raise SimulateError(f"protocols {list(self.protocols)} carry no audio; add telnyx and/or cresta")
        if self.calls < 1 or self.duration_s < 2 or self.ramp_s < 0:
            raise SimulateError(
                f"need calls >= 1, duration >= 2 s, ramp >= 0 s (got {self.calls}, {self.duration_s}, {self.ramp_s})"
            )


@dataclass(frozen=True)
class CallSpec:
    """One planned call."""

    index: int
    call_id: str
    protocol: str  # telnyx or cresta
    codec: str
    variant: int
    start_s: float  # offset from the run's start


def policy_document(cid: int, domain: str) -> dict[str, object]:
    """The mediaservice policy the simulator's domain needs: every newCall is connected to an agent."""
    return {
        "cid": cid,
        "new_call": {"default": {"action": "call", "destAddr": f"sip:agents@{domain}", "maxRingTime": 25}},
        "call_event": {"default": {"action": "drop"}},
    }


def write_policy(policy_dir: Path, domain: str, cid: int) -> Path:
    """Write ``<policy_dir>/<domain>.json`` (the gateway re-reads policy files when they change)."""
    policy_dir.mkdir(parents=True, exist_ok=True)
    path = policy_dir / f"{domain}.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(policy_document(cid, domain), indent=2), encoding="utf-8")
    partial.replace(path)
    return path


def schedule(options: Options) -> list[CallSpec]:
    """Every call of the run: id, protocol, codec, conversation variant and start offset (ramp)."""
    audio = [p for p in AUDIO_PROTOCOLS if p in options.protocols]
    specs, telnyx_seen = [], 0
    for i in range(options.calls):
        protocol = audio[i % len(audio)]
        codec = "PCMU"
        if protocol == "telnyx":
            codec = CODECS[telnyx_seen % len(CODECS)]
            telnyx_seen += 1
        start = options.ramp_s * i / max(1, options.calls - 1) if options.calls > 1 else 0.0
        call_id = f"sim-{options.run_id}-{i:05d}"
        specs.append(CallSpec(i, call_id, protocol, codec, i % VARIANTS, start))
    return specs


class Library:
    """The planned conversations and their encodings, built once and shared by the calls."""

    def __init__(self, voice: Voice, seconds: float) -> None:
        self.voice, self.seconds = voice, seconds
        self.plans: dict[tuple[bool, int], Plan] = {}
        self.audio: dict[tuple[bool, int, str], Audio] = {}

    def plan(self, with_hold: bool, variant: int) -> Plan:
        key = (with_hold, variant)
        if key not in self.plans:
            self.plans[key] = build_plan(self.voice, self.seconds, with_hold=with_hold, seed=variant)
        return self.plans[key]

    def encoded(self, spec: CallSpec) -> Audio:
        with_hold = spec.protocol == "cresta"
        key = (with_hold, spec.variant, spec.codec)
        if key not in self.audio:
            plan = self.plan(with_hold, spec.variant)
            encoder = ulaw_encode if spec.protocol == "cresta" else lambda pcm: encode(spec.codec, pcm)
            self.audio[key] = Audio(spec.codec, encoder(plan.customer), encoder(plan.agent), tuple(plan.holds))
        return self.audio[key]


async def run(options: Options, echo: Callable[[str], object] = print) -> Stats:
    """Play every call of ``options``; return the run's counters (the report is ``stats.report()``)."""
    if "mediaservice" in options.protocols and options.policy_dir is not None:
        path = write_policy(options.policy_dir, options.target.domain, options.target.cid)
        echo(f"mediaservice policy for {options.target.domain} (tenant {options.target.cid}) written to {path}")
    specs = schedule(options)
    library = Library(Voice(options.cache_dir), options.duration_s)
    await asyncio.to_thread(lambda: [library.encoded(spec) for spec in specs[: 2 * VARIANTS * len(CODECS)]])
    for (with_hold, variant), plan in sorted(library.plans.items()):
        echo(f"plan {'cresta (holds)' if with_hold else 'telnyx'} #{variant}: {plan.describe()}")
    stats = Stats()
    limits = httpx.Limits(max_connections=max(10, options.calls))
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
        progress = asyncio.create_task(_progress(stats, options.progress_s, echo))
        try:
            await asyncio.gather(*(_call(options, spec, library, http, stats) for spec in specs))
        finally:
            progress.cancel()
    echo(stats.progress())
    return stats


async def _call(options: Options, spec: CallSpec, library: Library, http: httpx.AsyncClient, stats: Stats) -> None:
    await asyncio.sleep(spec.start_s)
    audio = library.encoded(spec)
    stats.started += 1
    lifecycle = Mediaservice(options.target, http, stats) if "mediaservice" in options.protocols else None
    try:
        if spec.protocol == "cresta":
            await cresta_call(options.target, spec.call_id, audio, stats)
        else:
            if lifecycle is not None:
                await lifecycle.begin(spec.call_id, spec.index)
            await telnyx_call(options.target, spec.call_id, audio, stats)
            if lifecycle is not None:
                await lifecycle.end(spec.call_id, audio.ms / 1000)
    except (SimulateError, OSError, httpx.HTTPError, WebSocketException) as exc:
        stats.failed += 1
        stats.error(spec.protocol, f"{spec.call_id}: {exc}")
        return
    stats.completed += 1


async def _progress(stats: Stats, every_s: float, echo: Callable[[str], object]) -> None:
    while True:
        await asyncio.sleep(every_s)
        echo(stats.progress())
