"""Kafka slow or down: callbacks are answered from the policy anyway, spooled, and delivered exactly once later.

The answer deadline is 1 s and the produce timeout 30 s: a gateway that waited for Kafka would
not answer within the client's 20 s timeout (a liveness bound, not a speed measurement).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from infra.broker import LocalBroker
from infra.settings import Settings
from infra.topics import Topics, ensure_topics
from producers.context import GatewayContext
from producers.gateway import SERVICE_UNAVAILABLE, create_gateway
from producers.mediaservice.spool import Spool, SpoolEntry, read_pending
from schemas import CALL_EVENT
from tests.conftest import JARS_DIR
from tests.harness import CODEC, read_topic, running_gateway, serve, topic_size
from tests.integration.gateway.test_mediaservice_callbacks import DOMAIN, install_policy
from tests.unit.producers.test_mediaservice_policy import docs_example
from tests.unit.producers.test_mediaservice_samples import SAMPLES, SESSION

OUTAGE = {"mediaservice_answer_timeout_s": 1.0, "produce_timeout_s": 30.0}


def spool_dir(settings: Settings) -> Path:
    return settings.data_dir / "spool" / "mediaservice"


async def post(url: str, name: str, body: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.post(f"{url}/mediaservice/{DOMAIN}/{name}", content=body.encode())


async def drained(directory: Path, timeout_s: float = 60.0) -> None:
    """Wait until the drainer has marked every spooled entry delivered."""
    async with asyncio.timeout(timeout_s):
        while read_pending(directory):
            await asyncio.sleep(0.1)


def event_ids(entries: list[SpoolEntry]) -> list[str]:
    return [str(CODEC.decode_as(CALL_EVENT, e.value)["event_id"]) for e in entries]


async def test_records_kafka_cannot_take_yet_are_spooled_and_delivered_once(settings: Settings) -> None:
    """calls.events does not exist yet (auto-creation is off): sends cannot even start; the drainer sends later."""
    settings = settings.model_copy(update=OUTAGE)
    install_policy(settings, docs_example())
    topics = Topics.from_settings(settings)
    others = [spec for spec in topics.specs() if spec.name != topics.events]  # other routers' services need theirs
    await ensure_topics(str(settings.kafka_bootstrap), others, partitions=3, replication=1)
    ctx = GatewayContext.build(settings, sink=None)  # type: ignore[arg-type]  # the callbacks use their own outbox
    async with serve(create_gateway(ctx)) as url:
        answer = await post(url, "newCall", SAMPLES["newCall"])
        done = await post(url, "sessionCompleted", SAMPLES["sessionCompleted"])
        assert (answer.status_code, done.status_code) == (200, 200)
        assert answer.json() == {
            "action": "ivr",
            "sessionReferenceId": {"switchboard": {"callId": SESSION, "menu": "main", "tries": 0}},
        }
        assert done.json() == {}
        spooled = read_pending(spool_dir(settings))
        assert [(e.seq, e.topic, e.key) for e in spooled] == [
            (1, ctx.topics.events, SESSION),
            (2, ctx.topics.events, SESSION),
        ]
        await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=3, replication=1)
        records = await read_topic(str(settings.kafka_bootstrap), topics.events, 2, timeout_s=60)
        await drained(spool_dir(settings))
        assert await topic_size(str(settings.kafka_bootstrap), topics.events) == 2
    assert [r.record["event_id"] for r in records] == event_ids(spooled)  # in order, same partition
    assert [r.record["payload"][0].rsplit(".", 1)[1] for r in records] == ["CallStarted", "CallEnded"]
    assert json.loads(records[0].record["attributes"]["decision"]) == answer.json()


async def test_a_stopped_broker_does_not_block_callbacks_and_nothing_arrives_twice(
    settings: Settings, tmp_path: Path
) -> None:
    broker = LocalBroker(workdir=tmp_path / "broker", jars_dir=JARS_DIR, heap="256m").start()
    restarted: LocalBroker | None = None
    try:
        settings = settings.model_copy(update={**OUTAGE, "kafka_bootstrap": broker.bootstrap})
        install_policy(settings, docs_example())
        async with running_gateway(settings) as gw:
            before = await post(gw.url, "newCall", SAMPLES["newCall"])
            assert before.status_code == 200
            assert read_pending(spool_dir(settings)) == []  # Kafka acknowledged in time
            broker.stop()
            menu_ref = before.json()["sessionReferenceId"]
            ivr_body = json.dumps({**json.loads(SAMPLES["getIvrCommand"]), "sessionReferenceId": menu_ref})
            menu = await post(gw.url, "getIvrCommand", ivr_body)
            notify = await post(gw.url, "callNotify", SAMPLES["callNotify"])
            done = await post(gw.url, "sessionCompleted", SAMPLES["sessionCompleted"])
            assert [r.status_code for r in (menu, notify, done)] == [200, 200, 200]
            assert menu.json()["sessionReferenceId"] == {"switchboard": {"callId": SESSION, "menu": "main", "tries": 1}}
            assert (notify.json(), done.json()) == ({}, {})
            spooled = read_pending(spool_dir(settings))
            assert [e.seq for e in spooled] == [1, 2, 3]
            restarted = LocalBroker(
                workdir=tmp_path / "broker", jars_dir=JARS_DIR, heap="256m", port=broker.port
            ).start()
            records = await gw.read(gw.topics.events, 4, timeout_s=90)
            await drained(spool_dir(settings))
            assert await gw.size(gw.topics.events) == 4
        kinds = [r.record["attributes"]["callback"] for r in records]
        assert kinds == [
            "newCall",
            "getIvrCommand",
            "callNotify",
            "sessionCompleted",
        ]  # one key: one partition, in order
        assert [r.record["event_id"] for r in records[1:]] == event_ids(spooled)
    finally:
        broker.stop()
        if restarted is not None:
            restarted.stop()


async def test_a_spool_left_by_an_earlier_run_is_drained_at_start_up(settings: Settings) -> None:
    install_policy(settings, docs_example())
    topics = Topics.from_settings(settings)
    left = [dict(json.loads(SAMPLES["callNotify"]), httpTransactionId=f"tx-{i}") for i in range(3)]
    spool = Spool.open(spool_dir(settings))
    for i, body in enumerate(left):
        record = {
            "event_id": f"left-{i}",
            "call_id": SESSION,
            "cid": 1,
            "source": "MEDIASERVICE",
            "occurred_at": 1_741_000_000_000 + i,
            "received_at": 1_741_000_000_000 + i,
            "payload": ("io.switchboard.calls.VendorEvent", {"name": "callNotify.ringing"}),
            "raw": json.dumps(body),
            "attributes": {},
        }
        spool.append(topics.events, SESSION, CODEC.encode(CALL_EVENT, record))
    spool.close()
    async with running_gateway(settings) as gw:  # no callback at all: the backlog alone starts the drainer
        records = await gw.read(gw.topics.events, 3)
        await drained(spool_dir(settings))
        assert await gw.size(gw.topics.events) == 3
    assert [r.record["event_id"] for r in records] == ["left-0", "left-1", "left-2"]


async def test_when_neither_kafka_nor_the_spool_can_take_a_callback_it_is_refused_503(settings: Settings) -> None:
    settings = settings.model_copy(update=OUTAGE)
    install_policy(settings, docs_example())
    topics = Topics.from_settings(settings)
    others = [spec for spec in topics.specs() if spec.name != topics.events]
    await ensure_topics(str(settings.kafka_bootstrap), others, partitions=3, replication=1)
    spool_dir(settings).parent.mkdir(parents=True)
    spool_dir(settings).write_text("a file where the spool directory should be")
    ctx = GatewayContext.build(settings, sink=None)  # type: ignore[arg-type]
    async with serve(create_gateway(ctx)) as url:
        refused = await post(url, "newCall", SAMPLES["newCall"])
    assert refused.status_code == 503
    assert refused.json() == SERVICE_UNAVAILABLE
    await ensure_topics(str(settings.kafka_bootstrap), topics.specs(), partitions=3, replication=1)
    assert await topic_size(str(settings.kafka_bootstrap), topics.events) == 0
