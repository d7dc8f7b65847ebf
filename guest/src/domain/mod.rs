//! The rules of the service, free of HTTP and of bindings.
//!
//! Domain functions take the time, a random source and the store as
//! parameters, so they run natively in unit tests. They never read headers or
//! build responses (that is `api`), and never write SQL (that is `store`).

pub mod abuse;
pub mod expiry;
pub mod identity;
pub mod mime;
pub mod password;
pub mod paste;
pub mod pki;
pub mod pow;
pub mod short_url;
pub mod time;
pub mod x509;

/// A source of secure random bytes (wasi:random in the component).
pub trait Rng {
    fn fill(&self, buf: &mut [u8]);
}

/// The platform's secure random source: `wasi:random` inside the component,
/// the OS natively.
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        // wasi:random cannot fail; natively a failing OS RNG leaves nothing
        // safe to do (ids and salts must be unpredictable), so stop.
        getrandom::fill(buf).expect("the platform's secure random source failed");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Bytes from lowercase or uppercase hex; `None` if malformed.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let d = |c: u8| char::from(c).to_digit(16);
            u8::try_from(d(pair[0])? * 16 + d(pair[1])?).ok()
        })
        .collect()
}

/// A random (version 4) UUID in its usual text form.
pub fn uuid_v4(rng: &dyn Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    wasmpaste_contract::http::uuid_v4(b)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::cell::Cell;

    /// Deterministic bytes for tests: a counter, so every draw differs.
    #[derive(Default)]
    pub struct SeqRng(pub Cell<u8>);

    impl Rng for SeqRng {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                let v = self.0.get();
                *b = v;
                self.0.set(v.wrapping_add(1));
            }
        }
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("00ABFF"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn uuid_has_version_and_variant_bits() {
        let u = uuid_v4(&OsRng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid_v4(&OsRng));
    }
}
