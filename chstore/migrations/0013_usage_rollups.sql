-- Coarser usage aggregates for the questions most dashboard calls ask:
-- usage_reseller_15m (a reseller's whole usage per 15-minute UTC bucket:
-- overview, totals and series without a group-by or filter, in any time
-- zone) and usage_org_1d / usage_org_1mo (per organization per UTC day and
-- month: breakdowns and lists by organization, without model or language).
-- The same columns and meanings as usage_15m, with fewer keys; each has a
-- fraction of usage_15m's rows. Read with the -Merge combinators and
-- GROUP BY, like usage_15m.
CREATE TABLE IF NOT EXISTS usage_reseller_15m (
    reseller_id    String,
    bucket         DateTime,
    jobs_created   AggregateFunction(sum, UInt64),
    jobs_completed AggregateFunction(sum, UInt64),
    jobs_failed    AggregateFunction(sum, UInt64),
    media_ms       AggregateFunction(sum, UInt64),
    processing_ms  AggregateFunction(sum, UInt64),
    users          AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (reseller_id, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_reseller_15m_mv TO usage_reseller_15m AS
SELECT
    reseller_id,
    toStartOfFifteenMinutes(time) AS bucket,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, bucket;

CREATE TABLE IF NOT EXISTS usage_org_1d (
    reseller_id    String,
    org_id         String,
    day            DateTime,
    jobs_created   AggregateFunction(sum, UInt64),
    jobs_completed AggregateFunction(sum, UInt64),
    jobs_failed    AggregateFunction(sum, UInt64),
    media_ms       AggregateFunction(sum, UInt64),
    processing_ms  AggregateFunction(sum, UInt64),
    users          AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (reseller_id, org_id, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_org_1d_mv TO usage_org_1d AS
SELECT
    reseller_id, org_id,
    toStartOfDay(time, 'UTC') AS day,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, org_id, day;

CREATE TABLE IF NOT EXISTS usage_org_1mo (
    reseller_id    String,
    org_id         String,
    month          DateTime,
    jobs_created   AggregateFunction(sum, UInt64),
    jobs_completed AggregateFunction(sum, UInt64),
    jobs_failed    AggregateFunction(sum, UInt64),
    media_ms       AggregateFunction(sum, UInt64),
    processing_ms  AggregateFunction(sum, UInt64),
    users          AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYear(month)
ORDER BY (reseller_id, org_id, month);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_org_1mo_mv TO usage_org_1mo AS
SELECT
    reseller_id, org_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, org_id, month;

-- Backfill from the finer aggregates (not from events: a database loaded
-- straight into the read models, like the query benchmark's, has usage
-- without job events). Same rules as in 0012: run with the projector
-- stopped; a table that already has rows is skipped.
INSERT INTO usage_reseller_15m (reseller_id, bucket, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT reseller_id, bucket,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_15m_by_time
WHERE (SELECT count() FROM usage_reseller_15m) = 0
GROUP BY reseller_id, bucket;

INSERT INTO usage_org_1d (reseller_id, org_id, day, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT reseller_id, org_id, day,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_1d
WHERE (SELECT count() FROM usage_org_1d) = 0
GROUP BY reseller_id, org_id, day;

INSERT INTO usage_org_1mo (reseller_id, org_id, month, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT reseller_id, org_id, month,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_1mo
WHERE (SELECT count() FROM usage_org_1mo) = 0
GROUP BY reseller_id, org_id, month;
