-- Latest state of each organization (by event time).
CREATE TABLE IF NOT EXISTS organizations (
    reseller_id String,
    org_id      String,
    name        String,
    plan        String,
    status      String,
    created_at  DateTime,
    updated_at  DateTime,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, org_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS organizations_mv TO organizations AS
SELECT reseller_id, org_id, name, plan, status, created_at, time AS updated_at, time_ms AS version
FROM events
WHERE type IN ('organization.created', 'organization.updated');

-- Latest subscription of each organization (by event time).
CREATE TABLE IF NOT EXISTS subscriptions (
    reseller_id   String,
    org_id        String,
    plan          String,
    status        String,
    quota_minutes UInt64,
    price_minor   Int64,
    currency      String,
    period_start  DateTime,
    period_end    DateTime,
    updated_at    DateTime,
    version       UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, org_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS subscriptions_mv TO subscriptions AS
SELECT reseller_id, org_id, plan, status, quota_minutes, amount_minor AS price_minor, currency,
       period_start, period_end, time AS updated_at, time_ms AS version
FROM events
WHERE type = 'subscription.changed';

-- Users per organization: the latest user.added / user.removed per user
-- (by event time); active = 1 while the user belongs to the organization.
CREATE TABLE IF NOT EXISTS org_users (
    reseller_id String,
    org_id      String,
    user_id     String,
    role        String,
    active      UInt8,
    updated_at  DateTime,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, org_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS org_users_mv TO org_users AS
SELECT reseller_id, org_id, user_id, role, toUInt8(type = 'user.added') AS active,
       time AS updated_at, time_ms AS version
FROM events
WHERE type IN ('user.added', 'user.removed');

-- Shared custom models (by event time).
CREATE TABLE IF NOT EXISTS custom_models (
    reseller_id String,
    org_id      String,
    model_id    String,
    name        String,
    base_model  String,
    language    String,
    shared      UInt8,
    updated_at  DateTime,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, model_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS custom_models_mv TO custom_models AS
SELECT reseller_id, org_id, ref_id AS model_id, name, model AS base_model, language,
       toUInt8(status = 'shared') AS shared, time AS updated_at, time_ms AS version
FROM events
WHERE type IN ('custom_model.created', 'custom_model.updated');
