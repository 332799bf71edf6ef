-- Alerts raised by the alerts stage. One alert per alert_key, the stable
-- identity rule|reseller|org|period|threshold: the period (a subscription
-- period, an hour, an invoice, ...) is part of the key, so an alert key fires
-- at most once and resolves at most once. Every change writes a new row with
-- a higher version; read with FINAL (or argMax(..., version) GROUP BY
-- alert_key). details is a JSON object; resolved_at is 1970-01-01 00:00:00
-- while firing.
CREATE TABLE IF NOT EXISTS alerts (
    alert_key      String,
    rule           String,
    reseller_id    String,
    org_id         String,
    period         String,
    threshold      String,
    state          String,
    severity       String,
    title          String,
    details        String,
    first_fired_at DateTime,
    last_seen_at   DateTime,
    resolved_at    DateTime,
    version        UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, rule, alert_key);
