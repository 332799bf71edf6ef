-- Usage aggregates per UTC day (usage_1d) and per UTC month (usage_1mo):
-- the same columns as usage_15m, many buckets to a row. Long ranges read
-- whole months and days here and only the 15-minute buckets of the days
-- that a time zone's period boundary splits (or the range cuts) from
-- usage_15m. Read with the -Merge combinators and GROUP BY.
CREATE TABLE IF NOT EXISTS usage_1d (
    reseller_id    String,
    org_id         String,
    day            DateTime,
    model          String,
    language       String,
    jobs_created   AggregateFunction(sum, UInt64),
    jobs_completed AggregateFunction(sum, UInt64),
    jobs_failed    AggregateFunction(sum, UInt64),
    media_ms       AggregateFunction(sum, UInt64),
    processing_ms  AggregateFunction(sum, UInt64),
    users          AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (reseller_id, org_id, day, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_1d_mv TO usage_1d AS
SELECT
    reseller_id, org_id,
    toStartOfDay(time, 'UTC') AS day,
    model, language,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, org_id, day, model, language;

-- Usage aggregates per UTC month: the same columns again, for ranges of
-- whole months (a month is read here when all of it falls in one period
-- of the query's time zone and granularity).
CREATE TABLE IF NOT EXISTS usage_1mo (
    reseller_id    String,
    org_id         String,
    month          DateTime,
    model          String,
    language       String,
    jobs_created   AggregateFunction(sum, UInt64),
    jobs_completed AggregateFunction(sum, UInt64),
    jobs_failed    AggregateFunction(sum, UInt64),
    media_ms       AggregateFunction(sum, UInt64),
    processing_ms  AggregateFunction(sum, UInt64),
    users          AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYear(month)
ORDER BY (reseller_id, org_id, month, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_1mo_mv TO usage_1mo AS
SELECT
    reseller_id, org_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    model, language,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, org_id, month, model, language;

-- usage_15m again, ordered by time first: the buckets of a few days across
-- all of a reseller's organizations (the days a time zone's period boundary
-- splits) are a narrow range of this key, while in usage_15m they are
-- spread over every organization's rows. Read like usage_15m.
CREATE TABLE IF NOT EXISTS usage_15m_by_time (
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
ORDER BY (reseller_id, bucket, org_id, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_time_mv TO usage_15m_by_time AS
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

-- Backfill: a database migrated before this file has events the views above
-- never saw; copy them in once (a no-op on a new database). Run migrations
-- with the projector stopped (tally dev does; see docs/operations.md): events
-- projected between a view's creation and its backfill would be counted
-- twice. A table that already has rows is skipped, so re-running this file
-- after a failure does not count anything twice.
INSERT INTO usage_1d (reseller_id, org_id, day, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT
    reseller_id, org_id,
    toStartOfDay(time, 'UTC') AS day,
    model, language,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
  AND (SELECT count() FROM usage_1d) = 0
GROUP BY reseller_id, org_id, day, model, language;

INSERT INTO usage_1mo (reseller_id, org_id, month, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT
    reseller_id, org_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    model, language,
    sumState(toUInt64(type = 'job.created')) AS jobs_created,
    sumState(toUInt64(type = 'job.completed')) AS jobs_completed,
    sumState(toUInt64(type = 'job.failed')) AS jobs_failed,
    sumState(if(type = 'job.completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(type IN ('job.completed', 'job.failed'), processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
  AND (SELECT count() FROM usage_1mo) = 0
GROUP BY reseller_id, org_id, month, model, language;

INSERT INTO usage_15m_by_time (reseller_id, org_id, bucket, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
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
  AND (SELECT count() FROM usage_15m_by_time) = 0
GROUP BY reseller_id, org_id, bucket, model, language;
