"""How the worker drives Faust: the order records reach the agents, and the workarounds in faust_fixes."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.events import Event
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from infra.settings import Settings
from processors import faust_fixes
from processors.app import app_options
from processors.scheduling import OldestFirst

EVENTS0, AUDIO0, AUDIO1 = TP("calls.events", 0), TP("calls.audio", 0), TP("calls.audio", 1)


@pytest.fixture(autouse=True)
def _collect_faust_objects() -> Iterator[None]:
    """Finalise the Faust apps and consumers a test built before the next test runs: CPython 3.11.7 raises
    "AST constructor recursion depth mismatch" when such finalisers run during a later module's parse."""
    yield
    gc.collect()


def record(tp: TP, offset: int, timestamp: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, timestamp, 0, b"k", b"v", None, 1, 1, ())


def order(records: dict[TP, list[Any]]) -> list[tuple[str, int]]:
    return [(f"{tp.topic}/{tp.partition}", r.offset) for tp, r in OldestFirst().iterate(records)]


def test_a_backlog_is_handed_over_in_the_order_it_was_sent() -> None:
    audio = [record(AUDIO0, n, 1000 + 20 * n) for n in range(6)]
    events = [record(EVENTS0, 0, 1045), record(EVENTS0, 1, 1085)]  # sent after audio 2 and after audio 4
    assert order({AUDIO0: audio, EVENTS0: events}) == [
        ("calls.audio/0", 0), ("calls.audio/0", 1), ("calls.audio/0", 2), ("calls.events/0", 0),
        ("calls.audio/0", 3), ("calls.audio/0", 4), ("calls.events/0", 1), ("calls.audio/0", 5),
    ]  # fmt: skip


def test_a_partitions_own_order_wins_over_its_timestamps() -> None:
    skewed = [record(AUDIO0, 0, 50), record(AUDIO0, 1, 10), record(AUDIO0, 2, 60)]  # a producer's clock stepped back
    other = [record(AUDIO1, 0, 20), record(AUDIO1, 1, 55)]
    got = order({AUDIO0: skewed, AUDIO1: other})
    assert [o for p, o in got if p == "calls.audio/0"] == [0, 1, 2]
    assert [o for p, o in got if p == "calls.audio/1"] == [0, 1]
    assert got == [("calls.audio/1", 0), ("calls.audio/0", 0), ("calls.audio/0", 1), ("calls.audio/1", 1),
                   ("calls.audio/0", 2)]  # fmt: skip


def test_every_record_is_handed_over_once_and_ties_keep_the_batch_order() -> None:
    rng = random.Random(7)
    batch = {
        tp: [record(tp, n, t) for n, t in enumerate(sorted(rng.choices(range(40), k=rng.randint(0, 30))))]
        for tp in (EVENTS0, AUDIO0, AUDIO1)
    }
    got = list(OldestFirst().iterate(batch))
    assert sorted((tp, r.offset) for tp, r in got) == sorted((tp, r.offset) for tp, rs in batch.items() for r in rs)
    stamps = [r.timestamp for _, r in got]
    assert stamps == sorted(stamps)
    position = {id(r): i for i, (_, r) in enumerate(got)}
    for rs in batch.values():
        assert [position[id(r)] for r in rs] == sorted(position[id(r)] for r in rs)
    tie = order({EVENTS0: [record(EVENTS0, 0, 5)], AUDIO0: [record(AUDIO0, 0, 5)]})
    assert tie == [("calls.events/0", 0), ("calls.audio/0", 0)]


def test_the_worker_app_uses_the_oldest_first_strategy(tmp_path: Path) -> None:
    app = faust.App("wiring-test", **app_options(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "w"))
    assert app.conf.ConsumerScheduler is OldestFirst


class _Completion:
    """Stands in for Faust's own ``on_recovery_completed``: records what the worker's consumer looked like
    at each of the steps Faust takes, in Faust's order."""

    def __init__(self, return_early: bool = False) -> None:
        self.return_early = return_early
        self.seen: list[tuple[str, bool]] = []

    async def __call__(self, recovery: Any, generation_id: int = 0) -> None:
        consumer, flow = recovery.app.consumer, recovery.app.flow_control
        consumer.resume_partitions({AUDIO0})
        self.seen.append(("after resume_partitions", AUDIO0 in consumer._get_active_partitions()))
        if self.return_early:
            raise RuntimeError("rebalanced again")
        flow.resume()
        self.seen.append(("after flow_control.resume", AUDIO0 in consumer._get_active_partitions()))


class _Recovery:
    def __init__(self, app: faust.App) -> None:
        self.app = app


async def test_stream_partitions_resume_only_once_flow_control_has_emptied_the_queues(
    tmp_path: Path, monkeypatch: Any
) -> None:
    app = faust.App("recovery-test", **app_options(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "w"))
    consumer = app.consumer
    consumer.pause_partitions({AUDIO0})
    cleared: list[bool] = []
    active = consumer._get_active_partitions
    monkeypatch.setattr(type(app.flow_control), "clear", lambda self: cleared.append(AUDIO0 in active()))
    faust_steps = _Completion()
    monkeypatch.setattr(faust_fixes, "_faust_on_recovery_completed", faust_steps)

    await faust_fixes._on_recovery_completed(_Recovery(app))

    # Faust's seek runs between these two steps: the partition must not be fetched from yet
    assert faust_steps.seen == [("after resume_partitions", False), ("after flow_control.resume", True)]
    assert cleared == [False]  # the queues were emptied while nothing of the partition could be in them
    assert "resume_partitions" not in vars(consumer) and "resume" not in vars(app.flow_control)


async def test_a_completion_cut_short_still_resumes_what_faust_asked_for(tmp_path: Path, monkeypatch: Any) -> None:
    app = faust.App("recovery-test-2", **app_options(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "w"))
    consumer = app.consumer
    consumer.pause_partitions({AUDIO0})
    monkeypatch.setattr(faust_fixes, "_faust_on_recovery_completed", _Completion(return_early=True))
    with pytest.raises(RuntimeError, match="rebalanced again"):
        await faust_fixes._on_recovery_completed(_Recovery(app))
    assert AUDIO0 in consumer._get_active_partitions()
    assert "resume_partitions" not in vars(consumer) and "resume" not in vars(app.flow_control)


def _shared_record(app: faust.App, offset: int) -> tuple[Any, list[Any]]:
    """A calls.events record delivered to two agents' queues (as the conductor does), and those queues."""
    faust_fixes.apply()
    message = ConsumerMessage(EVENTS0.topic, EVENTS0.partition, offset, 0.0, 0, None, b"k", b"v", None, generation_id=3)
    message.incref(2)
    queues = [app.FlowControlQueue(maxsize=10, clear_on_resume=True) for _ in range(2)]
    for queue in queues:
        queue.put_nowait(Event(app, b"k", b"v", None, message))
    return message, queues


def _take(app: faust.App, queue: Any) -> Any:
    """What a stream does when it pulls an event: the first one to pull a record starts waiting for its ack."""
    event = queue.get_nowait()
    if not event.message.tracked:
        event.message.tracked = True
        app.consumer._unacked_messages.add(event.message)
    return event


def _acking_consumer(app: faust.App, monkeypatch: Any) -> list[int]:
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: True)
    return app.consumer._acked[EVENTS0]


def test_a_record_one_agent_processed_and_the_other_lost_in_a_clear_is_not_waited_for(
    tmp_path: Path, monkeypatch: Any
) -> None:
    app = faust.App("abandon-1", **app_options(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "w"))
    acked = _acking_consumer(app, monkeypatch)
    message, (calls_queue, commands_queue) = _shared_record(app, 7)
    _take(app, calls_queue).ack()  # the call agent is done with it
    assert message in app.consumer._unacked_messages  # still waiting for the dispatcher

    commands_queue.clear()  # a rebalance empties the queues

    assert message not in app.consumer._unacked_messages  # nothing left to wait for
    assert acked == []  # and not committed: the next owner reads it again


def test_a_record_still_held_by_one_agent_is_not_committed_when_it_finishes(tmp_path: Path, monkeypatch: Any) -> None:
    app = faust.App("abandon-2", **app_options(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "w"))
    acked = _acking_consumer(app, monkeypatch)
    message, (calls_queue, commands_queue) = _shared_record(app, 8)
    event = _take(app, calls_queue)  # the call agent is working on it

    commands_queue.clear()
    assert message in app.consumer._unacked_messages  # the call agent's work is still waited for
    event.ack()

    assert message not in app.consumer._unacked_messages
    assert acked == []


def test_a_record_every_agent_processed_is_committed_as_before(tmp_path: Path, monkeypatch: Any) -> None:
    app = faust.App("abandon-3", **app_options(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "w"))
    acked = _acking_consumer(app, monkeypatch)
    message, queues = _shared_record(app, 9)
    for queue in queues:
        _take(app, queue).ack()
    for queue in queues:
        queue.clear()  # nothing left in them: a clear changes nothing
    assert message not in app.consumer._unacked_messages
    assert acked == [9]
