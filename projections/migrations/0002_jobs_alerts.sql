-- Jobs (Oliver processes) and alerts.
-- job_transitions keeps every transition (natural id: job, time, target status). `jobs` is a view
-- with one current row per job, folded from its transitions at query time, so no transition order
-- or replay can leave it stale. alerts keeps one row per occurrence: the CLEARED record of an
-- occurrence (same alert_id, later offset) replaces its RAISED record.

CREATE TABLE IF NOT EXISTS {db}.job_transitions
(
    cid             Int64                   COMMENT 'Tenant (client) id',
    job_id          Int64                   COMMENT 'Process id (pid)',
    from_status     Nullable(Int8)          COMMENT 'Oliver status before (null when the job was created)',
    to_status       Int8                    COMMENT 'Oliver status after: 0 pending, 1 processing, 2 completed, -1 failed, -2 aborted',
    at              DateTime64(3, 'UTC')    COMMENT 'When the transition happened',
    reason          String                  COMMENT 'statusmsg',
    metadata        Map(String, String)     COMMENT 'Job inputs as given (channels, calldirection, agentId, tasks, uri, ...)',
    results         Nullable(String)        COMMENT 'Call-level results (JSON) on completion',
    kafka_partition UInt32                  COMMENT 'Source partition of jobs.transitions',
    kafka_offset    UInt64                  COMMENT 'Source offset (row version)'
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (cid, job_id, at, to_status);

CREATE VIEW IF NOT EXISTS {db}.jobs AS
SELECT
    cid,
    job_id,
    argMax(to_status, (at, kafka_offset))                               AS status,
    argMax(reason, (at, kafka_offset))                                  AS statusmsg,
    min(at)                                                             AS created_at,
    max(at)                                                             AS updated_at,
    minIfOrNull(at, to_status = 1)                                      AS started_at,
    maxIfOrNull(at, to_status IN (2, -1, -2))                           AS finished_at,
    argMinIf(metadata, (at, kafka_offset), from_status IS NULL)         AS metadata,
    argMaxIf(results, (at, kafka_offset), results IS NOT NULL)          AS results,
    count()                                                             AS transitions
FROM {db}.job_transitions FINAL
GROUP BY cid, job_id;

CREATE TABLE IF NOT EXISTS {db}.alerts
(
    cid             Int64                   COMMENT 'Tenant (client) id',
    call_id         String                  COMMENT 'Canonical call id',
    alert_id        String                  COMMENT 'Content-derived occurrence id (call, rule, start)',
    rule_id         String                  COMMENT 'Rule that fired',
    rule_kind       LowCardinality(String)  COMMENT 'dead_air, overtalk, interruptions, monologue, long_hold, no_media, low_level, clipping, call_duration',
    severity        LowCardinality(String)  COMMENT 'INFO, WARNING, CRITICAL',
    status          LowCardinality(String)  COMMENT 'RAISED while the condition holds, CLEARED once it ended',
    start_ms        Int64                   COMMENT 'Start of the media-time range, ms since the call media began',
    end_ms          Int64                   COMMENT 'End of the range: threshold crossing while RAISED, end of the occurrence once CLEARED',
    detected_at     DateTime64(3, 'UTC')    COMMENT 'Media-derived wall time of the detection (of the clearing once CLEARED)',
    details         Map(String, String)     COMMENT 'Rule parameters and measured values',
    kafka_partition UInt32                  COMMENT 'Source partition of calls.alerts',
    kafka_offset    UInt64                  COMMENT 'Source offset (row version)'
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (cid, call_id, alert_id);
