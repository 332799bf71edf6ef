-- The rows of usage_15m_by_time within 14 hours of a UTC month start: the
-- last 14 hours of every UTC month and the first 14 of the next. A local
-- month in any time zone starts within 14 hours of a UTC month start
-- (offsets run from UTC-12 to UTC+14), so these are the only buckets the
-- query service reads to move usage between a UTC month row and the local
-- month it belongs to (13 months by month in Europe/Amsterdam). In
-- usage_15m_by_time, a month's edge sits in its own monthly partition and
-- costs one or two granules of 8,192 rows there, however small the
-- reseller; here a year is one partition holding 4% of the rows, and a
-- reseller's edges for a year are a few granules (measured on the query
-- benchmark's data, a 13-month series by organization in
-- Europe/Amsterdam: 50–54 against 32–33 ms for the smallest reseller, 92–97
-- against 86–89 ms for the largest). Read like usage_15m.
CREATE TABLE IF NOT EXISTS usage_month_edges (
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
PARTITION BY toYear(bucket)
ORDER BY (reseller_id, bucket, org_id, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_month_edges_mv TO usage_month_edges AS
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
  AND ((toDayOfMonth(time, 'UTC') = 1 AND toHour(time, 'UTC') < 14)
    OR (toDayOfMonth(time, 'UTC') != 1 AND toDayOfMonth(time + 14 * 3600, 'UTC') = 1))
GROUP BY reseller_id, org_id, bucket, model, language;

-- Backfill, once, as in 0012 (run migrations with the projector stopped):
-- the same buckets of usage_15m_by_time.
INSERT INTO usage_month_edges (reseller_id, org_id, bucket, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users)
SELECT reseller_id, org_id, bucket, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users
FROM usage_15m_by_time
WHERE ((toDayOfMonth(bucket, 'UTC') = 1 AND toHour(bucket, 'UTC') < 14)
    OR (toDayOfMonth(bucket, 'UTC') != 1 AND toDayOfMonth(bucket + 14 * 3600, 'UTC') = 1))
  AND (SELECT count() FROM usage_month_edges) = 0;
