-- Schema 1: bookkeeping and pastes.
-- Every statement is idempotent: concurrent first requests may run this together.

CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    -- Unix time of the last cleanup pass; claimed with one UPDATE so one request runs it.
    last_cleanup INTEGER NOT NULL
);

INSERT OR IGNORE INTO meta (id, schema_version, last_cleanup) VALUES (1, 0, 0);

CREATE TABLE IF NOT EXISTS pastes (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    -- SHA-1 fingerprint of the creator's client certificate; NULL for anonymous pastes.
    owner TEXT,
    display_name TEXT,
    -- "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>", NULL when unprotected.
    password_hash TEXT,
    burn_after_read INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_accessed INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Last, so reading metadata never walks the blob's overflow pages.
    content BLOB NOT NULL
);

CREATE INDEX IF NOT EXISTS pastes_expires_at ON pastes (expires_at);

CREATE INDEX IF NOT EXISTS pastes_owner_created ON pastes (owner, created_at);
