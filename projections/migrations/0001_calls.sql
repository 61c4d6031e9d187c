-- Call events and derived speech/level segments, as materialised by the projector.
-- Both tables are ReplacingMergeTree keyed by the record's natural id with the Kafka offset as
-- version: a record delivered twice collapses to one row (read with FINAL).

CREATE TABLE IF NOT EXISTS {db}.call_events
(
    cid             Int64                   COMMENT 'Tenant (client) id',
    call_id         String                  COMMENT 'Canonical call id',
    event_id        String                  COMMENT 'Content-derived event id (CallEvent.event_id)',
    event_type      LowCardinality(String)  COMMENT 'Payload type: CallStarted, CallEnded, CallHeld, Dtmf, ...',
    source          LowCardinality(String)  COMMENT 'Ingestion protocol (TELNYX, CRESTA, ...)',
    occurred_at     DateTime64(3, 'UTC')    COMMENT 'When it happened according to the vendor',
    received_at     DateTime64(3, 'UTC')    COMMENT 'When the gateway received it',
    details         String                  COMMENT 'Typed payload as JSON',
    raw             String                  COMMENT 'Vendor message as received',
    attributes      Map(String, String)     COMMENT 'Indexed vendor metadata',
    kafka_partition UInt32                  COMMENT 'Source partition of calls.events',
    kafka_offset    UInt64                  COMMENT 'Source offset (row version)'
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (cid, call_id, event_id);

CREATE TABLE IF NOT EXISTS {db}.speech_segments
(
    cid                Int64                  COMMENT 'Tenant (client) id',
    call_id            String                 COMMENT 'Canonical call id',
    segment_id         String                 COMMENT 'Content-derived segment id',
    track              String                 COMMENT 'Track label',
    role               LowCardinality(String) COMMENT 'AGENT, CUSTOMER, ... or UNSPECIFIED',
    kind               LowCardinality(String) COMMENT 'SPEECH or LEVEL',
    start_sample       Int64                  COMMENT 'First sample (inclusive)',
    end_sample         Int64                  COMMENT 'End sample (exclusive)',
    sample_rate        UInt32                 COMMENT 'Hz',
    rms_dbfs           Nullable(Float64)      COMMENT 'RMS level, dBFS',
    peak_dbfs          Nullable(Float64)      COMMENT 'Peak level, dBFS',
    speech_probability Nullable(Float64)      COMMENT 'Detector confidence, 0..1',
    detector           LowCardinality(String) COMMENT 'What produced the segment',
    kafka_partition    UInt32                 COMMENT 'Source partition of calls.speech',
    kafka_offset       UInt64                 COMMENT 'Source offset (row version)'
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (cid, call_id, segment_id);
