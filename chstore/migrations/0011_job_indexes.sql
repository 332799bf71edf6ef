-- Two read paths over jobs that the ORDER BY of jobs (reseller, time first)
-- cannot serve without scanning a reseller's whole history: the latest jobs
-- of given organizations, and the jobs still in progress.
--
-- jobs_by_org: the same rows as jobs, ordered by organization first. Read
-- with FINAL or argMax(..., version) like jobs.
CREATE TABLE IF NOT EXISTS jobs_by_org (
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
ORDER BY (reseller_id, org_id, created_at, job_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS jobs_by_org_mv TO jobs_by_org AS
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

-- jobs_open: +1 per job.created, -1 per job.completed or job.failed. A job
-- is in progress while its sum is positive; merges drop the rows whose sum
-- is 0, so the table keeps little more than the jobs in progress. Read with
-- sum(open) ... GROUP BY ... HAVING sum(open) > 0.
CREATE TABLE IF NOT EXISTS jobs_open (
    reseller_id String,
    created_at  DateTime,
    org_id      String,
    job_id      String,
    model       String,
    open        Int64
) ENGINE = SummingMergeTree(open)
ORDER BY (reseller_id, created_at, org_id, job_id, model);

CREATE MATERIALIZED VIEW IF NOT EXISTS jobs_open_mv TO jobs_open AS
SELECT reseller_id, created_at, org_id, job_id, model, if(type = 'job.created', toInt64(1), toInt64(-1)) AS open
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed');

-- Backfill: a database migrated before this file has events the views above
-- never saw; copy them in once (a no-op on a new database). Run migrations
-- with the projector stopped (tally dev does; see docs/operations.md): events
-- projected between a view's creation and its backfill would be counted
-- twice. A table that already has rows is skipped, so re-running this file
-- after a failure does not count anything twice.
INSERT INTO jobs_by_org (reseller_id, org_id, job_id, user_id, model, language, status, created_at, updated_at, media_ms, processing_ms, error_code, version)
SELECT
    reseller_id, org_id, job_id, user_id, model, language,
    multiIf(type = 'job.created', 'created', type = 'job.started', 'processing',
            type = 'job.completed', 'completed', 'failed') AS status,
    created_at,
    time AS updated_at,
    media_ms, processing_ms, error_code,
    multiIf(type = 'job.created', 1, type = 'job.started', 2, 3) * 10000000000000 + time_ms AS version
FROM events
WHERE type IN ('job.created', 'job.started', 'job.completed', 'job.failed')
  AND (SELECT count() FROM jobs_by_org) = 0;

INSERT INTO jobs_open (reseller_id, created_at, org_id, job_id, model, open)
SELECT reseller_id, created_at, org_id, job_id, model, if(type = 'job.created', toInt64(1), toInt64(-1)) AS open
FROM events
WHERE type IN ('job.created', 'job.completed', 'job.failed')
  AND (SELECT count() FROM jobs_open) = 0;
