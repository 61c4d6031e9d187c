"""`switchboard simulate` against a real gateway and broker: every planned call's records arrive, byte for byte."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path

from typer.testing import CliRunner

from infra.cli import cli
from infra.settings import Settings
from infra.simulate.codecs import encode, ulaw_encode
from infra.simulate.plan import build_plan
from infra.simulate.runner import Options, run, schedule
from infra.simulate.speech import Voice
from infra.simulate.vendors import Target
from tests.harness import read_to_end, running_gateway

SECONDS = 4.0
DOMAIN = "sim.switchboard.test"
CACHE = Path.home() / ".cache" / "switchboard" / "speech"


async def test_three_calls_over_every_protocol_arrive_complete(settings: Settings) -> None:
    lines: list[str] = []
    async with running_gateway(settings) as gw:
        target = Target(gw.url, "key-tenant-1", 1, DOMAIN)
        options = Options(
            calls=3, duration_s=SECONDS, ramp_s=0.5, target=target, policy_dir=settings.policies_path, cache_dir=CACHE
        )
        stats = await run(options, echo=lines.append)
        events = await read_to_end(str(settings.kafka_bootstrap), gw.topics.events, committed_only=False)
        audio = await read_to_end(str(settings.kafka_bootstrap), gw.topics.audio, committed_only=False)

    summary = stats.summary()
    assert (summary["calls_started"], summary["calls_completed"], summary["calls_failed"]) == (3, 3, 0), summary
    assert summary["errors"] == {}
    assert summary["packets_sent"] == 2 * 2 * 200 + 40  # 2 Telnyx calls x 2 tracks x 200 (20 ms); Cresta: 40 (100 ms)
    assert summary["callbacks"] == 2 * 4  # newCall, callAnswered, callEvent, sessionCompleted per Telnyx call
    assert any(line.startswith("plan telnyx #0") for line in lines)

    specs = {s.call_id: s for s in schedule(options)}
    assert [(s.protocol, s.codec) for s in specs.values()] == [
        ("telnyx", "PCMU"),
        ("cresta", "PCMU"),
        ("telnyx", "PCMA"),
    ]
    kinds: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in events:
        assert e.record["cid"] == 1
        kinds[e.key].append((e.record["source"], e.record["payload"][0].rsplit(".", 1)[1]))
    lifecycle = [("MEDIASERVICE", "CallStarted"), ("MEDIASERVICE", "CallAnswered")]
    stream = [("TELNYX", "StreamStarted"), ("TELNYX", "CallStarted"), ("TELNYX", "StreamStopped")]
    telnyx = lifecycle + stream + [("MEDIASERVICE", "CallEnded"), ("MEDIASERVICE", "CallEnded")]
    cresta = [("CRESTA", "CallStarted"), ("CRESTA", "CallEnded")]
    assert dict(kinds) == {c: cresta if s.protocol == "cresta" else telnyx for c, s in specs.items()}

    voice = Voice(CACHE)
    streams: dict[tuple[str, str], list[tuple[int, bytes]]] = defaultdict(list)
    for a in audio:
        streams[(a.key, a.record["track"])].append((a.record["start_sample"], a.record["payload"]))
    for call_id, spec in specs.items():
        plan = build_plan(voice, SECONDS, with_hold=spec.protocol == "cresta", seed=spec.variant)
        if spec.protocol == "telnyx":
            for track, pcm in (("inbound", plan.customer), ("outbound", plan.agent)):
                got = b"".join(p for _, p in sorted(streams[(call_id, track)]))
                assert got == encode(spec.codec, pcm), (call_id, track)
        else:
            (track,) = [t for c, t in streams if c == call_id]
            got = b"".join(p for _, p in sorted(streams[(call_id, track)]))
            want = bytearray(2 * plan.agent.size)
            want[0::2], want[1::2] = ulaw_encode(plan.agent), ulaw_encode(plan.customer)
            assert got == bytes(want)


async def test_the_cli_plays_calls_and_writes_its_json_report(settings: Settings, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    async with running_gateway(settings) as gw:
        args = ["simulate", "--calls", "2", "--duration", "2", "--ramp", "0", "--gateway", gw.url, "--key",
                "key-tenant-1", "--cid", "1", "--protocols", "telnyx,cresta", "--report", str(report)]  # fmt: skip
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        refused = await asyncio.to_thread(CliRunner().invoke, cli, [*args[:-2], "--key", "key-tenant-2"])
    assert result.exit_code == 0, result.output
    assert "calls: 2 started, 2 completed, 0 failed" in result.output
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert (summary["calls_completed"], summary["packets_sent"], summary["callbacks"]) == (2, 2 * 100 + 20, 0)
    assert refused.exit_code == 1
    # Telnyx names the tenant in its path, so tenant 2's key is refused; Cresta's key is its own tenant's
    assert "calls: 2 started, 1 completed, 1 failed" in refused.output
    assert "1008 (policy violation) tenant 1 not authorised" in refused.output
