//! Micro-benchmarks of the component's logic (no SQL, no HTTP). The same code
//! runs natively (linked into `wasmpaste-bench`) and as a wasm32-wasip2
//! command inside wasmtime, so the two can be compared in one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wasmpaste_guest::domain::abuse::shannon_entropy;
use wasmpaste_guest::domain::x509::{self, P384Key};
use wasmpaste_guest::domain::{Rng, mime, password, pow};

/// Constant "random" bytes: benchmarks must not measure the platform's RNG.
struct FixedRng(u8);

impl Rng for FixedRng {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(self.0);
    }
}

/// One benchmark: a name, a default number of iterations, and the timed loop.
pub struct Bench {
    pub name: &'static str,
    /// What it measures, for the printed table.
    pub about: &'static str,
    pub iterations: u64,
    /// Runs `n` iterations and returns the time they took (setup excluded).
    pub run: fn(u64) -> Duration,
}

const KEY: &[u8] = b"benchmark signing key";
const POW_DIFFICULTY: u32 = 12;

/// A challenge and its solution, as a client would submit them.
fn pow_fixture() -> (String, String) {
    let c = pow::issue(KEY, &FixedRng(7), 1_000, 300, POW_DIFFICULTY);
    let solution = pow::solve(&c.nonce, POW_DIFFICULTY).to_string();
    (c.token, solution)
}

fn pow_verify(n: u64) -> Duration {
    let (token, solution) = pow_fixture();
    let start = Instant::now();
    for _ in 0..n {
        let ok = pow::verify(KEY, Some(&token), Some(&solution), 1_001, POW_DIFFICULTY);
        black_box(ok.is_ok());
    }
    start.elapsed()
}

fn pow_issue(n: u64) -> Duration {
    let rng = FixedRng(3);
    let start = Instant::now();
    for i in 0..n {
        black_box(pow::issue(
            KEY,
            &rng,
            i64::try_from(i).unwrap_or(0),
            300,
            20,
        ));
    }
    start.elapsed()
}

fn pbkdf2_600k(n: u64) -> Duration {
    let rng = FixedRng(1);
    let start = Instant::now();
    for _ in 0..n {
        black_box(password::hash(b"correct horse battery staple", &rng));
    }
    start.elapsed()
}

fn mime_detect_text_1k(n: u64) -> Duration {
    let text = "All work and no play makes Jack a dull boy.\n".repeat(24);
    let start = Instant::now();
    for _ in 0..n {
        black_box(mime::detect(black_box(text.as_bytes()), None));
    }
    start.elapsed()
}

fn entropy_64k(n: u64) -> Duration {
    let data: Vec<u8> = (0..65_536u32)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    let start = Instant::now();
    for _ in 0..n {
        black_box(shannon_entropy(black_box(&data)));
    }
    start.elapsed()
}

/// Counter bytes: every draw differs (key generation needs distinct scalars).
struct CountingRng(std::cell::Cell<u8>);

impl Rng for CountingRng {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            let v = self.0.get();
            *b = v;
            self.0.set(v.wrapping_mul(31).wrapping_add(17));
        }
    }
}

/// The cryptographic work of one `POST /register` once the CA exists:
/// decrypt the CA key (PBKDF2, 600k iterations), generate a P-384 key, sign
/// the certificate, write the PKCS#12 (SQL excluded).
fn register_bundle(n: u64) -> Duration {
    let rng = CountingRng(std::cell::Cell::new(1));
    let Ok((ca, ca_key)) = x509::generate_ca("Bench CA", 3650, 1_700_000_000, &rng) else {
        return Duration::ZERO;
    };
    let Ok(encrypted) = ca_key.encrypted_pem("password", &rng) else {
        return Duration::ZERO;
    };
    let start = Instant::now();
    for _ in 0..n {
        let Ok(key) = P384Key::from_encrypted_pem(&encrypted, "password") else {
            return Duration::ZERO;
        };
        let Ok((cert, client_key)) =
            x509::issue_client("Bench CA", key, "client", 365, 1_700_000_000, &rng)
        else {
            return Duration::ZERO;
        };
        let Ok(bundle) = x509::pkcs12(&cert, &client_key, &ca.der, "client") else {
            return Duration::ZERO;
        };
        black_box(bundle.len());
    }
    start.elapsed()
}

/// Key generation and one ECDSA P-384 signature: the cost of a certificate
/// without the PBKDF2 that unlocks the CA key.
fn p384_keygen_sign(n: u64) -> Duration {
    let rng = CountingRng(std::cell::Cell::new(2));
    let start = Instant::now();
    for _ in 0..n {
        let key = P384Key::generate(&rng);
        black_box(rcgen_sign(&key));
    }
    start.elapsed()
}

fn rcgen_sign(key: &P384Key) -> usize {
    use rcgen::SigningKey;
    key.sign(b"to be signed").map_or(0, |s| s.len())
}

pub const ALL: &[Bench] = &[
    Bench {
        name: "pow_verify",
        about: "proof-of-work check: HMAC-SHA256 + SHA-256 (no SQL)",
        iterations: 20_000,
        run: pow_verify,
    },
    Bench {
        name: "pow_issue",
        about: "issue a signed challenge",
        iterations: 20_000,
        run: pow_issue,
    },
    Bench {
        name: "pbkdf2_600k",
        about: "paste password hash, PBKDF2-HMAC-SHA256 600k iterations",
        iterations: 3,
        run: pbkdf2_600k,
    },
    Bench {
        name: "register_bundle",
        about: "/register crypto: CA key unlock (PBKDF2 600k) + P-384 key + cert + PKCS#12",
        iterations: 3,
        run: register_bundle,
    },
    Bench {
        name: "p384_keygen_sign",
        about: "P-384 key generation + one ECDSA-SHA384 signature",
        iterations: 50,
        run: p384_keygen_sign,
    },
    Bench {
        name: "mime_detect_text_1k",
        about: "MIME detection of 1 KiB of text",
        iterations: 20_000,
        run: mime_detect_text_1k,
    },
    Bench {
        name: "entropy_64k",
        about: "Shannon entropy of 64 KiB",
        iterations: 500,
        run: entropy_64k,
    },
];

/// Nanoseconds per iteration of `bench`, after one untimed warm-up iteration.
pub fn measure(bench: &Bench, iterations: u64) -> f64 {
    (bench.run)(1);
    let n = iterations.max(1);
    #[allow(clippy::cast_precision_loss)]
    let per = (bench.run)(n).as_nanos() as f64 / n as f64;
    per
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark must time the success path, not an early rejection.
    #[test]
    fn pow_fixture_verifies() {
        let (token, solution) = pow_fixture();
        assert!(pow::verify(KEY, Some(&token), Some(&solution), 1_001, POW_DIFFICULTY).is_ok());
    }

    /// A setup failure returns zero time; the benchmark must not hide one.
    #[test]
    fn register_bundle_does_the_work() {
        assert!(register_bundle(1) > Duration::ZERO);
    }

    #[test]
    fn every_benchmark_runs_and_names_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|b| b.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for bench in ALL
            .iter()
            .filter(|b| !matches!(b.name, "pbkdf2_600k" | "register_bundle"))
        {
            assert!(measure(bench, 1) > 0.0, "{}", bench.name);
        }
    }
}
