-- Every subscription change and every user added to or removed from an
-- organization, one row per event, ordered by organization: the history
-- behind the latest states in subscriptions and org_users. The overview
-- reads the active subscriptions, MRR and users as they were at two points
-- in time from here; the same rows in events are spread over every monthly
-- partition, where each read costs at least a granule of 8,192 rows per
-- part. Not partitioned: a few rows per organization per month.
CREATE TABLE IF NOT EXISTS tenant_changes (
    reseller_id  String,
    type         String,
    org_id       String,
    user_id      String,
    time         DateTime,
    time_ms      UInt64,
    id           String,
    plan         String,
    status       String,
    amount_minor Int64,
    currency     String,
    role         String
) ENGINE = MergeTree
ORDER BY (reseller_id, type, org_id, user_id, time_ms);

CREATE MATERIALIZED VIEW IF NOT EXISTS tenant_changes_mv TO tenant_changes AS
SELECT reseller_id, type, org_id, user_id, time, time_ms, id, plan, status, amount_minor, currency, role
FROM events
WHERE type IN ('subscription.changed', 'user.added', 'user.removed');

-- Backfill, once, as in 0012: run migrations with the projector stopped.
INSERT INTO tenant_changes (reseller_id, type, org_id, user_id, time, time_ms, id, plan, status, amount_minor, currency, role)
SELECT reseller_id, type, org_id, user_id, time, time_ms, id, plan, status, amount_minor, currency, role
FROM events
WHERE type IN ('subscription.changed', 'user.added', 'user.removed')
  AND (SELECT count() FROM tenant_changes) = 0;
