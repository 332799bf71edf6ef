-- Per-reseller alert rule settings: a JSON object overriding the alerts
-- stage's defaults for one reseller (disabled_rules, quota_thresholds,
-- low_usage_share, no_jobs_days, spike_min_jobs, spike_min_ratio). Latest
-- row wins; read with FINAL.
CREATE TABLE IF NOT EXISTS alert_settings (
    reseller_id String,
    settings    String,
    updated_at  DateTime,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY reseller_id;
