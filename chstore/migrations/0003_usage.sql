-- Usage aggregates in 15-minute UTC buckets: fine enough for every IANA time
-- zone (half-hour and 45-minute offsets, DST changes). Each job event counts
-- in the bucket of its own event time. Read with the -Merge combinators
-- (sumMerge, uniqExactMerge) and GROUP BY: exact at once, before merges.
CREATE TABLE IF NOT EXISTS usage_15m (
    reseller_id    String,
    org_id         String,
    bucket         DateTime,
    model          String,
    language       String,
    jobs_created   AggregateFunction(sum, UInt64),
    jobs_completed AggregateFunction(sum, UInt64),
    jobs_failed    AggregateFunction(sum, UInt64),
    media_ms       AggregateFunction(sum, UInt64),
    processing_ms  AggregateFunction(sum, UInt64),
    users          AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (reseller_id, org_id, bucket, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_mv TO usage_15m AS
SELECT
    reseller_id, org_id,
    toStartOfFifteenMinutes(time) AS bucket,
    model, language,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, org_id, bucket, model, language;
