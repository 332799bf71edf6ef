-- usage_15m per reseller, bucket, model and language, without the
-- organization: a reseller's series by model or language (or filtered on
-- them) in any time zone, for ranges within a month. In a zone whose days
-- do not start at a UTC midnight (Asia/Kolkata, America/New_York), a
-- daily series cannot use usage_1d and read every 15-minute bucket of
-- every organization from usage_15m; a month of the largest benchmark
-- reseller by model was about 500,000 rows and 75–113 ms of ClickHouse CPU
-- there, and is a tenth of the rows here. Read like usage_15m.
CREATE TABLE IF NOT EXISTS usage_reseller_model_15m (
    reseller_id    String,
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
ORDER BY (reseller_id, bucket, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_reseller_model_15m_mv TO usage_reseller_model_15m AS
SELECT
    reseller_id,
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
GROUP BY reseller_id, bucket, model, language;

-- Backfill, once, as in 0013 (run migrations with the projector stopped):
-- from the aggregates of usage_15m_by_time. The groups' user sets outgrow
-- memory on a large database (8 GB for the query benchmark's 21 million
-- rows): past 1 GB the aggregation spills to disk.
INSERT INTO usage_reseller_model_15m (reseller_id, bucket, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT reseller_id, bucket, model, language,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_15m_by_time
WHERE (SELECT count() FROM usage_reseller_model_15m) = 0
GROUP BY reseller_id, bucket, model, language
SETTINGS max_bytes_before_external_group_by = 1000000000;
