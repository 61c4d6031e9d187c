"""The Oliver (Behavioral Signals) job API at the ingestion gateway.

``POST /client/{cid}/process/audio`` (batch job from an uploaded file), ``POST /client/{cid}/process/stream``
(live job) and the live audio WebSocket ``/stream/{cid}`` (PROTOCOLS.md §1). Jobs become JobTransition
records, streamed audio becomes AudioChunk records and stream life-cycle CallEvents; the job's outputs
(SpeechSegment, Alert) are pushed back on the socket by a per-gateway result feed.

Layout: ``models`` (vendor contract), ``translate`` (pure mapping to records and result messages),
``wav``/``mp3``/``framing`` (pure stream framing), ``blobs``/``upload``/``audio_probe`` (file intake),
``feed`` (result feed and job directory over Kafka), ``stream`` (one WebSocket session), ``routes``.
"""
