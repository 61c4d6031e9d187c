"""The call agent: one stream over calls.events and calls.audio (co-partitioned by call id).

Per record: decode, load the call's state from the changelog-backed table, run the pure
``session.step``, assign the new state back, and send the outputs keyed by call id. Records that
cannot be decoded or are refused by the state machine go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust

from processors.audio.errors import AudioError
from processors.session import CallState, SessionError, step
from schemas import SchemaError

if TYPE_CHECKING:
    from processors.app import WorkerContext

log = logging.getLogger(__name__)


def register(ctx: WorkerContext) -> None:
    """Register the call agent and its table on ``ctx.app``."""
    app, topics, codec = ctx.app, ctx.topics, ctx.codec
    source = app.topic(topics.events, topics.audio, key_type=bytes, value_type=bytes)
    speech = app.topic(topics.speech, key_type=bytes, value_type=bytes)
    deadletter = app.topic(topics.deadletter, key_type=bytes, value_type=bytes)
    calls = app.Table(
        "calls",
        default=None,
        partitions=app.conf.topic_partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    async def dead_letter(event: Any, reason: str) -> None:
        log.warning(
            "dead-lettering %s[%s]@%s: %s",
            event.message.topic,
            event.message.partition,
            event.message.offset,
            reason,
        )
        await deadletter.send(
            key=event.key,
            value=event.value,
            headers={
                "reason": reason.encode(),
                "source": f"{event.message.topic}/{event.message.partition}/{event.message.offset}".encode(),
                "stage": b"worker.calls",
            },
        )

    @app.agent(source, name="calls")
    async def process_calls(stream: Any) -> None:
        async for event in stream.events():
            try:
                decoded = codec.decode(event.value)
                call_id = str(decoded.record["call_id"])
                current = calls.get(call_id)
                state = CallState.from_dict(current) if current else CallState(call_id=call_id)
                result = step(state, decoded.name, decoded.record)
            except (SchemaError, SessionError, AudioError) as exc:
                await dead_letter(event, f"{type(exc).__name__}: {exc}")
                continue
            calls[call_id] = result.state.to_dict()
            for name, record in result.outputs:
                await speech.send(key=call_id.encode(), value=codec.encode(name, record))
