//! End-to-end encryption of paste content: the server only ever sees the
//! sealed blob, the key travels in the URL fragment (which browsers and HTTP
//! clients never send). The wire format is documented in docs/cli.md so
//! other clients can interoperate; changing it means a new version byte,
//! never a silent change to version 1.
//!
//! Version 1 blob: `0x01 || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)`,
//! with the version byte as associated data (so it cannot be swapped), and the
//! key as 43 characters of unpadded base64url.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The only format this client writes.
pub const VERSION_1: u8 = 1;
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// Version byte, nonce and tag: the size of an empty paste once sealed.
pub const OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the key in the URL fragment is not valid: expected 43 characters of base64url")]
    BadKey,
    #[error("the content is too short to be an encrypted paste ({0} bytes)")]
    TooShort(usize),
    #[error(
        "the content is not in a format this client knows (version byte {0}); was it encrypted by a newer client?"
    )]
    UnknownVersion(u8),
    #[error("decryption failed: the key does not match this paste, or the content was altered")]
    WrongKeyOrTampered,
}

/// A fresh random 256-bit key.
pub struct PasteKey(Key<Aes256Gcm>);

impl PasteKey {
    pub fn generate() -> Self {
        Self(Key::<Aes256Gcm>::generate())
    }

    /// Parses the URL-fragment form of a key.
    pub fn from_fragment(fragment: &str) -> Result<Self, OpenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(fragment.trim())
            .map_err(|_| OpenError::BadKey)?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| OpenError::BadKey)?;
        Ok(Self(key.into()))
    }

    /// The key as it goes after `#` in a paste URL.
    pub fn to_fragment(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_slice())
    }

    /// Seals `plaintext` with a fresh random nonce. AES-GCM refuses only
    /// inputs over 64 GiB.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, aes_gcm::Error> {
        let nonce = Nonce::generate();
        let sealed = Aes256Gcm::new(&self.0).encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &[VERSION_1],
            },
        )?;
        let mut blob = Vec::with_capacity(OVERHEAD + plaintext.len());
        blob.push(VERSION_1);
        blob.extend_from_slice(nonce.as_slice());
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Opens a blob written by [`PasteKey::seal`], checking its tag.
    pub fn open(&self, blob: &[u8]) -> Result<Vec<u8>, OpenError> {
        if blob.len() < OVERHEAD {
            return Err(OpenError::TooShort(blob.len()));
        }
        let (version, rest) = blob.split_at(1);
        if version[0] != VERSION_1 {
            return Err(OpenError::UnknownVersion(version[0]));
        }
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError::TooShort(0))?;
        Aes256Gcm::new(&self.0)
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: version,
                },
            )
            .map_err(|_| OpenError::WrongKeyOrTampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_content_opens_with_its_key_only() {
        let key = PasteKey::generate();
        let blob = key.seal(b"attack at dawn").expect("seals");
        assert_eq!(blob.len(), OVERHEAD + 14);
        assert_eq!(blob[0], VERSION_1);
        assert_eq!(key.open(&blob).as_deref(), Ok(&b"attack at dawn"[..]));
        let other = PasteKey::generate();
        assert_eq!(other.open(&blob), Err(OpenError::WrongKeyOrTampered));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let key = PasteKey::generate();
        let (a, b) = (
            key.seal(b"same").expect("seals"),
            key.seal(b"same").expect("seals"),
        );
        assert_ne!(a[1..1 + NONCE_BYTES], b[1..1 + NONCE_BYTES]);
        assert_ne!(a, b);
    }

    #[test]
    fn any_altered_byte_is_detected() {
        let key = PasteKey::generate();
        let blob = key.seal(b"0123456789").expect("seals");
        for i in 1..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                key.open(&bad),
                Err(OpenError::WrongKeyOrTampered),
                "byte {i}"
            );
        }
        let mut bad = blob.clone();
        bad[0] = 2;
        assert_eq!(key.open(&bad), Err(OpenError::UnknownVersion(2)));
        assert_eq!(
            key.open(&blob[..OVERHEAD - 1]),
            Err(OpenError::TooShort(OVERHEAD - 1))
        );
    }

    #[test]
    fn empty_content_round_trips() {
        let key = PasteKey::generate();
        let blob = key.seal(b"").expect("seals");
        assert_eq!(blob.len(), OVERHEAD);
        assert_eq!(key.open(&blob), Ok(Vec::new()));
    }

    #[test]
    fn the_fragment_is_43_url_safe_characters_and_parses_back() {
        let key = PasteKey::generate();
        let fragment = key.to_fragment();
        assert_eq!(fragment.len(), 43);
        assert!(
            fragment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let again = PasteKey::from_fragment(&fragment).expect("parses");
        assert_eq!(
            again.open(&key.seal(b"x").expect("seals")),
            Ok(b"x".to_vec())
        );
        for bad in ["", "abc", &fragment[..42], "!!!!", &format!("{fragment}AA")] {
            assert!(PasteKey::from_fragment(bad).is_err(), "{bad:?}");
        }
    }

    /// A fixed vector so other implementations can check themselves against
    /// docs/cli.md: key = 32 bytes 0x00..0x1f, nonce = 12 bytes 0xa0..0xab.
    #[test]
    fn known_answer_vector_from_the_docs() {
        let key_bytes: Vec<u8> = (0u8..32).collect();
        let nonce: Vec<u8> = (0xa0u8..0xac).collect();
        let mut blob = vec![VERSION_1];
        blob.extend_from_slice(&nonce);
        let key = Key::<Aes256Gcm>::try_from(key_bytes.as_slice()).expect("32 bytes");
        let nonce_arr: [u8; NONCE_BYTES] = nonce.as_slice().try_into().expect("12 bytes");
        let sealed = Aes256Gcm::new(&key)
            .encrypt(
                &nonce_arr.into(),
                Payload {
                    msg: b"hello",
                    aad: &[VERSION_1],
                },
            )
            .expect("seals");
        blob.extend_from_slice(&sealed);
        let fragment = URL_SAFE_NO_PAD.encode(&key_bytes);
        assert_eq!(fragment, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let opened = PasteKey::from_fragment(&fragment)
            .expect("key")
            .open(&blob)
            .expect("opens");
        assert_eq!(opened, b"hello");
        assert_eq!(hex(&blob), KNOWN_BLOB_HEX);
    }

    /// Computed with Python's `cryptography` (AESGCM), an independent implementation.
    const KNOWN_BLOB_HEX: &str =
        "01a0a1a2a3a4a5a6a7a8a9aaab8e7d10412a2fa0b190c2f381a8fb6b5a3b71cbbf9b";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
