"""The topics of ARCHITECTURE.md, their cleanup policies, and their idempotent creation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from infra.settings import Settings


class TopicBootstrapError(Exception):
    """Topics could not be created or an existing topic does not match its specification."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name (prefix applied), what it holds, and its cleanup policy."""

    name: str
    record: str
    key: str
    cleanup_policy: str = "delete"


@dataclass(frozen=True)
class Topics:
    """Names of every topic, with the configured prefix."""

    events: str
    audio: str
    transitions: str
    speech: str
    alerts: str
    commands: str
    rules: str
    deadletter: str
    ticks: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        p = settings.topic_prefix
        return cls(
            events=f"{p}calls.events",
            audio=f"{p}calls.audio",
            transitions=f"{p}jobs.transitions",
            speech=f"{p}calls.speech",
            alerts=f"{p}calls.alerts",
            commands=f"{p}calls.commands",
            rules=f"{p}rules",
            deadletter=f"{p}deadletter",
            ticks=f"{p}calls.ticks",
        )

    def specs(self) -> list[TopicSpec]:
        """Every topic with its record type, key and cleanup policy."""
        return [
            TopicSpec(self.events, "CallEvent", "call id"),
            TopicSpec(self.audio, "AudioChunk", "call id"),
            TopicSpec(self.transitions, "JobTransition", "job id"),
            TopicSpec(self.speech, "SpeechSegment", "call id"),
            TopicSpec(self.alerts, "Alert", "call id"),
            TopicSpec(self.commands, "Command, CommandResult", "call id"),
            TopicSpec(self.rules, "RuleSet", "cid", cleanup_policy="compact"),
            TopicSpec(
                self.deadletter,
                "undecodable or unprocessable input, with the reason in headers",
                "as received",
            ),
            TopicSpec(self.ticks, "internal: wall-clock ticks (JSON) for calls whose media went quiet", "call id"),
        ]


async def ensure_topics(
    bootstrap: str, specs: list[TopicSpec], *, partitions: int, replication: int, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Existing topics are checked.

    An existing topic with fewer partitions than asked for is an error: keyed data would be
    spread differently from what the processors' tables assume.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        if missing:
            new = [
                NewTopic(s.name, partitions, replication, topic_configs={"cleanup.policy": s.cleanup_policy})
                for s in missing
            ]
            response = await admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            for name, code, message in _topic_errors(response):
                if code == 0:
                    created.append(name)
                elif code != TopicAlreadyExistsError.errno:
                    raise TopicBootstrapError(f"creating topic {name} failed: error {code} {message}")
        counts = await _wait_visible(admin, [s.name for s in specs], timeout_s)
        for name, count in counts.items():
            if name not in created and count < partitions:
                raise TopicBootstrapError(
                    f"topic {name} exists with {count} partitions, fewer than the configured {partitions}"
                )
        return created
    except (KafkaError, TimeoutError, OSError) as exc:
        raise TopicBootstrapError(f"cannot bootstrap topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


def _topic_errors(response: object) -> list[tuple[str, int, str]]:
    errors = getattr(response, "topic_errors", [])
    out = []
    for entry in errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else ""
        out.append((str(name), int(code), str(message or "")))
    return out


async def _wait_visible(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> dict[str, int]:
    """Partition count of each topic, once the cluster's metadata shows all of them with partitions."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        counts = {str(t["topic"]): len(t.get("partitions") or []) for t in described if t.get("error_code") == 0}
        if len(counts) == len(names) and all(counts.values()):
            return counts
        if asyncio.get_running_loop().time() > deadline:
            missing = sorted(set(names) - {n for n, c in counts.items() if c})
            raise TopicBootstrapError(f"topics not visible in cluster metadata after {timeout_s:.0f}s: {missing}")
        await asyncio.sleep(0.1)
