"""`switchboard simulate`: a load generator that plays realistic calls through the gateway's vendor protocols.

It is a client of the gateway, like the vendors themselves: Telnyx media WebSockets, mediaservice
callbacks and Cresta call sessions over real HTTP/WebSocket. It imports none of the edges.
"""

from __future__ import annotations


class SimulateError(Exception):
    """The load generator cannot run as asked (bad option, missing espeak-ng, unusable gateway answer)."""
