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

3. A rebalance hung when one topic feeds two agents. calls.events goes to the call agent and to the
command dispatcher, so each of its records is delivered twice and counts as processed once both
have acknowledged it. When partitions are revoked, Faust empties the agents' queues and then waits
until every record it handed out is acknowledged; a record that one agent had taken and the other
still had queued is never acknowledged by the second, so the wait never ends, the worker misses the
rebalance and is thrown out of the group a session timeout later (found by
tests/integration/test_worker_scale_out.py: the first worker hung as the second joined). Now a
delivery thrown away with a queue counts as *abandoned*: the record is no longer waited for, and
its offset is not committed (not even when the other agent acknowledges it later), so the
partition's next owner reads it again and both agents see it; the one that had processed it
recognises it as a duplicate.

4. Transactions left open over a rebalance. When partitions are revoked Faust commits, in each
partition's transaction, the offsets acknowledged so far, and only the transactions that have such
offsets; a transaction holding the state and outputs of a record whose offset is not committed (an
abandoned one, above) stays open. On a partition the worker keeps, the table is then recovered
from the changelog without those writes, the record is read again, and its outputs are written a
second time into the same transaction, which commits both (found by
tests/integration/test_worker_scale_out.py: alerts raised twice on the first worker's partitions).
Every transaction still open once Faust has committed is now committed too, without offsets: the
state moves ahead of the offset, and the record read again is recognised as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ConsumerMessage
from mode.utils.queues import ThrowableQueue

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


_faust_clear_queue = ThrowableQueue.clear
_faust_on_final_ack = ConsumerMessage.on_final_ack
# deliveries cut short of records another agent still holds: (tp, offset, consumer generation)
_abandoned: set[tuple[Any, int, int | None]] = set()


def _delivery(message: Any) -> tuple[Any, int, int | None]:
    return (message.tp, message.offset, message.generation_id)


def abandon(consumer: Any, message: Any) -> None:
    """One delivery of ``message`` was thrown away unprocessed: never commit its offset, never wait for it."""
    if message.acked:
        return
    if message.decref():  # another agent still holds it: its acknowledgement must not commit the offset
        _abandoned.add(_delivery(message))
        return
    _let_go(consumer, message)


def _let_go(consumer: Any, message: Any) -> None:
    """Stop waiting for ``message`` without acknowledging it: its offset stays uncommitted."""
    _abandoned.discard(_delivery(message))
    message.acked = True  # a late acknowledgement is a no-op
    consumer._unacked_messages.discard(message)


def _clear_queue(self: Any) -> None:
    thrown_away = list(self._queue)
    _faust_clear_queue(self)
    for item in thrown_away:
        message, app = getattr(item, "message", None), getattr(item, "app", None)
        if isinstance(message, ConsumerMessage) and app is not None:
            abandon(app.consumer, message)


def _on_final_ack(self: Any, consumer: Any) -> bool:
    if _delivery(self) in _abandoned:
        _let_go(consumer, self)
        return False
    acked: bool = _faust_on_final_ack(self, consumer)
    return acked


_faust_commit_and_end_transactions = Consumer.commit_and_end_transactions


async def _commit_and_end_every_transaction(self: Any) -> None:
    """Faust's final commit (partitions revoked, worker stopping), then commit what it left open."""
    await _faust_commit_and_end_transactions(self)
    if not self.app.in_transaction:
        return
    producer = self.app.producer
    for transactional_id, transactions in list(producer._transaction_producers.items()):
        async with producer._trn_locks[transactional_id]:
            if transactions._txn_manager is not None and transactions._txn_manager.is_in_transaction():
                await transactions.commit_transaction()


def apply() -> None:
    """Install the workarounds (idempotent)."""
    global _APPLIED
    if not _APPLIED:
        faust_aiokafka.AIOKafkaConsumerThread._highwaters = _highwaters_from_the_broker  # type: ignore[method-assign]
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
        ThrowableQueue.clear = _clear_queue  # type: ignore[method-assign]
        ConsumerMessage.on_final_ack = _on_final_ack  # type: ignore[method-assign]
        Consumer.commit_and_end_transactions = _commit_and_end_every_transaction  # type: ignore[method-assign]
        _APPLIED = True
