-- Latest state of each transcription job. Every job event carries the whole
-- job, and version orders the lifecycle (created < started < completed or
-- failed, then event time), so the row with the highest version is the
-- job's state whatever order events arrived in. Read with FINAL (or argMax)
-- for exact answers before background merges.
CREATE TABLE IF NOT EXISTS jobs (
    reseller_id   String,
    org_id        String,
    job_id        String,
    user_id       String,
    model         String,
    language      String,
    status        String,
    created_at    DateTime,
    updated_at    DateTime,
    media_ms      UInt64,
    processing_ms UInt64,
    error_code    String,
    version       UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (reseller_id, created_at, org_id, job_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS jobs_mv TO jobs AS
SELECT
    reseller_id, org_id, job_id, user_id, model, language,
    multiIf(type = 'job.created', 'created', type = 'job.started', 'processing',
            type = 'job.completed', 'completed', 'failed') AS status,
    created_at,
    time AS updated_at,
    media_ms, processing_ms, error_code,
    multiIf(type = 'job.created', 1, type = 'job.started', 2, 3) * 10000000000000 + time_ms AS version
FROM events
WHERE type IN ('job.created', 'job.started', 'job.completed', 'job.failed');
