-- Schema 2: abuse controls. All counters are single rows updated by one
-- INSERT ... ON CONFLICT DO UPDATE ... RETURNING each, so they stay exact under
-- concurrency and across hosts sharing the database.

-- The proof-of-work signing key when `pow_secret` is not configured: set once,
-- by whichever request needs it first (UPDATE ... COALESCE), then shared by all.
ALTER TABLE meta ADD COLUMN pow_secret TEXT;

-- Nonces of challenges already used; a row per solved challenge until it expires.
CREATE TABLE IF NOT EXISTS pow_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS pow_nonces_expires_at ON pow_nonces (expires_at);

-- Fixed-window request counters per client IP.
CREATE TABLE IF NOT EXISTS rate_limits (
    client_ip TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
);

-- Fixed-window counters per SHA-256 of paste content.
CREATE TABLE IF NOT EXISTS content_hashes (
    hash TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
);

-- The anti-flood state: one row.
CREATE TABLE IF NOT EXISTS antiflood (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    -- Bits currently added to the base difficulty.
    extra INTEGER NOT NULL,
    last_breach INTEGER NOT NULL
);

INSERT OR IGNORE INTO antiflood (id, window_start, count, extra, last_breach) VALUES (1, 0, 0, 0, 0);
