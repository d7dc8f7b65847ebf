-- Schema 3: the URL shortener under /s.

CREATE TABLE IF NOT EXISTS short_urls (
    -- 8 characters of base62.
    id TEXT PRIMARY KEY,
    -- The URL as parsed and re-serialized (ASCII only): exactly what Location carries.
    target_url TEXT NOT NULL,
    -- SHA-1 fingerprint of the creator's client certificate; NULL for anonymous ones.
    owner TEXT,
    created_at INTEGER NOT NULL,
    -- NULL until the first redirect.
    last_accessed INTEGER,
    access_count INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS short_urls_expires_at ON short_urls (expires_at);

CREATE INDEX IF NOT EXISTS short_urls_owner_created ON short_urls (owner, created_at);
