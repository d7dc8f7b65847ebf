//! Certificates and keys for the PKI, in pure Rust so the component needs no
//! C code: P-384 keys and ECDSA-SHA384 signatures from `p384`, X.509 v3
//! encoding from `rcgen` (through [`P384Key`], its signer), PKCS#8 for keys
//! (encrypted with PBES2 for the CA's), PKCS#12 from `p12-keystore`.
//!
//! Everything random comes from the caller's [`Rng`]; times are Unix seconds.

use p384::ecdsa::signature::Signer;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm,
    SigningKey,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::domain::{Rng, hex};

/// Bytes of a certificate serial number (128 bits, shown as 32 hex digits).
pub const SERIAL_BYTES: usize = 16;
/// PBKDF2-HMAC-SHA256 iterations protecting the stored CA key (OWASP's figure
/// for PBKDF2-SHA256, as for paste passwords).
#[cfg(not(fuzzing))]
const CA_KEY_ITERATIONS: u32 = 600_000;
/// Cheap for the fuzzers only, as `password::ITERATIONS`.
#[cfg(fuzzing)]
const CA_KEY_ITERATIONS: u32 = 2;
/// What `GET /pki` reports as the key algorithm.
pub const KEY_ALGORITHM: &str = "ec:secp384r1";
/// Organization in every certificate's subject.
const ORGANIZATION: &str = "wasmpaste";
const DAY: i64 = 86_400;

/// A failure of the cryptography or encoding (a bug or a corrupt stored CA),
/// or a wrong CA password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The stored CA key does not decrypt with the configured password.
    WrongPassword,
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Failed(e.to_string())
}

/// A P-384 private key that signs for rcgen.
pub struct P384Key {
    signing: p384::ecdsa::SigningKey,
    /// SEC1 uncompressed point: the `subjectPublicKey` BIT STRING's content.
    public: Vec<u8>,
}

impl P384Key {
    /// A new key from the caller's randomness (48 bytes, redrawn in the
    /// negligible case that they are not a valid scalar).
    pub fn generate(rng: &dyn Rng) -> Self {
        let mut bytes = [0u8; 48];
        loop {
            rng.fill(&mut bytes);
            if let Ok(secret) = p384::SecretKey::from_slice(&bytes) {
                return Self::from_secret(&secret);
            }
        }
    }

    fn from_secret(secret: &p384::SecretKey) -> Self {
        Self {
            signing: p384::ecdsa::SigningKey::from(secret),
            public: secret.public_key().to_sec1_bytes().into_vec(),
        }
    }

    /// The key as unencrypted PKCS#8 DER.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, CryptoError> {
        let secret = p384::SecretKey::from(&self.signing);
        Ok(secret.to_pkcs8_der().map_err(failed)?.as_bytes().to_vec())
    }

    /// The key as unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub fn pkcs8_pem(&self) -> Result<String, CryptoError> {
        let secret = p384::SecretKey::from(&self.signing);
        Ok(secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(failed)?
            .to_string())
    }

    /// The key as `BEGIN ENCRYPTED PRIVATE KEY` PEM: PBES2 with
    /// PBKDF2-HMAC-SHA256 and AES-256-CBC, what
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256` writes.
    pub fn encrypted_pem(&self, password: &str, rng: &dyn Rng) -> Result<String, CryptoError> {
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rng.fill(&mut salt);
        rng.fill(&mut iv);
        let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
            CA_KEY_ITERATIONS,
            &salt,
            iv,
        )
        .map_err(failed)?;
        let der = self.pkcs8_der()?;
        let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).map_err(failed)?;
        let encrypted = info.encrypt_with_params(params, password).map_err(failed)?;
        encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(failed)
    }

    /// Decrypts a key written by [`Self::encrypted_pem`].
    pub fn from_encrypted_pem(pem: &str, password: &str) -> Result<Self, CryptoError> {
        p384::SecretKey::from_pkcs8_encrypted_pem(pem, password)
            .map(|secret| Self::from_secret(&secret))
            .map_err(|e| match e {
                // A wrong password shows as a padding or decoding failure.
                pkcs8::Error::EncryptedPrivateKey(_) | pkcs8::Error::Asn1(_) => {
                    CryptoError::WrongPassword
                }
                other => failed(other),
            })
    }

    /// RFC 5280 key identifier: the first 160 bits of SHA-256 over the
    /// SubjectPublicKeyInfo (RFC 7093 method 1, as rcgen does with a backend).
    fn key_id(&self) -> Vec<u8> {
        Sha256::digest(self.subject_public_key_info())[..20].to_vec()
    }
}

impl PublicKeyData for P384Key {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P384_SHA384
    }
}

impl SigningKey for P384Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // ECDSA with SHA-384, RFC 6979 deterministic nonces, DER-encoded as X.509 wants.
        let signature: p384::ecdsa::Signature = self.signing.sign(msg);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// A certificate as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub der: Vec<u8>,
    pub pem: String,
    /// 32 lowercase hex digits.
    pub serial: String,
    /// SHA-1 of the DER, 40 lowercase hex digits (`X-SSL-Client-SHA1`).
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
}

pub use wasmpaste_contract::identity::fingerprint_sha1;

fn subject(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn timestamp(unix: i64) -> Result<time::OffsetDateTime, CryptoError> {
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(failed)
}

/// Parameters shared by CA and client certificates.
fn base_params(
    common_name: &str,
    key: &P384Key,
    now: i64,
    days: i64,
    rng: &dyn Rng,
) -> Result<(CertificateParams, [u8; SERIAL_BYTES]), CryptoError> {
    let mut serial = [0u8; SERIAL_BYTES];
    rng.fill(&mut serial);
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(common_name);
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = timestamp(now)?;
    params.not_after = timestamp(now.saturating_add(days.saturating_mul(DAY)))?;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key.key_id());
    Ok((params, serial))
}

fn finish(der: Vec<u8>, pem: String, serial: &[u8], now: i64, days: i64) -> IssuedCert {
    IssuedCert {
        fingerprint: fingerprint_sha1(&der),
        der,
        pem,
        serial: hex(serial),
        not_before: now,
        not_after: now.saturating_add(days.saturating_mul(DAY)),
    }
}

fn ca_params(
    common_name: &str,
    key: &P384Key,
    now: i64,
    days: i64,
    rng: &dyn Rng,
) -> Result<(CertificateParams, [u8; SERIAL_BYTES]), CryptoError> {
    let (mut params, serial) = base_params(common_name, key, now, days, rng)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok((params, serial))
}

/// A new self-signed CA: (certificate, key).
pub fn generate_ca(
    common_name: &str,
    days: i64,
    now: i64,
    rng: &dyn Rng,
) -> Result<(IssuedCert, P384Key), CryptoError> {
    let key = P384Key::generate(rng);
    let (params, serial) = ca_params(common_name, &key, now, days, rng)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let issued = finish(cert.der().to_vec(), cert.pem(), &serial, now, days);
    Ok((issued, key))
}

/// A client certificate signed by the CA (`ca_common_name` and `ca_key` are
/// what [`generate_ca`] used): (certificate, its new key).
pub fn issue_client(
    ca_common_name: &str,
    ca_key: P384Key,
    common_name: &str,
    days: i64,
    now: i64,
    rng: &dyn Rng,
) -> Result<(IssuedCert, P384Key), CryptoError> {
    // The issuer is rebuilt from what the CA certificate was made of: the same
    // subject encoding and key identifier, so issuer name and AKI match it.
    let (ca, _) = ca_params(ca_common_name, &ca_key, now, 1, rng)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = P384Key::generate(rng);
    let (mut params, serial) = base_params(common_name, &key, now, days, rng)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).map_err(failed)?;
    let issued = finish(cert.der().to_vec(), cert.pem(), &serial, now, days);
    Ok((issued, key))
}

/// A PKCS#12 bundle with an empty password: the client certificate with its
/// key, and the CA certificate. AES-256-CBC with PBKDF2-SHA256 and a
/// SHA-256 MAC: what OpenSSL 3 reads without the legacy provider.
pub fn pkcs12(
    client: &IssuedCert,
    client_key: &P384Key,
    ca_der: &[u8],
    friendly_name: &str,
) -> Result<Vec<u8>, CryptoError> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = PrivateKey::from_der(&client_key.pkcs8_der()?).map_err(failed)?;
    let chain = PrivateKeyChain::new(
        Sha1::digest(&client.der).to_vec(),
        key,
        [
            Certificate::from_der(&client.der).map_err(failed)?,
            Certificate::from_der(ca_der).map_err(failed)?,
        ],
    );
    let mut store = KeyStore::new();
    store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer("")
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .write()
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OsRng;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn ca_and_client_certificates_chain() {
        let (ca, ca_key) = generate_ca("Test CA", 3650, NOW, &OsRng).unwrap();
        assert_eq!(ca.serial.len(), 32);
        assert_eq!(ca.fingerprint.len(), 40);
        assert_eq!(ca.not_after - ca.not_before, 3650 * DAY);
        assert!(ca.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let (client, key) = issue_client("Test CA", ca_key, "alice", 365, NOW, &OsRng).unwrap();
        assert_ne!(client.serial, ca.serial);
        assert_ne!(client.fingerprint, ca.fingerprint);
        assert_eq!(client.fingerprint, fingerprint_sha1(&client.der));
        let p12 = pkcs12(&client, &key, &ca.der, "alice").unwrap();
        let parsed = p12_keystore::KeyStore::from_pkcs12(
            &p12,
            "",
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .unwrap();
        let (_, chain) = parsed.private_key_chain().unwrap();
        assert_eq!(chain.certs().len(), 2);
        assert_eq!(chain.certs()[0].as_der(), client.der.as_slice());
        assert_eq!(chain.key().as_der(), key.pkcs8_der().unwrap().as_slice());
    }

    #[test]
    fn the_ca_key_needs_its_password() {
        let key = P384Key::generate(&OsRng);
        let pem = key.encrypted_pem("correct horse", &OsRng).unwrap();
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{pem}"
        );
        let back = P384Key::from_encrypted_pem(&pem, "correct horse").unwrap();
        assert_eq!(back.public, key.public);
        assert_eq!(
            P384Key::from_encrypted_pem(&pem, "wrong").err(),
            Some(CryptoError::WrongPassword)
        );
    }
}
