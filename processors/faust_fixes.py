"""Workarounds for faust-streaming 0.15 bugs that break exactly-once recovery. Applied by ``create_app``.

Table recovery decides how far to read each changelog partition from its "highwater". In
exactly-once mode faust-streaming takes it from ``AIOKafkaConsumer.last_stable_offset(tp)``, which
is only known once the consumer has *fetched* from that partition; right after a restart it is
often still unknown, the highwater becomes -1, and the table is recovered as empty — a restarted
worker then forgets every call (found by tests/integration/test_worker_alerts.py, which killed a
worker mid-call and saw its held calls come back as NEW). Asking the broker instead
(``end_offsets``, which under read_committed returns the last stable offset) gives the right answer
whether or not anything was fetched yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_APPLIED = False


async def _highwaters_from_the_broker(self: Any, partitions: Iterable[Any]) -> Mapping[Any, int]:
    consumer = self._ensure_consumer()
    ends: Mapping[Any, int] = await consumer.end_offsets(list(partitions))
    return ends


def apply() -> None:
    """Install the workarounds (idempotent)."""
    global _APPLIED
    if not _APPLIED:
        faust_aiokafka.AIOKafkaConsumerThread._highwaters = _highwaters_from_the_broker  # type: ignore[method-assign]
        _APPLIED = True
