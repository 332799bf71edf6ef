-- API keys of the query service (dashboard API). Only the SHA-256 of a key
-- is stored; the key itself is shown once, by `tally keys create`. A key
-- belongs either to one reseller (role 'reseller', reseller_id set: it sees
-- only that reseller's organizations) or to the operator (role 'operator',
-- reseller_id empty: it picks a reseller per request). Revoking writes a new
-- row with revoked = 1 and a higher version. Read with FINAL.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id          String,
    key_hash        String,
    name            String,
    role            String,
    reseller_id     String,
    revenue_enabled UInt8,
    revoked         UInt8,
    created_at      DateTime,
    updated_at      DateTime,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY key_id;
