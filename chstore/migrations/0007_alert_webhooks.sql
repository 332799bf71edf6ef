-- Webhooks of the alerts stage, per reseller. Every alert and notification
-- of the reseller (rules empty) or of the listed rules is POSTed to url,
-- signed with HMAC-SHA256 of secret. The secret must be stored as is: it is
-- the signing key the receiver shares. Changing or disabling a webhook writes
-- a new row with a higher version; read with FINAL.
CREATE TABLE IF NOT EXISTS alert_webhooks (
    webhook_id  String,
    reseller_id String,
    url         String,
    secret      String,
    rules       Array(String),
    enabled     UInt8,
    updated_at  DateTime,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, webhook_id);

-- One row per webhook delivery attempt: outcome delivered, failed (retried
-- with backoff) or dead (the last attempt failed; the alert went to the
-- dead-letter stream).
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id String,
    webhook_id  String,
    reseller_id String,
    alert_key   String,
    state       String,
    url         String,
    attempt     UInt32,
    outcome     String,
    status_code UInt16,
    error       String,
    duration_ms UInt32,
    at          DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (reseller_id, at, delivery_id);
