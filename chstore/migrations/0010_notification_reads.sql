-- Read state of the notification feed, per reseller (GET
-- /v1/notifications, POST /v1/notifications/read of the query API). A row
-- with a notification_id (an event id or an alert key) marks that item read.
-- The row with an empty notification_id is the reseller's "all read"
-- watermark: every item whose time is at or before read_before_ms (Unix
-- milliseconds) is read. Latest row per key wins; read with FINAL.
CREATE TABLE IF NOT EXISTS notification_reads (
    reseller_id     String,
    notification_id String,
    read_at         DateTime,
    read_before_ms  UInt64,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (reseller_id, notification_id);
