"""Cresta VoiceCallSession at the ingestion edge: session events and call audio streamed as gRPC-transcoded JSON.

``models`` is the vendor contract, ``framing`` splits the message streams, ``translate`` maps messages
to records, ``session`` holds the pure per-stream state, ``stream`` drives a stream against Kafka and
``routes`` serves it over HTTP (NDJSON) and WebSocket. See PROTOCOLS.md §4.
"""
