"""What every vendor router gets from the gateway: settings, the record sink, topic names, tenants, ids, clock.

Routers that need a background service (a feed consumer, a webhook sender) register an async
context manager with ``add_service``; the gateway enters them at start-up and exits them at
shutdown, in reverse order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from starlette.responses import Response

from infra.settings import Settings
from infra.topics import Topics
from producers.ids import IdGenerator
from producers.sink import RecordSink
from producers.tenancy import Tenants


def wall_clock_ms() -> int:
    """Current UTC time in ms."""
    return time.time_ns() // 1_000_000


@dataclass
class GatewayContext:
    """Shared dependencies of the vendor routers."""

    settings: Settings
    sink: RecordSink
    topics: Topics
    tenants: Tenants
    ids: IdGenerator
    clock_ms: Callable[[], int] = wall_clock_ms
    services: list[Callable[[], AbstractAsyncContextManager[object]]] = field(default_factory=list)
    unavailable: list[tuple[str, Callable[[], Response]]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, sink: RecordSink) -> GatewayContext:
        return cls(
            settings=settings,
            sink=sink,
            topics=Topics.from_settings(settings),
            tenants=Tenants(settings.api_keys),
            ids=IdGenerator(settings.gateway_node_id),
        )

    def add_service(self, factory: Callable[[], AbstractAsyncContextManager[object]]) -> None:
        """Run ``factory()`` as an async context for the gateway's lifetime."""
        self.services.append(factory)

    def on_unavailable(self, path_prefix: str, response: Callable[[], Response]) -> None:
        """Answer Kafka outages under ``path_prefix`` with this vendor's own 503 response."""
        self.unavailable.append((path_prefix, response))

    def unavailable_response(self, path: str) -> Response | None:
        """The vendor 503 response registered for the longest prefix of ``path``, if any."""
        matches = [(prefix, make) for prefix, make in self.unavailable if path.startswith(prefix)]
        if not matches:
            return None
        return max(matches, key=lambda match: len(match[0]))[1]()
