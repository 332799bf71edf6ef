-- Raw events: the audit trail and the analysts' source of truth. One row per
-- accepted event id (the projector guarantees it). The typed columns are
-- extracted from data by the projector; a column that does not apply to an
-- event's type holds its zero value. The materialized views in later
-- migrations derive every other read model from inserts into this table, so
-- one INSERT per batch is the projector's unit of work.
CREATE TABLE IF NOT EXISTS events (
    id            String,
    type          String,
    source        String,
    time          DateTime,
    time_ms       UInt64,
    reseller_id   String,
    org_id        String,
    subject       String,
    data          String,
    stream_seq    UInt64,
    projected_at  DateTime,
    name          String,
    plan          String,
    status        String,
    created_at    DateTime,
    user_id       String,
    role          String,
    job_id        String,
    model         String,
    language      String,
    media_ms      UInt64,
    processing_ms UInt64,
    error_code    String,
    quota_minutes UInt64,
    amount_minor  Int64,
    currency      String,
    period_start  DateTime,
    period_end    DateTime,
    ref_id        String,
    severity      String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (reseller_id, type, time, id);

-- Event ids, ordered by id, for the projector's duplicate checks.
CREATE TABLE IF NOT EXISTS event_ids (
    id   String,
    time DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY id;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS
SELECT id, time FROM events;
