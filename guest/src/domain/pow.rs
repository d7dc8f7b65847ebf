//! Proof-of-work challenges: issue, verify, and (for tests and clients) solve.
//!
//! A challenge is `nonce:expires:difficulty:signature`, the signature being
//! HMAC-SHA256 over `nonce:expires:difficulty` under the server's key, so the
//! server needs no state to check it. A solution is a number N such that
//! SHA-256(`nonce` ":" N) starts with at least `difficulty` zero bits. Single
//! use is enforced by the caller (one INSERT of the nonce); this module is pure.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::domain::{Rng, hex, unhex};

/// Random bytes in a nonce (32 hex digits).
const NONCE_BYTES: usize = 16;
/// Longest solution accepted: u64 in decimal.
const MAX_SOLUTION_DIGITS: usize = 20;

/// A challenge as `GET /challenge` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: String,
    pub expires: i64,
    pub difficulty: u32,
    pub token: String,
}

/// Why a submission was refused. The messages are the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowError {
    /// No token or no solution was sent.
    Required,
    /// "Proof-of-work failed: <reason>".
    Failed(&'static str),
}

/// A solution that checked out; its nonce must still be consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub nonce: String,
    pub expires: i64,
    pub difficulty: u32,
}

fn sign(key: &[u8], message: &str) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac
}

/// Issues a challenge valid for `ttl` seconds.
pub fn issue(key: &[u8], rng: &dyn Rng, now: i64, ttl: i64, difficulty: u32) -> Challenge {
    let mut bytes = [0u8; NONCE_BYTES];
    rng.fill(&mut bytes);
    let nonce = hex(&bytes);
    let expires = now + ttl;
    let message = format!("{nonce}:{expires}:{difficulty}");
    let signature = hex(&sign(key, &message).finalize().into_bytes());
    Challenge {
        token: format!("{message}:{signature}"),
        nonce,
        expires,
        difficulty,
    }
}

/// Checks a token and its solution: format, signature (constant time),
/// expiry, the difficulty it was issued with against `min_difficulty`, and
/// the work itself. Cheap: one HMAC and one SHA-256.
pub fn verify(
    key: &[u8],
    token: Option<&str>,
    solution: Option<&str>,
    now: i64,
    min_difficulty: u32,
) -> Result<Verified, PowError> {
    let (Some(token), Some(solution)) = (
        token.map(str::trim).filter(|t| !t.is_empty()),
        solution.map(str::trim).filter(|s| !s.is_empty()),
    ) else {
        return Err(PowError::Required);
    };
    let mut parts = token.split(':');
    let (Some(nonce), Some(expires), Some(difficulty), Some(signature), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PowError::Failed("Invalid challenge format"));
    };
    let well_formed = nonce.len() == NONCE_BYTES * 2
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
        && expires.bytes().all(|b| b.is_ascii_digit())
        && difficulty.bytes().all(|b| b.is_ascii_digit());
    let (true, Ok(expires_at), Ok(bits), Some(signature)) = (
        well_formed,
        expires.parse::<i64>(),
        difficulty.parse::<u32>(),
        unhex(signature),
    ) else {
        return Err(PowError::Failed("Invalid challenge format"));
    };
    let message = format!("{nonce}:{expires}:{difficulty}");
    if sign(key, &message).verify_slice(&signature).is_err() {
        return Err(PowError::Failed("Invalid challenge signature"));
    }
    if expires_at <= now {
        return Err(PowError::Failed("Challenge expired"));
    }
    if bits < min_difficulty {
        return Err(PowError::Failed("Challenge difficulty too low"));
    }
    if solution.len() > MAX_SOLUTION_DIGITS || !solution.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PowError::Failed("Invalid solution"));
    }
    if leading_zero_bits(&work_hash(nonce, solution)) < bits {
        return Err(PowError::Failed("Insufficient work"));
    }
    Ok(Verified {
        nonce: nonce.to_owned(),
        expires: expires_at,
        difficulty: bits,
    })
}

/// SHA-256(`nonce` ":" `solution`).
fn work_hash(nonce: &str, solution: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(nonce.as_bytes());
    h.update(b":");
    h.update(solution.as_bytes());
    h.finalize().into()
}

/// Leading zero bits of a hash, most significant bit of the first byte first.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// The smallest N that solves a challenge: what a client does (tests use it).
pub fn solve(nonce: &str, difficulty: u32) -> u64 {
    (0u64..)
        .find(|n| leading_zero_bits(&work_hash(nonce, &n.to_string())) >= difficulty)
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::SeqRng;

    const KEY: &[u8] = b"test key";

    fn challenge(difficulty: u32) -> Challenge {
        issue(KEY, &SeqRng::default(), 1000, 300, difficulty)
    }

    #[test]
    fn issued_tokens_have_the_reference_shape() {
        let c = challenge(8);
        assert_eq!(c.nonce.len(), 32);
        assert_eq!(c.expires, 1300);
        let parts: Vec<&str> = c.token.split(':').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], c.nonce);
        assert_eq!(parts[1], "1300");
        assert_eq!(parts[2], "8");
        assert_eq!(parts[3].len(), 64);
    }

    #[test]
    fn a_real_solution_verifies() {
        let c = challenge(12);
        let n = solve(&c.nonce, 12).to_string();
        let v = verify(KEY, Some(&c.token), Some(&n), 1001, 12).unwrap();
        assert_eq!(v.nonce, c.nonce);
        assert_eq!(v.expires, 1300);
    }

    #[test]
    fn missing_parts_mean_required() {
        let c = challenge(4);
        assert_eq!(
            verify(KEY, None, Some("1"), 1001, 4),
            Err(PowError::Required)
        );
        assert_eq!(
            verify(KEY, Some(&c.token), None, 1001, 4),
            Err(PowError::Required)
        );
        assert_eq!(
            verify(KEY, Some(" "), Some(""), 1001, 4),
            Err(PowError::Required)
        );
    }

    #[test]
    fn forged_and_broken_tokens_fail() {
        let c = challenge(16);
        let n = solve(&c.nonce, 16).to_string();
        let sig = c.token.rsplit(':').next().unwrap();
        // Lower difficulty, later expiry, other nonce: the signature no longer matches.
        for forged in [
            format!("{}:{}:{}:{sig}", c.nonce, c.expires, 1),
            format!("{}:{}:{}:{sig}", c.nonce, c.expires + 1000, 16),
            format!("{}:{}:{}:{sig}", "0".repeat(32), c.expires, 16),
        ] {
            assert_eq!(
                verify(KEY, Some(&forged), Some(&n), 1001, 0),
                Err(PowError::Failed("Invalid challenge signature")),
                "{forged}"
            );
        }
        assert_eq!(
            verify(b"other key", Some(&c.token), Some(&n), 1001, 16),
            Err(PowError::Failed("Invalid challenge signature"))
        );
        for garbage in [
            "x",
            "a:b:c",
            "a:b:c:d:e",
            &format!("{}:-1:16:{sig}", c.nonce),
            "::::",
        ] {
            assert_eq!(
                verify(KEY, Some(garbage), Some("1"), 1001, 0),
                Err(PowError::Failed("Invalid challenge format")),
                "{garbage}"
            );
        }
    }

    #[test]
    fn expiry_difficulty_and_work_are_checked() {
        let c = challenge(10);
        let n = solve(&c.nonce, 10).to_string();
        assert_eq!(
            verify(KEY, Some(&c.token), Some(&n), 1300, 10),
            Err(PowError::Failed("Challenge expired"))
        );
        assert_eq!(
            verify(KEY, Some(&c.token), Some(&n), 1001, 11),
            Err(PowError::Failed("Challenge difficulty too low"))
        );
        for bad in ["-1", "1.5", "abc", "123456789012345678901"] {
            assert_eq!(
                verify(KEY, Some(&c.token), Some(bad), 1001, 10),
                Err(PowError::Failed("Invalid solution")),
                "{bad}"
            );
        }
        // Find a number that does not solve it.
        let wrong = (0u64..)
            .find(|m| leading_zero_bits(&work_hash(&c.nonce, &m.to_string())) < 10)
            .unwrap()
            .to_string();
        assert_eq!(
            verify(KEY, Some(&c.token), Some(&wrong), 1001, 10),
            Err(PowError::Failed("Insufficient work"))
        );
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0x00, 0x00, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0x00; 32]), 256);
    }
}
