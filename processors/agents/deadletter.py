"""The worker's dead-letter sender: a record that cannot be processed is kept, as received, with why and where."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

log = logging.getLogger(__name__)

DeadLetter = Callable[[Any, str], Awaitable[None]]


def dead_letter_sender(app: faust.App, topic: str, stage: str) -> DeadLetter:
    """``send(event, reason)``: the event's key and value to ``topic`` with reason, source and stage headers."""
    channel = app.topic(topic, key_type=bytes, value_type=bytes)

    async def send(event: Any, reason: str) -> None:
        where = f"{event.message.topic}/{event.message.partition}/{event.message.offset}"
        log.warning("dead-lettering %s: %s", where, reason)
        headers = {"reason": reason.encode(), "source": where.encode(), "stage": stage.encode()}
        await channel.send(key=event.key, value=event.value, headers=headers)

    return send
