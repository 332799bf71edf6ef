-- The users of each organization per UTC day, one row per user, with the
-- first and last job event time of that user in the day: org_user_months
-- one level down. The distinct users of local days and weeks in any time
-- zone come from these rows: a local midnight lies inside at most one UTC
-- day of a zone's day (or is the UTC day's start), so the part of a UTC
-- day inside a local day is the whole day, a prefix (the user counts when
-- first_at is before the boundary) or a suffix (when last_at is at or
-- after it). uniqExact over these plain rows is cheaper than merging the
-- 96 user states per day of usage_reseller_15m (measured 60–100 against
-- 200–280 ms for a month of the largest benchmark reseller in
-- Europe/Amsterdam). Read with minMerge/maxMerge (or finalizeAggregation
-- per row: a user's row is before the boundary when any of its unmerged
-- rows is).
CREATE TABLE IF NOT EXISTS org_user_days (
    reseller_id String,
    day         DateTime,
    org_id      String,
    user_id     String,
    first_at    AggregateFunction(min, DateTime),
    last_at     AggregateFunction(max, DateTime)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (reseller_id, day, org_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS org_user_days_mv TO org_user_days AS
SELECT
    reseller_id,
    toStartOfDay(time, 'UTC') AS day,
    org_id, user_id,
    minState(time) AS first_at,
    maxState(time) AS last_at
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, day, org_id, user_id;

-- Backfill, once, as in 0012: run migrations with the projector stopped.
INSERT INTO org_user_days (reseller_id, day, org_id, user_id, first_at, last_at)
SELECT
    reseller_id,
    toStartOfDay(time, 'UTC') AS day,
    org_id, user_id,
    minState(time) AS first_at,
    maxState(time) AS last_at
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
  AND (SELECT count() FROM org_user_days) = 0
GROUP BY reseller_id, day, org_id, user_id;
