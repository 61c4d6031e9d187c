"""Topic bootstrap against the real broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from infra.settings import Settings
from infra.topics import TopicBootstrapError, Topics, ensure_topics


async def _describe(bootstrap: str, names: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
        policies: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                name, entries = resource[3], resource[4]
                policies[name] = next(e[1] for e in entries if e[0] == "cleanup.policy")
        return partitions, policies
    finally:
        await admin.close()


async def test_creates_every_topic_with_partitions_and_cleanup_policy(settings: Settings, kafka_bootstrap: str) -> None:
    topics = Topics.from_settings(settings)
    specs = topics.specs()
    created = await ensure_topics(kafka_bootstrap, specs, partitions=3, replication=1)
    assert sorted(created) == sorted(s.name for s in specs)
    assert {s.name for s in specs} == {
        f"{settings.topic_prefix}{n}"
        for n in (
            "calls.events",
            "calls.audio",
            "jobs.transitions",
            "calls.speech",
            "calls.alerts",
            "calls.commands",
            "rules",
            "deadletter",
            "calls.ticks",
        )
    }
    partitions, policies = await _describe(kafka_bootstrap, [s.name for s in specs])
    assert set(partitions.values()) == {3}
    assert policies[topics.rules] == "compact"
    assert {policies[n] for n in policies if n != topics.rules} == {"delete"}


async def test_second_bootstrap_creates_nothing(settings: Settings, kafka_bootstrap: str) -> None:
    specs = Topics.from_settings(settings).specs()
    await ensure_topics(kafka_bootstrap, specs, partitions=2, replication=1)
    assert await ensure_topics(kafka_bootstrap, specs, partitions=2, replication=1) == []


async def test_existing_topic_with_fewer_partitions_is_refused(settings: Settings, kafka_bootstrap: str) -> None:
    specs = Topics.from_settings(settings).specs()
    await ensure_topics(kafka_bootstrap, specs, partitions=1, replication=1)
    with pytest.raises(TopicBootstrapError, match=r"exists with 1 partitions, fewer than the configured 4"):
        await ensure_topics(kafka_bootstrap, specs, partitions=4, replication=1)


async def test_unreachable_cluster_is_a_clear_error(settings: Settings) -> None:
    from infra.broker import free_port

    with pytest.raises(TopicBootstrapError, match=r"cannot bootstrap topics on 127\.0\.0\.1"):
        await ensure_topics(
            f"127.0.0.1:{free_port()}",
            Topics.from_settings(settings).specs(),
            partitions=1,
            replication=1,
            timeout_s=3,
        )
