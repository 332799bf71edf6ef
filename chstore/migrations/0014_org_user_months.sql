-- The users of each organization per UTC month, one row per user, with the
-- first and last job event time of that user in the month. The distinct
-- users of a period of months in any time zone come from these rows: a
-- local month boundary lies within 14 hours of a UTC month start, so the
-- part of a UTC month inside a local month is the whole month, a prefix
-- (the user counts when first_at is before the boundary) or a suffix
-- (when last_at is at or after it). uniqExact over these plain rows is far
-- cheaper than merging the day states of usage_org_1d. Read with
-- minMerge/maxMerge (or finalizeAggregation per row: a user's row is
-- before the boundary when any of its unmerged rows is).
CREATE TABLE IF NOT EXISTS org_user_months (
    reseller_id String,
    month       DateTime,
    org_id      String,
    user_id     String,
    first_at    AggregateFunction(min, DateTime),
    last_at     AggregateFunction(max, DateTime)
) ENGINE = AggregatingMergeTree
PARTITION BY toYear(month)
ORDER BY (reseller_id, month, org_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS org_user_months_mv TO org_user_months AS
SELECT
    reseller_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    org_id, user_id,
    minState(time) AS first_at,
    maxState(time) AS last_at
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, month, org_id, user_id;

-- Backfill, once, as in 0012: run migrations with the projector stopped.
INSERT INTO org_user_months (reseller_id, month, org_id, user_id, first_at, last_at)
SELECT
    reseller_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    org_id, user_id,
    minState(time) AS first_at,
    maxState(time) AS last_at
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
  AND (SELECT count() FROM org_user_months) = 0
GROUP BY reseller_id, month, org_id, user_id;
