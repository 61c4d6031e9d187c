"""The command dispatcher agent: one stream over calls.events and calls.commands (co-partitioned by call id).

Per record: decode, load the call's command state from the changelog-backed table, run the pure
``commands.step``, write the new state back by assignment, then perform the actions: record the
refusals, and for each dispatch POST it (with retries) and record every attempt as a
CommandResult on calls.commands.

Never twice: before anything is sent, the state marking the commands INFLIGHT is also written
straight to the table's changelog with a plain (non-transactional) producer and acknowledged by
Kafka. Faust buffers its own changelog writes and, under ``exactly_once``, puts them in a
transaction that a crash aborts; this mark survives both, so a restarted worker finds the command
INFLIGHT and records its outcome as unknown instead of sending it again (docs/commands.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust
import httpx
from aiokafka import AIOKafkaProducer

from infra.kafka_clients import make_producer, stop_producer
from processors.agents.deadletter import dead_letter_sender
from processors.commands import CommandError, CommandsState, Dispatch, Record, complete, step
from processors.dispatch import TIMEOUT, Dispatcher, JwtSigner
from schemas import COMMAND_RESULT, SchemaError

if TYPE_CHECKING:
    from infra.settings import Settings
    from processors.app import WorkerContext

log = logging.getLogger(__name__)

SERIALIZER = "json"  # of the table's keys and values, in Faust's changelog and in the mark


def register(ctx: WorkerContext, settings: Settings) -> None:
    """Register the command agent and its table on ``ctx.app``."""
    app, topics, codec = ctx.app, ctx.topics, ctx.codec
    source = app.topic(topics.events, topics.commands, key_type=bytes, value_type=bytes)
    results = app.topic(topics.commands, key_type=bytes, value_type=bytes)
    table = app.Table(
        "commands",
        default=None,
        partitions=app.conf.topic_partitions,
        schema=faust.Schema(key_serializer=SERIALIZER, value_serializer=SERIALIZER),
    )
    bootstrap = ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)

    dead_letter = dead_letter_sender(app, topics.deadletter, "worker.commands")

    async def record(result: Record) -> None:
        await results.send(key=str(result["call_id"]).encode(), value=codec.encode(COMMAND_RESULT, result))

    async def mark(marks: AIOKafkaProducer, event: Any, state: CommandsState) -> None:
        """The INFLIGHT state, durable in the changelog before anything is sent."""
        changelog = table.changelog_topic
        key, _ = changelog.prepare_key(state.call_id, SERIALIZER)
        value, _ = changelog.prepare_value(state.to_dict(), SERIALIZER)
        await marks.send_and_wait(changelog.get_topic_name(), value, key=key, partition=event.message.partition)

    async def perform(dispatcher: Dispatcher, state: CommandsState, action: Dispatch) -> CommandsState:
        async for result in dispatcher.execute(action):
            await record(result)
        state = complete(state, action.command_id)
        table[state.call_id] = state.to_dict()
        return state

    async def handle(event: Any, dispatcher: Dispatcher, marks: AIOKafkaProducer) -> None:
        try:
            decoded = codec.decode(event.value)
            call_id = str(decoded.record["call_id"])
            current = table.get(call_id)
            before = CommandsState.from_dict(current) if current else CommandsState(call_id=call_id)
            result = step(before, decoded.name, decoded.record)
        except (SchemaError, CommandError) as exc:
            await dead_letter(event, f"{type(exc).__name__}: {exc}")
            return
        state = result.state
        if state != before:
            table[call_id] = state.to_dict()
        if any(isinstance(action, Dispatch) for action in result.actions):
            await mark(marks, event, state)
        for action in result.actions:
            if isinstance(action, Dispatch):
                state = await perform(dispatcher, state, action)
            else:
                await record(action.result)

    @app.agent(source, name="commands")
    async def dispatch_commands(stream: Any) -> None:
        signer = JwtSigner.from_file(settings.mediaservice_private_key) if settings.mediaservice_private_key else None
        marks = make_producer(bootstrap, settings)
        await marks.start()
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                dispatcher = Dispatcher(client, settings.mediaservice_url, signer)
                async for event in stream.events():
                    await handle(event, dispatcher, marks)
        finally:
            await stop_producer(marks, settings.produce_timeout_s)
