"""Telnyx Call Control media streaming at the ingestion edge (seeds/003, PROTOCOLS.md §3).

Modules: ``models`` (vendor contract, pydantic), ``translate`` (pure mapping to CallEvent /
AudioChunk records), ``media`` (pure per-stream reorder / dedupe / aggregate), ``calls``
(in-process TTL/LRU memory), ``media_socket`` (the WebSocket session), ``webhooks`` (streaming.*
sender service), ``routes`` (router wiring).

Endpoints (details and error codes in ``routes``):
- ``POST [/v2]/calls/{call_control_id}/actions/streaming_start|streaming_stop`` (Bearer tenant key).
- ``WS /telnyx/media/{cid}``: the ``stream_url`` to configure, e.g.
  ``wss://<gateway>/telnyx/media/1?token=<tenant 1 API key>``. The tenant's API key authorises the
  path ``cid``; it is accepted as the ``x-telnyx-streaming-auth-token`` header (when Telnyx is
  given the key as ``stream_auth_token``) or as the ``?token=`` query parameter (when a separate
  streaming token is used in the header). A token configured in ``SWITCHBOARD_TELNYX_STREAM_AUTH_TOKEN``,
  or a ``stream_auth_token`` given in a streaming_start this instance accepted, must equal the
  header (constant time). Anything else: close 1008 before any audio.

Audio: ``inbound`` is the CUSTOMER and ``outbound`` the AGENT unless the ``start`` frame's
``custom_parameters`` say ``inbound_role`` / ``outbound_role`` (AGENT, CUSTOMER, BOT, SUPERVISOR).
G.722 is 16000 Hz audio (its RTP clock says 8000); L16 is stored as L16_BE at the announced rate.
Only the tracks of the call's ``stream_track`` are kept when this instance accepted its
streaming_start; otherwise every track that arrives is kept.

Webhooks go to the streaming_start's ``webhook_url`` (a Switchboard extension) or
``SWITCHBOARD_TELNYX_WEBHOOK_URL``; none configured: none sent.
"""
