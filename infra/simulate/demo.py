"""`switchboard up --demo`: once everything is up, play a handful of planned calls and print alerts as they arrive.

Runs in a thread of the supervisor (its own asyncio loop). Writes the simulator's mediaservice
policy into the gateway's policy directory, follows ``calls.alerts`` from its end, plays
``DEMO_CALLS`` calls of ``DEMO_SECONDS`` (overtalk, dead air, a hold on the Cresta calls), then
prints the read-API queries to try.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from infra.settings import Settings
from infra.simulate.runner import Options, run
from infra.simulate.vendors import Target
from infra.topics import Topics
from schemas import ALERT, AvroCodec

DEMO_CALLS = 4
DEMO_SECONDS = 50.0
DOMAIN = "demo.switchboard.local"


def play_demo(
    settings: Settings, gateway: str, api: str, bootstrap: str, key: str, say: Callable[[str], object]
) -> None:
    """Play the demo calls against the running processes (blocking; call it from a thread)."""
    asyncio.run(_demo(settings, gateway, api, bootstrap, key, say))


async def _demo(
    settings: Settings, gateway: str, api: str, bootstrap: str, key: str, say: Callable[[str], object]
) -> None:
    consumer = AIOKafkaConsumer(
        Topics.from_settings(settings).alerts,
        bootstrap_servers=bootstrap,
        group_id=f"demo-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    follower = asyncio.create_task(_print_alerts(consumer, say))
    try:
        target = Target(gateway, key, 1, DOMAIN)
        options = Options(
            calls=DEMO_CALLS,
            duration_s=DEMO_SECONDS,
            ramp_s=3.0,
            target=target,
            policy_dir=settings.policies_path,
            progress_s=5.0,
        )
        say(f"demo: playing {DEMO_CALLS} calls of {DEMO_SECONDS:.0f} s through Telnyx, mediaservice and Cresta ...")
        stats = await run(options, echo=lambda line: say(f"demo: {line}"))
        say(f"demo: {stats.report()}")
        await asyncio.sleep(5)  # the last alerts (CLEARED at call end) follow the calls' ends
    finally:
        follower.cancel()
        await consumer.stop()
    first = f"sim-{options.run_id}-00000"
    auth = f"-H 'Authorization: Bearer {key}'"
    say("demo: try the read API next:")
    for path in ("", f"/{first}", f"/{first}/segments", f"/{first}/metrics"):
        say(f"  curl {auth} {api}/v1/clients/1/calls{path}")


async def _print_alerts(consumer: AIOKafkaConsumer, say: Callable[[str], object]) -> None:
    codec = AvroCodec.default()
    async for message in consumer:
        if message.value is None:
            continue
        a = codec.decode_as(ALERT, message.value)
        say(
            f"ALERT {a['status']:7} {a['rule_kind']:13} call {a['call_id']} media {a['start_ms'] / 1000:.1f}-"
            f"{a['end_ms'] / 1000:.1f}s severity {a['severity']}"
        )
