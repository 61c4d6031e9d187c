"""The call agent: one stream over calls.events and calls.audio (co-partitioned by call id).

The two topics reach it merged oldest record first within each fetched batch
(``processors.scheduling.OldestFirst``), so a backlog replays in the order the gateway sent it.

Per record: decode, rebuild the call's pipeline from the changelog-backed table, let it process
the record, assign the new state back (by assignment, so the changelog gets it), and send the
outputs keyed by call id: alerts to calls.alerts, everything else to calls.speech. Records that
cannot be decoded or analysed go to the dead-letter topic with the reason; the worker goes on.

The worker runs Faust's exactly-once processing, and the agent makes sure the call's state, its
outputs and the input's offset commit in one Kafka transaction (``agents.outputs``), so a worker
killed mid-call resumes from the last committed state and neither loses nor repeats an output.

Absence of media is the one wall-clock rule. The agent remembers, in memory, when each of its live
calls last had audio; a timer sends a tick (internal JSON on calls.ticks, keyed by call id, so it
reaches the worker owning the call) for every call quiet for a second or more, and the agent runs
the pipeline's ``on_tick`` with it. Ticks are disposable: a lost tick only delays the check.

A completed call's facts stay in the table for ``call_retention_ms`` (``worker_call_retention_s``),
then an ``expire`` tick deletes them in a transaction (a changelog tombstone), so the table and its
changelog hold only live and recently completed calls.

After every rebalance (and every ``SCAN_S``) the timer matches its lists to the table: calls it took
over are watched from then, so one that had ended on the previous owner still completes here, and
calls it gave away are no longer ticked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faust
from aiokafka import AIOKafkaProducer

from processors.agents.deadletter import dead_letter_sender
from processors.agents.outputs import TransactionalOutputs
from processors.pipeline import CallPipeline, PipelineError
from processors.session import SessionError
from schemas import SchemaError

if TYPE_CHECKING:
    from processors.app import WorkerContext

TICK_S = 1.0
SCAN_S = 60.0
log = logging.getLogger(__name__)


def register(ctx: WorkerContext) -> None:
    """Register the call agent and its table on ``ctx.app``."""
    app, topics, codec = ctx.app, ctx.topics, ctx.codec
    source = app.topic(topics.events, topics.audio, topics.ticks, key_type=bytes, value_type=bytes)
    calls = app.Table(
        "calls",
        default=None,
        partitions=app.conf.topic_partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    dead_letter = dead_letter_sender(app, topics.deadletter, "worker.calls")

    quiet = QuietCalls()
    completed = CompletedCalls(ctx.call_retention_ms)

    outputs_ = TransactionalOutputs(app, topics, codec)

    async def persist(event: Any, call_id: str, state: dict[str, Any], outputs: list[tuple[str, Any]]) -> None:
        """The call's state and its outputs, in the transaction that commits the input (see agents.outputs)."""
        await outputs_.save(event, calls, call_id, state)
        await outputs_.emit(event, call_id, outputs)

    working = WorkingPipelines()

    def pipeline(call_id: str, cid: int) -> CallPipeline:
        rules = ctx.rulebook.for_tenant(cid)
        state = calls.get(call_id)
        pipe = working.get(call_id, state)
        if pipe is None:
            pipe = CallPipeline(call_id, ctx.pipeline, rules, state=state, silero=ctx.silero)
            if state is not None:
                pipe.resume(time.time_ns() // 1_000_000)
        return pipe.with_rules(rules)

    def watch(call_id: str, cid: int, pipe: CallPipeline) -> None:
        """What the timer must watch after this call's latest step: its quiet, or its retention once completed."""
        quiet.saw(call_id, cid, pipe.quiet_since_ms, pipe.ended)
        if pipe.ended:
            completed.add(call_id, cid, time.time_ns() // 1_000_000)

    async def on_tick(event: Any) -> None:
        tick = json.loads(event.value)
        call_id = str(tick["call_id"])
        state = calls.get(call_id)
        if state is None:
            completed.forget(call_id)
            return
        if tick.get("expire"):
            if state.get("ended"):  # its retention is over: the facts leave the table and its changelog
                await outputs_.delete(event, calls, call_id)
                working.drop(call_id)
            completed.forget(call_id)
            return
        pipe = pipeline(call_id, int(tick["cid"]))
        outputs = pipe.on_tick(int(tick["now_ms"]))
        if outputs:
            await persist(event, call_id, pipe.to_state(), outputs)
        # kept even without outputs: a pipeline rebuilt from the table restarts its wall-clock waits (resume), so
        # rebuilding it at every tick would push a taken-over call's end grace period back forever
        working.keep(call_id, pipe)
        watch(call_id, int(tick["cid"]), pipe)

    @app.agent(source, name="calls")
    async def process_calls(stream: Any) -> None:
        await ctx.rules_loaded.wait()
        async for event in stream.events():
            if event.message.topic == topics.ticks:
                try:
                    await on_tick(event)
                except Exception:  # ticks are disposable: a bug met on one must not crash-loop the agent
                    log.exception("tick %s failed; skipped", event.value)
                    working.drop(event.key.decode(errors="replace") if event.key else "")
                continue
            call_id = event.key.decode(errors="replace") if event.key else ""
            try:
                decoded = codec.decode(event.value)
                call_id = str(decoded.record["call_id"])
                pipe = pipeline(call_id, int(decoded.record["cid"]))
                outputs = pipe.on_record(decoded.name, decoded.record, now_ms=time.time_ns() // 1_000_000)
            except (SchemaError, SessionError, PipelineError) as exc:
                working.drop(call_id)  # it may be half-way through the record: rebuild from the table next time
                await dead_letter(event, f"{type(exc).__name__}: {exc}")
                continue
            except Exception as exc:  # a bug met on one record must not crash-loop the agent and stall every call
                log.exception("call %s: unexpected error on %s; dead-lettered", call_id, event.message)
                working.drop(call_id)
                await dead_letter(event, f"unexpected {type(exc).__name__}: {exc}")
                continue
            await persist(event, call_id, pipe.to_state(), outputs)
            working.keep(call_id, pipe)
            watch(call_id, int(decoded.record["cid"]), pipe)

    async def send_ticks() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap)  # plain: ticks are outside transactions
        await producer.start()
        scanned, scanned_generation = 0.0, None
        try:
            while True:
                await asyncio.sleep(TICK_S)
                now = time.time_ns() // 1_000_000
                generation = app.consumer_generation_id
                rebalanced = generation != scanned_generation and not app.rebalancing
                if rebalanced or now - scanned >= SCAN_S * 1000:  # calls taken over or given away
                    owned = list(calls.data.items())
                    completed.adopt(owned, now)
                    quiet.adopt(owned, now)
                    scanned, scanned_generation = now, generation
                ticks = [(c, {"cid": cid, "now_ms": now}) for c, cid in quiet.due(now)]
                ticks += [(c, {"cid": cid, "now_ms": now, "expire": True}) for c, cid in completed.due(now)]
                for call_id, body in ticks:
                    tick = json.dumps({"call_id": call_id, **body}).encode()
                    await producer.send(topics.ticks, tick, key=call_id.encode())
        finally:
            await producer.stop()

    app.task(send_ticks)


class WorkingPipelines:
    """Live pipelines of this worker's calls, so detectors keep their in-memory state between records.

    The table holds the durable state; a cached pipeline is used only while it is the one that wrote
    the table's current state (same record count), so after a restart or a rebalance the pipeline is
    rebuilt from the table. Bounded: the least recently used pipeline is dropped first.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self._pipes: OrderedDict[str, CallPipeline] = OrderedDict()
        self._limit = limit

    def get(self, call_id: str, state: dict[str, Any] | None) -> CallPipeline | None:
        pipe = self._pipes.get(call_id)
        if pipe is None or state is None or int(state.get("records", -1)) != pipe.records:
            return None
        self._pipes.move_to_end(call_id)
        return pipe

    def keep(self, call_id: str, pipe: CallPipeline) -> None:
        if pipe.ended:
            self._pipes.pop(call_id, None)
            return
        self._pipes[call_id] = pipe
        self._pipes.move_to_end(call_id)
        while len(self._pipes) > self._limit:
            self._pipes.popitem(last=False)

    def drop(self, call_id: str) -> None:
        self._pipes.pop(call_id, None)


class QuietCalls:
    """When each live call of this worker last had audio (wall-clock ms); which are due a tick."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def saw(self, call_id: str, cid: int, last_audio_ms: int | None, ended: bool) -> None:
        if ended:
            self._last.pop(call_id, None)
        elif last_audio_ms is not None:
            self._last[call_id] = (cid, last_audio_ms)

    def due(self, now_ms: int) -> list[tuple[str, int]]:
        """Calls quiet for at least a tick interval."""
        return [(c, cid) for c, (cid, last) in self._last.items() if now_ms - last >= TICK_S * 1000]

    def adopt(self, table: list[tuple[str, Any]], now_ms: int) -> None:
        """Match the calls table (key, state) this process owns now: watch its live calls from ``now_ms``, the
        ones it has not seen a record of (it took them over in a rebalance or a restart; an ended call still
        waiting for its grace period would otherwise never complete), and stop watching calls it gave away."""
        owned = dict(table)
        _keep_only(self._last, owned)
        for call_id, state in owned.items():
            if isinstance(state, dict) and not state.get("ended") and call_id not in self._last:
                self._last[call_id] = (int((state.get("session") or {}).get("cid") or 0), now_ms)

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._last


class CompletedCalls:
    """Completed calls of this worker and when their facts leave the calls table (wall-clock ms).

    A completed call keeps its facts for ``retention_ms``, so a late or replayed record is still known
    as a duplicate; then a tick deletes it (a changelog tombstone), which bounds the table. A restarted
    worker adopts the completed calls it finds in its table with a full retention from then.
    """

    def __init__(self, retention_ms: int) -> None:
        self._retention_ms = retention_ms
        self._expiry: dict[str, tuple[int, int]] = {}

    def add(self, call_id: str, cid: int, now_ms: int) -> None:
        """The call completed (or was seen completed) at ``now_ms``; a later sighting keeps the first expiry."""
        self._expiry.setdefault(call_id, (cid, now_ms + self._retention_ms))

    def adopt(self, table: list[tuple[str, Any]], now_ms: int) -> None:
        """Schedule the completed calls of ``table`` (key, state) this process has not scheduled yet, and
        forget the ones no longer in it (their partition went to another worker)."""
        owned = dict(table)
        _keep_only(self._expiry, owned)
        for call_id, state in owned.items():
            if isinstance(state, dict) and state.get("ended") and call_id not in self._expiry:
                self.add(call_id, int(state["session"].get("cid") or 0), now_ms)

    def forget(self, call_id: str) -> None:
        self._expiry.pop(call_id, None)

    def due(self, now_ms: int) -> list[tuple[str, int]]:
        """Calls whose retention is over (each is forgotten when its expiry tick is handled)."""
        return [(c, cid) for c, (cid, at) in self._expiry.items() if now_ms >= at]

    def __len__(self) -> int:
        return len(self._expiry)


def _keep_only(calls: dict[str, Any], owned: Mapping[str, Any]) -> None:
    """Drop the calls this process no longer owns (their partition went to another worker)."""
    for call_id in [c for c in calls if c not in owned]:
        del calls[call_id]
