"""`switchboard up --demo`: once everything is up, play a handful of planned calls and print alerts as they arrive.

Runs in a daemon thread of the supervisor (its own asyncio loop). It writes the simulator's
mediaservice policy into the gateway's policy directory, follows ``calls.alerts`` from its current
end (read_committed: the worker writes alerts in transactions), plays the calls (Telnyx with a
mediaservice life cycle, and Cresta with a hold; overtalk and dead air as planned in
``infra.simulate.plan``), waits until every planned alert was raised and the read API shows the
calls, compares planned with raised alerts per call, then prints read-API queries to try. The
processes keep running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from infra.settings import Settings
from infra.simulate import SimulateError
from infra.simulate.runner import Library, Options, run, schedule
from infra.simulate.speech import Voice
from infra.simulate.vendors import Target
from infra.topics import Topics
from schemas import ALERT, AvroCodec

DOMAIN = "demo.switchboard.local"
CID = 1
SETTLE_S = 45.0  # after the calls: how long to wait for their last alerts and projections (s of wall clock)
POLL_S = 0.5

Say = Callable[[str], object]


@dataclass
class Followed:
    """The demo's calls (id -> planned alert kinds) and the rule kinds raised for each so far."""

    planned: dict[str, set[str]]
    raised: dict[str, set[str]] = field(default_factory=dict)

    def missing(self) -> dict[str, set[str]]:
        """Planned kinds not raised yet, per call (only calls with something missing)."""
        gaps = {call: kinds - self.raised.get(call, set()) for call, kinds in self.planned.items()}
        return {call: kinds for call, kinds in gaps.items() if kinds}


def play_demo(
    settings: Settings, gateway: str, api: str, bootstrap: str, key: str, say: Say, *, calls: int, seconds: float
) -> None:
    """Play ``calls`` demo calls of ``seconds`` (media s) against the running processes (blocking; run in a thread)."""
    try:
        asyncio.run(_demo(settings, gateway, api, bootstrap, key, say, calls, seconds))
    except (SimulateError, KafkaError, httpx.HTTPError, OSError) as exc:
        say(f"demo: failed: {type(exc).__name__}: {exc} (process logs: {settings.data_dir / 'logs'})")


async def _demo(
    settings: Settings, gateway: str, api: str, bootstrap: str, key: str, say: Say, calls: int, seconds: float
) -> None:
    if not key:
        raise SimulateError(f"SWITCHBOARD_API_KEYS has no key for client {CID}, which the demo calls use")
    options = Options(
        calls=calls,
        duration_s=seconds,
        ramp_s=min(3.0, seconds / 10),
        target=Target(gateway, key, CID, DOMAIN),
        policy_dir=settings.policies_path,
        progress_s=5.0,
    )
    followed = Followed(await asyncio.to_thread(_planned, options))
    consumer = await _alerts_from_end(bootstrap, Topics.from_settings(settings).alerts)
    follower = asyncio.create_task(_print_alerts(consumer, followed, say))
    try:
        say(f"demo: playing {_describe(options)} of {seconds:.0f} s; alerts are printed as they arrive ...")
        stats = await run(options, echo=lambda text: _say_lines(say, text))
        _say_lines(say, stats.report())
        if stats.completed == 0:
            raise SimulateError(f"none of the {stats.started} demo calls completed (errors above)")
        async with httpx.AsyncClient(base_url=api, headers=_auth(key), timeout=10.0) as client:
            await _settle(followed, client, time.monotonic() + SETTLE_S, follower)
    finally:
        follower.cancel()
        await consumer.stop()
    _summary(followed, say)
    _queries(api, key, sorted(followed.planned), say)
    say("demo: done. Switchboard keeps running; press Ctrl-C to stop everything.")


def _planned(options: Options) -> dict[str, set[str]]:
    """Call id -> the alert kinds its conversation plan raises under the default rules (the runner's plans)."""
    library = Library(Voice(options.cache_dir), options.duration_s)
    # The runner plays Cresta calls with a hold and Telnyx calls without (runner.Library.encoded).
    return {
        spec.call_id: {e.kind for e in library.plan(spec.protocol == "cresta", spec.variant).expected}
        for spec in schedule(options)
    }


def _describe(options: Options) -> str:
    specs = schedule(options)
    telnyx = sum(1 for spec in specs if spec.protocol == "telnyx")
    parts = [f"{telnyx} Telnyx call(s) with a mediaservice life cycle"] if telnyx else []
    if len(specs) > telnyx:
        parts.append(f"{len(specs) - telnyx} Cresta call(s)")
    return " and ".join(parts)


def _say_lines(say: Say, text: str) -> None:
    for line in text.splitlines():
        say(f"demo: {line}")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _alerts_from_end(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A consumer (no group) of every partition of ``topic``, positioned at its current end (resolved now)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        isolation_level="read_committed",
    )
    await consumer.start()  # without a group, start() assigns every partition (unknown topic: an error)
    try:
        assigned = sorted(consumer.assignment())
        await consumer.seek_to_end(*assigned)
        for tp in assigned:
            await consumer.position(tp)  # resolve "end" now, before any demo call can raise an alert
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _print_alerts(consumer: AIOKafkaConsumer, followed: Followed, say: Say) -> None:
    """Print each alert of a demo call as it arrives; remember the raised kinds."""
    codec = AvroCodec.default()
    async for message in consumer:
        if message.value is None:
            continue
        a = codec.decode_as(ALERT, message.value)
        if a["call_id"] not in followed.planned:
            continue
        if a["status"] == "RAISED":
            followed.raised.setdefault(a["call_id"], set()).add(a["rule_kind"])
        say(
            f"ALERT {a['status']:7} {a['rule_kind']:13} call {a['call_id']} media {a['start_ms'] / 1000:.1f}-"
            f"{a['end_ms'] / 1000:.1f}s severity {a['severity']}"
        )


async def _settle(followed: Followed, client: httpx.AsyncClient, deadline: float, follower: asyncio.Task[None]) -> None:
    """Wait (until ``deadline``, monotonic s) for the planned alerts and for every call's final projection."""
    pending = set(followed.planned)
    while time.monotonic() < deadline:
        if follower.done():
            follower.result()  # the alert follower died: raise its error
        for call_id in sorted(pending):
            response = await client.get(f"/v1/clients/{CID}/calls/{call_id}")
            if response.status_code == 200 and response.json().get("metrics_final") is True:
                pending.discard(call_id)
        if not pending and not followed.missing():
            return
        await asyncio.sleep(POLL_S)


def _summary(followed: Followed, say: Say) -> None:
    """Planned versus raised alert kinds, per call."""
    for call_id, planned in sorted(followed.planned.items()):
        raised = followed.raised.get(call_id, set())
        say(f"demo: call {call_id}: planned {_kinds(planned)}; raised {_kinds(raised)}")
    missing = followed.missing()
    if missing:
        gaps = "; ".join(f"{call}: {_kinds(kinds)}" for call, kinds in sorted(missing.items()))
        say(f"demo: planned alerts NOT raised within {SETTLE_S:.0f} s after the calls: {gaps}")
    else:
        say("demo: every planned alert was raised")


def _kinds(kinds: set[str]) -> str:
    return ", ".join(sorted(kinds)) or "none"


def _queries(api: str, key: str, call_ids: list[str], say: Say) -> None:
    """The read-API queries to try next, on the first demo call."""
    first = call_ids[0]
    base = f"{api}/v1/clients/{CID}"
    say(f"demo: try the read API next (calls of client {CID}, one call, its speech segments, metrics and alerts):")
    for url in (
        f"{base}/calls",
        f"{base}/calls/{first}",
        f"{base}/calls/{first}/segments?kind=SPEECH",
        f"{base}/calls/{first}/metrics",
        f"{base}/alerts?call_id={first}",
    ):
        say(f"  curl -H 'Authorization: Bearer {key}' '{url}'")
