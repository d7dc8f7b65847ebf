//! Paste passwords: PBKDF2-HMAC-SHA256, 600,000 iterations (OWASP 2023),
//! 32-byte random salt, constant-time comparison.
//!
//! Hashing costs ~70 ms natively and ~220 ms in wasm, so callers run it only
//! after every cheap check passed. Passwords are never logged or stored.

use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::Rng;

#[cfg(not(fuzzing))]
pub const ITERATIONS: u32 = 600_000;
/// The fuzzers (`fuzz/run` builds with `--cfg fuzzing`) take the same code
/// path with cheap hashing: at 600k iterations one password request is a
/// fifth of a second there, and fuzzing would find nothing else.
#[cfg(fuzzing)]
pub const ITERATIONS: u32 = 2;
pub const SALT_LEN: usize = 32;
const HASH_LEN: usize = 32;
/// Longest password accepted, in characters: bounds the hashing cost of a request.
pub const MAX_CHARS: usize = 1024;
const SCHEME: &str = "pbkdf2-sha256";

/// Whether a password exceeds [`MAX_CHARS`].
pub fn is_too_long(password: &[u8]) -> bool {
    // Characters when the header is UTF-8 (the usual case), bytes otherwise.
    let chars = std::str::from_utf8(password).map_or(password.len(), |s| s.chars().count());
    chars > MAX_CHARS
}

/// Hashes a password into the stored form `pbkdf2-sha256$<iterations>$<salt>$<hash>` (hex).
pub fn hash(password: &[u8], rng: &dyn Rng) -> String {
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt);
    hash_with(password, &salt, ITERATIONS)
}

fn hash_with(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    format!(
        "{SCHEME}${iterations}${}${}",
        super::hex(salt),
        super::hex(&out)
    )
}

/// Whether `password` matches a stored hash. A malformed stored value never matches.
pub fn verify(password: &[u8], stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iterations), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Some(salt), Some(expected)) = (
        iterations.parse::<u32>(),
        super::unhex(salt),
        super::unhex(expected),
    ) else {
        return false;
    };
    if iterations == 0 || expected.len() != HASH_LEN {
        return false;
    }
    let mut actual = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iterations, &mut actual);
    actual.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::SeqRng;

    #[test]
    fn known_answer_matches_rfc_7914_vector() {
        // PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1 (RFC 7914 section 11).
        let stored = hash_with(b"passwd", b"salt", 1);
        assert!(
            stored.ends_with("$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
        );
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let rng = SeqRng::default();
        let stored = hash_with(
            "pässwörd ✓".as_bytes(),
            b"0123456789abcdef0123456789abcdef",
            1000,
        );
        assert!(verify("pässwörd ✓".as_bytes(), &stored));
        assert!(!verify(b"passwort", &stored));
        assert!(!verify(b"", &stored));
        let real = hash(b"x", &rng);
        assert!(real.starts_with("pbkdf2-sha256$600000$"));
        assert_eq!(real.split('$').nth(2).map(str::len), Some(SALT_LEN * 2));
    }

    #[test]
    fn malformed_stored_values_never_match() {
        for stored in [
            "",
            "pbkdf2-sha256",
            "pbkdf2-sha256$0$00$00",
            "pbkdf2-sha256$1$zz$00",
            "md5$1$00$00",
            "pbkdf2-sha256$1$00$00$extra",
        ] {
            assert!(!verify(b"x", stored), "{stored}");
        }
    }

    #[test]
    fn length_limit_counts_characters() {
        assert!(!is_too_long("é".repeat(MAX_CHARS).as_bytes()));
        assert!(is_too_long("é".repeat(MAX_CHARS + 1).as_bytes()));
        assert!(is_too_long(&vec![0xff; MAX_CHARS + 1]));
    }
}
