"""Workarounds for faust-streaming 0.15 bugs that break exactly-once recovery. Applied by ``create_app``.

1. Changelog highwaters. Table recovery decides how far to read each changelog partition from its "highwater". In
exactly-once mode faust-streaming takes it from ``AIOKafkaConsumer.last_stable_offset(tp)``, which
is only known once the consumer has *fetched* from that partition; right after a restart it is
often still unknown, the highwater becomes -1, and the table is recovered as empty — a restarted
worker then forgets every call (found by tests/integration/test_worker_alerts.py, which killed a
worker mid-call and saw its held calls come back as NEW). Asking the broker instead
(``end_offsets``, which under read_committed returns the last stable offset) gives the right answer
whether or not anything was fetched yet.

2. Records lost when recovery completes. ``Recovery.on_recovery_completed`` resumes the stream
partitions, then awaits the seek to the committed offsets, and only then calls
``app.flow_control.resume()``, which *empties every agent's input queue* (Faust's channels are
"cleared on resume"). While the seek is awaited the fetcher already delivers the first records of
the resumed partitions into those queues and moves the consumer's read offset past them, so the
clear drops them for good: a worker restarted on a backlog skipped the first batch of each
partition (seen as a call missing 4-8 s of audio and its hold events, by
tests/integration/test_worker_alerts.py). The fix defers resuming the stream partitions until flow
control has resumed, so nothing is delivered before the queues are cleared; the seek itself runs
with the partitions still paused, and the first fetch starts at the committed offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka

_APPLIED = False


async def _highwaters_from_the_broker(self: Any, partitions: Iterable[Any]) -> Mapping[Any, int]:
    consumer = self._ensure_consumer()
    ends: Mapping[Any, int] = await consumer.end_offsets(list(partitions))
    return ends


_faust_on_recovery_completed = Recovery.on_recovery_completed


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """Faust's own completion, with stream partitions resumed only once flow control has resumed."""
    consumer, flow = self.app.consumer, self.app.flow_control
    deferred: list[set[Any]] = []

    def resume_later(tps: Iterable[Any]) -> None:
        deferred.append(set(tps))

    def resume_partitions_now() -> None:
        while deferred:
            type(consumer).resume_partitions(consumer, deferred.pop(0))

    def resume_flow_then_partitions() -> None:
        type(flow).resume(flow)  # empties the agents' queues: nothing of the stream partitions is in them yet
        resume_partitions_now()

    consumer.resume_partitions = resume_later
    flow.resume = resume_flow_then_partitions
    try:
        await _faust_on_recovery_completed(self, generation_id)
    finally:
        del consumer.resume_partitions, flow.resume
        resume_partitions_now()  # Faust returned early (a new rebalance): leave nothing paused by us


def apply() -> None:
    """Install the workarounds (idempotent)."""
    global _APPLIED
    if not _APPLIED:
        faust_aiokafka.AIOKafkaConsumerThread._highwaters = _highwaters_from_the_broker  # type: ignore[method-assign]
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
        _APPLIED = True
