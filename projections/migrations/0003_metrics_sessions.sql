-- Call metrics, prosody interims and the `sessions` view.
-- call_metrics keeps one current row per call: its version is the media watermark (x2, +1 for the
-- final record), so the latest analysis wins whatever order or how often the records arrive.
-- prosody_interims keeps one row per (call, role, window). `sessions` is a view folded at query
-- time from call_events, call_metrics, alerts and jobs: no event order or replay can leave it
-- stale, and it needs no backfill when a source table gains rows late.

CREATE TABLE IF NOT EXISTS {db}.call_metrics
(
    cid                           Int64             COMMENT 'Tenant (client) id',
    call_id                       String            COMMENT 'Canonical call id',
    watermark_ms                  Int64             COMMENT 'Media time (ms since the media began) up to which both tracks were analysed',
    final                         Bool              COMMENT 'True for the call''s last record (its media ended)',
    talk_agent_ms                 Int64             COMMENT 'Agent talk time, ms (overlap included)',
    talk_customer_ms              Int64             COMMENT 'Customer talk time, ms (overlap included)',
    silence_ms                    Int64             COMMENT 'Time nobody spoke, hold excluded, ms',
    overtalk_ms                   Int64             COMMENT 'Time both spoke, ms',
    hold_ms                       Int64             COMMENT 'Time on hold, ms of media time',
    interruptions_agent           Int32             COMMENT 'Times the agent started speaking over the customer',
    interruptions_customer        Int32             COMMENT 'Times the customer started speaking over the agent',
    longest_monologue_agent_ms    Int64             COMMENT 'Longest completed agent monologue, ms',
    longest_monologue_customer_ms Int64             COMMENT 'Longest completed customer monologue, ms',
    speaker_changes               Int32             COMMENT 'Turn changes between agent and customer',
    talk_ratio                    Nullable(Float64) COMMENT 'Agent talk / (agent + customer talk), null before anybody spoke',
    beeps                         Int32             COMMENT 'Beep tones detected',
    rings                         Int32             COMMENT 'Ring-back tone cycles detected',
    dtmf                          String            COMMENT 'In-band DTMF digits, in media order',
    alerts                        Int32             COMMENT 'Alert occurrences raised up to the watermark',
    basic                         String            COMMENT 'Oliver `basic` block as JSON (final record only, empty object before)',
    kafka_partition               UInt32            COMMENT 'Source partition of calls.speech',
    kafka_offset                  UInt64            COMMENT 'Source offset',
    version                       UInt64 MATERIALIZED toUInt64(greatest(watermark_ms, 0)) * 2 + final COMMENT 'Row version: watermark x2, +1 when final'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (cid, call_id);

CREATE TABLE IF NOT EXISTS {db}.prosody_interims
(
    cid             Int64                            COMMENT 'Tenant (client) id',
    call_id         String                           COMMENT 'Canonical call id',
    role            LowCardinality(String)           COMMENT 'Whose window it is: AGENT, CUSTOMER, ...',
    start_ms        Int64                            COMMENT 'Window start, ms of media time',
    end_ms          Int64                            COMMENT 'Window end (exclusive), ms of media time',
    intensity       Nullable(Int8)                   COMMENT 'Loudness 0-10 of the speech in the window, null when not estimable',
    vocal_variety   Nullable(Int8)                   COMMENT 'Pitch variability 0-10 (low = monotonous), null when not estimable',
    speaking_rate   LowCardinality(Nullable(String)) COMMENT 'very slow | slow | normal | fast | very fast, null when not estimable',
    kafka_partition UInt32                           COMMENT 'Source partition of calls.speech',
    kafka_offset    UInt64                           COMMENT 'Source offset (row version)'
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (cid, call_id, role, start_ms);

CREATE VIEW IF NOT EXISTS {db}.sessions AS
SELECT
    e.cid                                                                          AS cid,
    e.call_id                                                                      AS call_id,
    multiIf(e.ended_at IS NOT NULL, 'ENDED', e.hold_fold.1 >= 0, 'ON_HOLD', e.answered_at IS NOT NULL, 'ACTIVE',
            e.started_at IS NOT NULL, 'RINGING', 'NEW')                            AS state,
    e.direction                                                                    AS direction,
    e.from_number                                                                  AS from_number,
    e.to_number                                                                    AS to_number,
    e.participants                                                                 AS participants,
    multiIf(e.participant_agent != '', e.participant_agent, e.attr_agent != '', e.attr_agent,
            coalesce(j.job_agent, ''))                                             AS agent_id,
    if(e.attr_team != '', e.attr_team, coalesce(j.job_team, ''))                   AS agent_team,
    if(e.attr_campaign != '', e.attr_campaign, coalesce(j.job_campaign, ''))       AS campaign_id,
    e.sources                                                                      AS sources,
    e.events                                                                       AS events,
    e.first_event_at                                                               AS first_event_at,
    e.started_at                                                                   AS started_at,
    e.answered_at                                                                  AS answered_at,
    e.ended_at                                                                     AS ended_at,
    e.last_received_at                                                             AS last_received_at,
    e.hold_fold.2                                                                  AS hold_count,
    e.hold_fold.3 + if(e.hold_fold.1 >= 0 AND e.ended_at IS NOT NULL,
                       toUnixTimestamp64Milli(assumeNotNull(e.ended_at)) - e.hold_fold.1, 0) AS hold_time_ms,
    if(e.hold_fold.1 >= 0, fromUnixTimestamp64Milli(e.hold_fold.1, 'UTC'), NULL)   AS on_hold_since,
    m.final                                                                        AS metrics_final,
    m.watermark_ms                                                                 AS metrics_watermark_ms,
    m.talk_agent_ms                                                                AS talk_agent_ms,
    m.talk_customer_ms                                                             AS talk_customer_ms,
    m.silence_ms                                                                   AS silence_ms,
    m.overtalk_ms                                                                  AS overtalk_ms,
    m.hold_ms                                                                      AS media_hold_ms,
    m.talk_ratio                                                                   AS talk_ratio,
    m.interruptions_agent                                                          AS interruptions_agent,
    m.interruptions_customer                                                       AS interruptions_customer,
    m.speaker_changes                                                              AS speaker_changes,
    coalesce(a.alert_count, 0)                                                     AS alert_count,
    coalesce(a.open_alerts, 0)                                                     AS open_alerts
FROM
(
    SELECT
        cid,
        call_id,
        count()                                                                    AS events,
        arraySort(groupUniqArray(toString(source)))                                AS sources,
        min(occurred_at)                                                           AS first_event_at,
        minIfOrNull(occurred_at, event_type = 'CallStarted')                       AS started_at,
        minIfOrNull(occurred_at, event_type = 'CallAnswered'
                    OR (event_type = 'CallStarted' AND JSONExtractBool(details, 'answered'))) AS answered_at,
        minIfOrNull(occurred_at, event_type = 'CallEnded')                         AS ended_at,
        max(received_at)                                                           AS last_received_at,
        argMinIf(JSONExtractString(details, 'direction'), (occurred_at, kafka_offset),
                 event_type = 'CallStarted')                                       AS direction,
        argMinIf(JSONExtract(details, 'from_number', 'Nullable(String)'), (occurred_at, kafka_offset),
                 event_type = 'CallStarted')                                       AS from_number,
        argMinIf(JSONExtract(details, 'to_number', 'Nullable(String)'), (occurred_at, kafka_offset),
                 event_type = 'CallStarted')                                       AS to_number,
        CAST(arrayDistinct(groupArrayArrayIf(
                 arrayMap(p -> (JSONExtractString(p, 'role'), JSONExtractString(p, 'participant_id')),
                          JSONExtractArrayRaw(details, 'participants')),
                 event_type IN ('CallStarted', 'CallAnswered'))),
             'Array(Tuple(role String, participant_id String))')                   AS participants,
        arrayFirst(p -> p.1 = 'AGENT' AND p.2 != '', participants).2               AS participant_agent,
        anyIf(attributes['agentId'], attributes['agentId'] != '')                  AS attr_agent,
        anyIf(attributes['agentTeam'], attributes['agentTeam'] != '')              AS attr_team,
        anyIf(attributes['campaignId'], attributes['campaignId'] != '')            AS attr_campaign,
        -- (open hold since ms or -1, holds, closed hold ms) folded over hold events in time order
        arrayFold(
            (acc, x) -> if(x.3,
                           if(acc.1 < 0, (x.1, acc.2 + 1, acc.3), acc),
                           if(acc.1 >= 0, (toInt64(-1), acc.2, acc.3 + (x.1 - acc.1)), acc)),
            arraySort(groupArrayIf((toUnixTimestamp64Milli(occurred_at), kafka_offset, event_type = 'CallHeld'),
                                   event_type IN ('CallHeld', 'CallResumed'))),
            (toInt64(-1), toUInt64(0), toInt64(0)))                                AS hold_fold
    FROM {db}.call_events FINAL
    GROUP BY cid, call_id
) AS e
LEFT JOIN
(
    SELECT cid, call_id, final, watermark_ms, talk_agent_ms, talk_customer_ms, silence_ms, overtalk_ms, hold_ms,
           talk_ratio, interruptions_agent, interruptions_customer, speaker_changes
    FROM {db}.call_metrics FINAL
) AS m ON m.cid = e.cid AND m.call_id = e.call_id
LEFT JOIN
(
    SELECT cid, call_id, count() AS alert_count, countIf(status = 'RAISED') AS open_alerts
    FROM {db}.alerts FINAL
    GROUP BY cid, call_id
) AS a ON a.cid = e.cid AND a.call_id = e.call_id
LEFT JOIN
(
    SELECT cid, toString(job_id) AS call_id, metadata['agentId'] AS job_agent, metadata['agentTeam'] AS job_team,
           metadata['campaignId'] AS job_campaign
    FROM {db}.jobs
) AS j ON j.cid = e.cid AND j.call_id = e.call_id
SETTINGS join_use_nulls = 1;
