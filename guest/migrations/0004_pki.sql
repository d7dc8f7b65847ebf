-- Schema 4: the certificate authority and the certificates it issued.

-- The CA: one row, inserted once (ON CONFLICT DO NOTHING decides between
-- concurrent first registrations).
CREATE TABLE IF NOT EXISTS pki_ca (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    common_name TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    -- PKCS#8 EncryptedPrivateKeyInfo (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC)
    -- under `pki_ca_password`; never stored in plain text.
    private_key_pem TEXT NOT NULL,
    fingerprint_sha1 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Client certificates issued by the CA.
CREATE TABLE IF NOT EXISTS pki_certificates (
    -- 32 lowercase hex digits.
    serial TEXT PRIMARY KEY,
    fingerprint_sha1 TEXT NOT NULL UNIQUE,
    common_name TEXT NOT NULL,
    -- Fingerprint of the client that requested it; NULL for anonymous requests.
    issued_to TEXT,
    certificate_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX IF NOT EXISTS pki_certificates_issued_to ON pki_certificates (issued_to);
