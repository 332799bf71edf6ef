-- The 15-minute slots in which each user of an organization ran jobs, one
-- row per user per UTC month, the slots as absolute numbers
-- (intDiv(unix time, 900)). The distinct users of local days and weeks in
-- any time zone come from these rows: every zone offset is a whole number
-- of 15-minute slots, so each slot lies in exactly one local period, and a
-- user counts in the periods their slots map to. A reseller's month is one
-- row per user instead of one per user and day in org_user_days (a ninth
-- of the rows for the largest benchmark reseller). No model or language:
-- with them a user would have a row per model and language, four times
-- as many; org_user_days serves those.
--
-- groupArray merges by concatenation, so a user's array holds a slot once
-- per insert that saw it (at most one entry per job event), and unmerged
-- rows of one user are read together: a user counts in a period when any
-- of their rows has a slot in it.
CREATE TABLE IF NOT EXISTS user_month_slots (
    reseller_id String,
    month       DateTime,
    org_id      String,
    user_id     String,
    slots       AggregateFunction(groupArray, UInt32)
) ENGINE = AggregatingMergeTree
PARTITION BY toYear(month)
ORDER BY (reseller_id, month, org_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_month_slots_mv TO user_month_slots AS
SELECT
    reseller_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    org_id, user_id,
    groupArrayState(toUInt32(intDiv(toUInt32(time), 900))) AS slots
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
GROUP BY reseller_id, month, org_id, user_id;

-- Backfill, once, as in 0012: run migrations with the projector stopped.
INSERT INTO user_month_slots (reseller_id, month, org_id, user_id, slots)
SELECT
    reseller_id,
    toStartOfDay(time, 'UTC') - (toDayOfMonth(time, 'UTC') - 1) * 86400 AS month,
    org_id, user_id,
    groupArrayState(toUInt32(intDiv(toUInt32(time), 900))) AS slots
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
  AND (SELECT count() FROM user_month_slots) = 0
GROUP BY reseller_id, month, org_id, user_id;
