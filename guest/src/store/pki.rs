//! SQL for the CA and the certificates it issued. One statement per function.

use super::{Row, Sql, SqlExt, StoreError};

/// The CA row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    pub common_name: String,
    pub certificate_pem: String,
    /// Encrypted PKCS#8 PEM.
    pub private_key_pem: String,
    pub fingerprint: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A client certificate's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    pub serial: String,
    pub fingerprint: String,
    pub common_name: String,
    pub issued_to: Option<String>,
    pub certificate_pem: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const CA_COLUMNS: &str =
    "common_name, certificate_pem, private_key_pem, fingerprint_sha1, created_at, expires_at";

const CERT_COLUMNS: &str = "serial, fingerprint_sha1, common_name, issued_to, certificate_pem, \
                            created_at, expires_at, revoked_at";

fn decode_ca(row: &Row) -> Result<StoredCa, StoreError> {
    Ok(StoredCa {
        common_name: row.text(0)?,
        certificate_pem: row.text(1)?,
        private_key_pem: row.text(2)?,
        fingerprint: row.text(3)?,
        created_at: row.i64(4)?,
        expires_at: row.i64(5)?,
    })
}

fn decode_cert(row: &Row) -> Result<StoredCert, StoreError> {
    Ok(StoredCert {
        serial: row.text(0)?,
        fingerprint: row.text(1)?,
        common_name: row.text(2)?,
        issued_to: row.opt_text(3)?,
        certificate_pem: row.text(4)?,
        created_at: row.i64(5)?,
        expires_at: row.i64(6)?,
        revoked_at: row.opt_i64(7)?,
    })
}

pub fn ca(db: &dyn Sql) -> Result<Option<StoredCa>, StoreError> {
    db.query_opt(
        &format!("SELECT {CA_COLUMNS} FROM pki_ca WHERE id = 1"),
        vec![],
    )?
    .as_ref()
    .map(decode_ca)
    .transpose()
}

/// Stores the CA unless one exists; `false` when another request was first.
pub fn insert_ca(db: &dyn Sql, ca: &StoredCa) -> Result<bool, StoreError> {
    let rows = db.execute(
        &format!(
            "INSERT INTO pki_ca (id, {CA_COLUMNS}) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (id) DO NOTHING RETURNING id"
        ),
        vec![
            ca.common_name.as_str().into(),
            ca.certificate_pem.as_str().into(),
            ca.private_key_pem.as_str().into(),
            ca.fingerprint.as_str().into(),
            ca.created_at.into(),
            ca.expires_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Records an issued certificate; `false` if its serial or fingerprint exists.
pub fn insert_cert(db: &dyn Sql, cert: &StoredCert) -> Result<bool, StoreError> {
    let result = db.execute(
        &format!(
            "INSERT INTO pki_certificates ({CERT_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"
        ),
        vec![
            cert.serial.as_str().into(),
            cert.fingerprint.as_str().into(),
            cert.common_name.as_str().into(),
            cert.issued_to.clone().into(),
            cert.certificate_pem.as_str().into(),
            cert.created_at.into(),
            cert.expires_at.into(),
        ],
    );
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_constraint_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// How a fingerprint stands with the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub revoked: bool,
    pub expired: bool,
    /// The first certificate the CA ever issued: its holder is the admin.
    pub first: bool,
}

/// The standing of the certificate with this fingerprint, if the CA issued it.
pub fn standing(db: &dyn Sql, fingerprint: &str, now: i64) -> Result<Option<Standing>, StoreError> {
    db.query_opt(
        "SELECT revoked_at IS NOT NULL, expires_at <= ?2, \
         serial = (SELECT serial FROM pki_certificates ORDER BY rowid LIMIT 1) \
         FROM pki_certificates WHERE fingerprint_sha1 = ?1",
        vec![fingerprint.into(), now.into()],
    )?
    .map(|row| {
        Ok(Standing {
            revoked: row.bool(0)?,
            expired: row.bool(1)?,
            first: row.bool(2)?,
        })
    })
    .transpose()
}

pub fn cert_by_serial(db: &dyn Sql, serial: &str) -> Result<Option<StoredCert>, StoreError> {
    db.query_opt(
        &format!("SELECT {CERT_COLUMNS} FROM pki_certificates WHERE serial = ?1"),
        vec![serial.into()],
    )?
    .as_ref()
    .map(decode_cert)
    .transpose()
}

/// Certificates requested by, or belonging to, `fingerprint`; newest first.
pub fn certs_of(db: &dyn Sql, fingerprint: &str) -> Result<Vec<StoredCert>, StoreError> {
    db.execute(
        &format!(
            "SELECT {CERT_COLUMNS} FROM pki_certificates \
             WHERE issued_to = ?1 OR fingerprint_sha1 = ?1 \
             ORDER BY created_at DESC, rowid DESC"
        ),
        vec![fingerprint.into()],
    )?
    .iter()
    .map(decode_cert)
    .collect()
}

/// Marks a certificate revoked; `false` when it already was.
pub fn revoke(db: &dyn Sql, serial: &str, now: i64) -> Result<bool, StoreError> {
    Ok(!db
        .execute(
            "UPDATE pki_certificates SET revoked_at = ?2 \
             WHERE serial = ?1 AND revoked_at IS NULL RETURNING serial",
            vec![serial.into(), now.into()],
        )?
        .is_empty())
}
