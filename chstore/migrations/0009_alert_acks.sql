-- Acknowledgements of alerts, per reseller (POST /v1/alerts/{key}/acknowledge
-- of the query API): who acknowledged an alert and when. acknowledged_by is
-- the name the dashboard sent, or the API key's name. The first
-- acknowledgement stands (the query service writes none over it); read with
-- FINAL or argMax(..., version).
CREATE TABLE IF NOT EXISTS alert_acks (
    reseller_id     String,
    alert_key       String,
    acknowledged_at DateTime,
    acknowledged_by String,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, alert_key);
