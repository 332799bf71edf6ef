package alerts

// SQL the rules run. Values are always bound; every query runs on
// ClickHouse 18.16 and current ClickHouse (see sql_test.go). Latest-state
// tables are read with FINAL in a subquery and filtered outside it, so a
// filter on a non-key column never sees a superseded row.

// subscriptionUsageSQL: each organization's current subscription period
// (period_start <= now < period_end, not canceled or expired) and the media
// milliseconds used in [period_start, now) and in [max(period_start,
// recent), now). The usage rows stream through a join with the (small)
// subscriptions on the right, each row counted when its bucket is in the
// organization's period: no intermediate aggregate per bucket. Args: now,
// recent, now (x5).
const subscriptionUsageSQL = `SELECT reseller_id, org_id, plan, status, quota_minutes, price_minor, period_start, period_end,
    sumMergeIf(media_ms, bucket >= period_start AND bucket < ?) AS used_ms,
    sumMergeIf(media_ms, bucket >= greatest(period_start, ?) AND bucket < ?) AS recent_ms
FROM (
    SELECT reseller_id, org_id, bucket, media_ms
    FROM usage_15m
    WHERE bucket >= (SELECT min(period_start) FROM subscriptions FINAL WHERE period_end > ?) AND bucket < ?
) AS u
ALL RIGHT JOIN (
    SELECT reseller_id, org_id, plan, status, quota_minutes, price_minor, period_start, period_end
    FROM (SELECT reseller_id, org_id, plan, status, quota_minutes, price_minor, period_start, period_end FROM subscriptions FINAL)
    WHERE period_start <= ? AND period_end > ? AND status NOT IN ('canceled', 'expired')
) AS s USING (reseller_id, org_id)
GROUP BY reseller_id, org_id, plan, status, quota_minutes, price_minor, period_start, period_end
ORDER BY reseller_id, org_id`

// recentLastJobSQL: the 15-minute bucket of each organization's latest job
// event in (since, now]: reads only the recent partitions. Args: since, now.
const recentLastJobSQL = `SELECT reseller_id, org_id, max(bucket) AS last_bucket
FROM usage_15m
WHERE bucket > ? AND bucket <= ?
GROUP BY reseller_id, org_id
ORDER BY reseller_id, org_id`

// lastJobOfSQL: the same up to now for given organizations (a superset:
// every reseller with every organization given), found through the primary
// key. Args: resellers, organizations, now.
const lastJobOfSQL = `SELECT reseller_id, org_id, max(bucket) AS last_bucket
FROM usage_15m
WHERE reseller_id IN (SELECT arrayJoin(?)) AND org_id IN (SELECT arrayJoin(?)) AND bucket <= ?
GROUP BY reseller_id, org_id
ORDER BY reseller_id, org_id`

// invoicesSQL: failed and paid invoices since a time, oldest first.
// Args: since, now.
const invoicesSQL = `SELECT id, type, reseller_id, org_id, ref_id, time, amount_minor, currency, error_code
FROM events
WHERE type IN ('invoice.payment_failed', 'invoice.paid') AND time >= ? AND time <= ?
ORDER BY time, id`

// endingSubscriptionsSQL: subscriptions that will not renew by themselves
// (trialing, past_due, canceled) or have expired, whose period ends in
// [since, until). Args: since, until.
const endingSubscriptionsSQL = `SELECT reseller_id, org_id, plan, status, period_end
FROM (SELECT reseller_id, org_id, plan, status, period_end FROM subscriptions FINAL)
WHERE status IN ('trialing', 'past_due', 'canceled', 'expired') AND period_end >= ? AND period_end < ?
ORDER BY reseller_id, org_id`

// hourOfWeekSQL: finished jobs per organization in the hour ending at end
// (weeks_ago = 0) and in the same hour of the week 1..N weeks before.
// Args: end (unix seconds), from (end - N weeks - 1h), end, end (unix seconds).
const hourOfWeekSQL = `SELECT reseller_id, org_id,
    intDiv(toInt64(?) - 1 - toInt64(toUInt32(bucket)), 604800) AS weeks_ago,
    sumMerge(jobs_completed) AS completed, sumMerge(jobs_failed) AS failed
FROM usage_15m
WHERE bucket >= ? AND bucket < ? AND (toInt64(?) - 1 - toInt64(toUInt32(bucket))) % 604800 < 3600
GROUP BY reseller_id, org_id, weeks_ago
ORDER BY reseller_id, org_id, weeks_ago`

// firstSeenSQL: each organization's first job bucket in [from, end), to
// leave weeks before it out of spike baselines. Args: from, end.
const firstSeenSQL = `SELECT reseller_id, org_id, min(bucket) AS first_bucket
FROM usage_15m
WHERE bucket >= ? AND bucket < ?
GROUP BY reseller_id, org_id
ORDER BY reseller_id, org_id`

// latestBucketSQL: the latest 15-minute bucket with a job event in (since,
// now], across all organizations (how far the pipeline has caught up); the
// zero time if there is none. Args: since, now.
const latestBucketSQL = `SELECT max(bucket) FROM usage_15m WHERE bucket > ? AND bucket <= ?`
