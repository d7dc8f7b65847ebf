//! PKI rules: the CA (created once, key encrypted under `pki_ca_password`),
//! issuing client certificates, revocation, and the trust a fingerprint earns.
//!
//! Trust: a fingerprint of a certificate this CA issued that is neither
//! revoked nor expired is *trusted*; the first certificate ever issued is the
//! admin's. A fingerprint of a revoked or expired one is refused (the client
//! is anonymous and the attempt is audited). Any other well-formed
//! fingerprint is *untrusted*.

use crate::domain::identity::Identity;
use crate::domain::x509::{self, CryptoError, IssuedCert, P384Key};
use crate::domain::{Rng, uuid_v4};
use crate::store::pki::{self as store, StoredCa, StoredCert};
use crate::store::{Sql, StoreError};

/// Longest common name (X.509's upper bound, RFC 5280 ub-common-name).
pub const MAX_COMMON_NAME: usize = 64;
/// The CA's common name when none is given (e.g. when `/register` creates it).
pub const DEFAULT_CA_NAME: &str = "wasmpaste CA";
const DAY: i64 = 86_400;

#[derive(Debug, Clone, PartialEq)]
pub enum PkiError {
    Disabled,
    NoCa,
    CaExists,
    PasswordNotConfigured,
    CommonNameRequired,
    CommonNameInvalid(&'static str),
    AuthenticationRequired,
    PermissionDenied,
    CertNotFound,
    AlreadyRevoked,
    /// Creating or signing failed; the detail is for the log only.
    Crypto(String),
    Store(StoreError),
}

impl From<StoreError> for PkiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<CryptoError> for PkiError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(match e {
            CryptoError::WrongPassword => {
                "the stored CA key does not decrypt with pki_ca_password".to_owned()
            }
            CryptoError::Failed(detail) => detail,
        })
    }
}

/// The PKI settings of one request.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ca_password: String,
    pub ca_days: i64,
    pub cert_days: i64,
}

impl Settings {
    fn password(&self) -> Result<&str, PkiError> {
        if self.ca_password.is_empty() {
            Err(PkiError::PasswordNotConfigured)
        } else {
            Ok(&self.ca_password)
        }
    }
}

/// A common name from a request: trimmed; at most 64 characters, no control
/// characters. Missing or empty: `None`.
pub fn common_name(raw: Option<&str>) -> Result<Option<String>, PkiError> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_COMMON_NAME {
        return Err(PkiError::CommonNameInvalid("at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(PkiError::CommonNameInvalid(
            "control characters are not allowed",
        ));
    }
    Ok(Some(name.to_owned()))
}

/// Creates the CA. `CaExists` if there is one (also when a concurrent
/// request created it first).
pub fn create_ca(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    settings: &Settings,
    common_name: &str,
) -> Result<StoredCa, PkiError> {
    let password = settings.password()?;
    if store::ca(db)?.is_some() {
        return Err(PkiError::CaExists);
    }
    let (cert, key) = x509::generate_ca(common_name, settings.ca_days, now, rng)?;
    let ca = StoredCa {
        common_name: common_name.to_owned(),
        certificate_pem: cert.pem,
        private_key_pem: key.encrypted_pem(password, rng)?,
        fingerprint: cert.fingerprint,
        created_at: cert.not_before,
        expires_at: cert.not_after,
    };
    if store::insert_ca(db, &ca)? {
        Ok(ca)
    } else {
        Err(PkiError::CaExists)
    }
}

/// The CA, created with the default name if there is none yet (`/register`).
pub fn ensure_ca(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    settings: &Settings,
) -> Result<StoredCa, PkiError> {
    settings.password()?;
    if let Some(ca) = store::ca(db)? {
        return Ok(ca);
    }
    match create_ca(db, rng, now, settings, DEFAULT_CA_NAME) {
        // Another request created it meanwhile: use that one.
        Err(PkiError::CaExists) => store::ca(db)?.ok_or(PkiError::NoCa),
        other => other,
    }
}

/// The CA certificate in DER, from its stored PEM.
fn ca_der(ca: &StoredCa) -> Result<Vec<u8>, PkiError> {
    pem_to_der(&ca.certificate_pem)
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes())
        .map_err(|e| PkiError::Crypto(format!("stored certificate PEM: {e}")))?;
    if label == "CERTIFICATE" {
        Ok(der)
    } else {
        Err(PkiError::Crypto(format!("stored PEM is a {label}")))
    }
}

/// A new client certificate and its key, recorded as issued to `requester`.
pub fn issue(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    settings: &Settings,
    ca: &StoredCa,
    common_name: &str,
    requester: Option<&str>,
) -> Result<(IssuedCert, P384Key), PkiError> {
    let password = settings.password()?;
    let remaining_days = (ca.expires_at - now) / DAY;
    if remaining_days < 1 {
        return Err(PkiError::Crypto("the CA certificate has expired".into()));
    }
    let ca_key = P384Key::from_encrypted_pem(&ca.private_key_pem, password)?;
    let days = settings.cert_days.min(remaining_days);
    let (cert, key) = x509::issue_client(&ca.common_name, ca_key, common_name, days, now, rng)?;
    let stored = StoredCert {
        serial: cert.serial.clone(),
        fingerprint: cert.fingerprint.clone(),
        common_name: common_name.to_owned(),
        issued_to: requester.map(str::to_owned),
        certificate_pem: cert.pem.clone(),
        created_at: cert.not_before,
        expires_at: cert.not_after,
        revoked_at: None,
    };
    if store::insert_cert(db, &stored)? {
        Ok((cert, key))
    } else {
        // 128 random bits collided: something is wrong with the random source.
        Err(PkiError::Crypto(
            "serial or fingerprint already recorded".into(),
        ))
    }
}

/// What `/register` hands out.
#[derive(Debug, Clone)]
pub struct Registration {
    /// PKCS#12 with an empty password.
    pub pkcs12: Vec<u8>,
    pub cert: IssuedCert,
    pub common_name: String,
}

/// A `/register` bundle; the common name defaults to a random UUID.
pub fn register(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    settings: &Settings,
    common_name: Option<String>,
    requester: Option<&str>,
) -> Result<Registration, PkiError> {
    let ca = ensure_ca(db, rng, now, settings)?;
    let name = common_name.unwrap_or_else(|| uuid_v4(rng));
    let (cert, key) = issue(db, rng, now, settings, &ca, &name, requester)?;
    let pkcs12 = x509::pkcs12(&cert, &key, &ca_der(&ca)?, &name)?;
    Ok(Registration {
        pkcs12,
        cert,
        common_name: name,
    })
}

/// `valid`, `revoked` or `expired`, as `GET /pki/certs` shows it.
pub fn status(cert: &StoredCert, now: i64) -> &'static str {
    if cert.revoked_at.is_some() {
        "revoked"
    } else if cert.expires_at <= now {
        "expired"
    } else {
        "valid"
    }
}

/// A serial as clients may write it (any case) in our form, if it is one.
fn normalize_serial(raw: &str) -> Option<String> {
    (raw.len() == x509::SERIAL_BYTES * 2 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| raw.to_ascii_lowercase())
}

/// Revokes a certificate the client requested or holds.
pub fn revoke(
    db: &dyn Sql,
    now: i64,
    who: &Identity,
    serial: &str,
) -> Result<StoredCert, PkiError> {
    let fingerprint = who
        .fingerprint
        .as_deref()
        .ok_or(PkiError::AuthenticationRequired)?;
    let serial = normalize_serial(serial).ok_or(PkiError::CertNotFound)?;
    let cert = store::cert_by_serial(db, &serial)?.ok_or(PkiError::CertNotFound)?;
    if cert.issued_to.as_deref() != Some(fingerprint) && cert.fingerprint != fingerprint {
        return Err(PkiError::PermissionDenied);
    }
    if store::revoke(db, &serial, now)? {
        Ok(cert)
    } else {
        Err(PkiError::AlreadyRevoked)
    }
}

/// What a presented fingerprint is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Identified(Identity),
    /// A certificate of ours that may no longer be used: the reason, for the audit log.
    Refused(&'static str),
}

pub fn resolve(db: &dyn Sql, now: i64, fingerprint: String) -> Result<Resolution, StoreError> {
    Ok(match store::standing(db, &fingerprint, now)? {
        None => Resolution::Identified(Identity::untrusted(fingerprint)),
        Some(s) if s.revoked => Resolution::Refused("certificate revoked"),
        Some(s) if s.expired => Resolution::Refused("certificate expired"),
        Some(s) => Resolution::Identified(Identity::trusted(fingerprint, s.first)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OsRng;
    use crate::domain::identity::Trust;
    use crate::store::migrations;
    use crate::store::native::NativeSqlite;

    const NOW: i64 = 1_700_000_000;
    const STRANGER: &str = "ffffffffffffffffffffffffffffffffffffffff";

    fn db() -> NativeSqlite {
        let db = NativeSqlite::memory();
        migrations::ensure_schema(&db).unwrap();
        db
    }

    fn settings() -> Settings {
        Settings {
            ca_password: "ca secret".into(),
            ca_days: 3650,
            cert_days: 365,
        }
    }

    fn identity(db: &NativeSqlite, fp: &str, now: i64) -> Resolution {
        resolve(db, now, fp.to_owned()).unwrap()
    }

    #[test]
    fn common_names_are_checked() {
        assert_eq!(common_name(None), Ok(None));
        assert_eq!(common_name(Some("  ")), Ok(None));
        assert_eq!(common_name(Some(" alice ")), Ok(Some("alice".into())));
        assert_eq!(
            common_name(Some(&"é".repeat(64))).map(|n| n.is_some()),
            Ok(true)
        );
        assert!(common_name(Some(&"a".repeat(65))).is_err());
        assert!(common_name(Some("a\nb")).is_err());
    }

    #[test]
    fn the_ca_is_created_once_and_needs_the_password() {
        let db = db();
        let no_password = Settings {
            ca_password: String::new(),
            ..settings()
        };
        assert_eq!(
            create_ca(&db, &OsRng, NOW, &no_password, "CA").err(),
            Some(PkiError::PasswordNotConfigured)
        );
        let ca = create_ca(&db, &OsRng, NOW, &settings(), "My CA").unwrap();
        assert_eq!(ca.expires_at - ca.created_at, 3650 * DAY);
        assert!(ca.private_key_pem.contains("ENCRYPTED PRIVATE KEY"));
        assert_eq!(
            create_ca(&db, &OsRng, NOW, &settings(), "Other").err(),
            Some(PkiError::CaExists)
        );
        assert_eq!(ensure_ca(&db, &OsRng, NOW, &settings()).unwrap(), ca);
    }

    #[test]
    fn trust_follows_issuance_revocation_and_expiry() {
        let db = db();
        let first = register(&db, &OsRng, NOW, &settings(), None, None)
            .unwrap()
            .cert;
        let second = register(
            &db,
            &OsRng,
            NOW,
            &settings(),
            Some("bob".into()),
            Some(&first.fingerprint),
        )
        .unwrap()
        .cert;
        assert_eq!(
            identity(&db, &first.fingerprint, NOW + 1),
            Resolution::Identified(Identity::trusted(first.fingerprint.clone(), true))
        );
        let Resolution::Identified(bob) = identity(&db, &second.fingerprint, NOW + 1) else {
            panic!("bob's certificate is valid");
        };
        assert_eq!((bob.trust, bob.admin), (Trust::Trusted, false));
        assert_eq!(
            identity(&db, STRANGER, NOW),
            Resolution::Identified(Identity::untrusted(STRANGER.into()))
        );
        assert_eq!(
            identity(&db, &second.fingerprint, second.not_after),
            Resolution::Refused("certificate expired")
        );

        // The requester (first) may revoke what it requested; strangers may not.
        let stranger = Identity::untrusted(STRANGER.into());
        assert_eq!(
            revoke(&db, NOW, &stranger, &second.serial).err(),
            Some(PkiError::PermissionDenied)
        );
        assert_eq!(
            revoke(&db, NOW, &Identity::anonymous(), &second.serial).err(),
            Some(PkiError::AuthenticationRequired)
        );
        let requester = Identity::trusted(first.fingerprint.clone(), true);
        let upper = second.serial.to_ascii_uppercase();
        assert_eq!(
            revoke(&db, NOW, &requester, &upper).unwrap().serial,
            second.serial
        );
        assert_eq!(
            revoke(&db, NOW, &requester, &second.serial).err(),
            Some(PkiError::AlreadyRevoked)
        );
        assert_eq!(
            identity(&db, &second.fingerprint, NOW + 1),
            Resolution::Refused("certificate revoked")
        );
        assert_eq!(
            revoke(&db, NOW, &requester, "00").err(),
            Some(PkiError::CertNotFound)
        );
        assert_eq!(
            revoke(&db, NOW, &requester, &"0".repeat(32)).err(),
            Some(PkiError::CertNotFound)
        );
        // A holder may revoke its own certificate.
        let holder = Identity::trusted(first.fingerprint.clone(), true);
        assert!(revoke(&db, NOW, &holder, &first.serial).is_ok());
        let cert = store::cert_by_serial(&db, &first.serial).unwrap().unwrap();
        assert_eq!(status(&cert, NOW), "revoked");
    }

    #[test]
    fn a_wrong_ca_password_cannot_issue() {
        let db = db();
        register(&db, &OsRng, NOW, &settings(), None, None).unwrap();
        let wrong = Settings {
            ca_password: "guess".into(),
            ..settings()
        };
        assert!(matches!(
            register(&db, &OsRng, NOW, &wrong, None, None),
            Err(PkiError::Crypto(m)) if m.contains("does not decrypt")
        ));
    }

    #[test]
    fn certificates_never_outlive_the_ca() {
        let db = db();
        let short = Settings {
            ca_days: 10,
            cert_days: 365,
            ..settings()
        };
        let cert = register(&db, &OsRng, NOW, &short, None, None).unwrap().cert;
        assert_eq!(cert.not_after - cert.not_before, 10 * DAY);
        assert!(matches!(
            register(&db, &OsRng, NOW + 10 * DAY, &short, None, None),
            Err(PkiError::Crypto(_))
        ));
    }
}
