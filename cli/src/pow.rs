//! Solving the server's proof-of-work challenges on every core, and the
//! retry policy around a request that needs one. Knows the algorithm of
//! docs/abuse-controls.md and nothing about HTTP.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Attempts at a request whose challenge went stale or was refused.
pub const MAX_ATTEMPTS: usize = 5;
/// Hashes a worker does between looks at the shared stop flag and counter.
const BATCH: u64 = 4096;

/// What `GET /challenge` (or `/register/challenge`) handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: String,
    pub difficulty: u32,
    pub token: String,
}

/// The headers that prove the work: `X-PoW-Token`, `X-PoW-Solution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub token: String,
    pub solution: u64,
}

/// Leading zero bits of `SHA-256(nonce ":" n)`, most significant bit first.
pub fn work_bits(prefix: &Sha256, n: u64) -> u32 {
    let mut hasher = prefix.clone();
    hasher.update(itoa(n, &mut [0; 20]));
    let hash = hasher.finalize();
    let mut bits = 0;
    for byte in hash.iter() {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// `n` in decimal without allocating: the hot loop runs millions of times.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        // n % 10 < 10: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        buf[i] = b'0' + digit;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Finds a solution with `threads` workers (worker `w` tries `w`, `w + threads`, ...),
/// showing progress on stderr when it is a terminal.
pub fn solve(challenge: &Challenge, threads: usize) -> Proof {
    let threads = threads.max(1);
    let mut prefix = Sha256::new();
    prefix.update(challenge.nonce.as_bytes());
    prefix.update(b":");
    let found = AtomicBool::new(false);
    let answer = AtomicU64::new(u64::MAX);
    let hashes = AtomicU64::new(0);
    let progress = std::io::stderr().is_terminal() && challenge.difficulty >= 16;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..threads {
            let (prefix, found, answer, hashes) = (&prefix, &found, &answer, &hashes);
            scope.spawn(move || {
                let step = threads as u64;
                let mut n = worker as u64;
                while !found.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        if work_bits(prefix, n) >= challenge.difficulty {
                            answer.fetch_min(n, Ordering::Relaxed);
                            found.store(true, Ordering::Relaxed);
                            break;
                        }
                        n = n.wrapping_add(step);
                    }
                    hashes.fetch_add(BATCH, Ordering::Relaxed);
                }
            });
        }
        if progress {
            let expected = 2f64.powi(i32::try_from(challenge.difficulty).unwrap_or(i32::MAX));
            while !found.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                #[allow(clippy::cast_precision_loss)] // a progress estimate
                let done = hashes.load(Ordering::Relaxed) as f64;
                let rate = done / started.elapsed().as_secs_f64().max(1e-3);
                eprint!(
                    "\rproof-of-work: {} bits, {:.1} M hashes ({:.0}% of expected), {:.1} MH/s on {threads} threads ",
                    challenge.difficulty,
                    done / 1e6,
                    (done / expected * 100.0).min(999.0),
                    rate / 1e6,
                );
                let _ = std::io::stderr().flush();
            }
            eprintln!(
                "\rproof-of-work: solved in {:.1} s{:60}",
                started.elapsed().as_secs_f64(),
                ""
            );
        }
    });
    Proof {
        token: challenge.token.clone(),
        solution: answer.load(Ordering::Relaxed),
    }
}

/// How a request that carried a proof went.
pub enum Outcome<T, E> {
    Done(T),
    /// The server refused the proof (stale challenge, raised difficulty, ...): get a new one.
    Rejected(E),
}

/// Runs `send` with a fresh challenge and proof until it is not rejected,
/// at most [`MAX_ATTEMPTS`] times; the last rejection is the error.
pub fn with_retries<T, E>(
    mut fetch: impl FnMut() -> Result<Option<Challenge>, E>,
    mut solve: impl FnMut(&Challenge) -> Proof,
    mut send: impl FnMut(Option<&Proof>) -> Result<Outcome<T, E>, E>,
) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        let proof = fetch()?.map(|c| solve(&c));
        match send(proof.as_ref())? {
            Outcome::Done(t) => return Ok(t),
            Outcome::Rejected(e) if attempt >= MAX_ATTEMPTS => return Err(e),
            Outcome::Rejected(_) => attempt += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(difficulty: u32) -> Challenge {
        Challenge {
            nonce: "a1b2c3d4e5f6a7b8a1b2c3d4e5f6a7b8".into(),
            difficulty,
            token: "t".into(),
        }
    }

    /// Checks a solution the way the reference's Python does: the hash as a
    /// big integer, shifted right by 256 - difficulty, is zero.
    fn verified(c: &Challenge, n: u64) -> bool {
        let hash = Sha256::digest(format!("{}:{n}", c.nonce).as_bytes());
        let top = u128::from_be_bytes(hash[..16].try_into().expect("16 bytes"));
        c.difficulty == 0 || top >> (128 - c.difficulty) == 0
    }

    #[test]
    fn solutions_verify_independently_on_one_and_many_threads() {
        for threads in [1, 2, 7] {
            for difficulty in [0, 1, 8, 14] {
                let c = challenge(difficulty);
                let proof = solve(&c, threads);
                assert!(
                    verified(&c, proof.solution),
                    "{threads} threads, {difficulty} bits"
                );
                assert_eq!(proof.token, "t");
            }
        }
    }

    #[test]
    fn decimal_digits_match_to_string() {
        for n in [0, 7, 10, 99, 12345, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn a_rejected_proof_is_retried_with_a_fresh_challenge() {
        let (mut fetched, mut sent) = (0, 0);
        let result: Result<&str, String> = with_retries(
            || {
                fetched += 1;
                Ok(Some(challenge(4)))
            },
            |c| solve(c, 1),
            |proof| {
                sent += 1;
                assert!(proof.is_some());
                Ok(if sent < 3 {
                    Outcome::Rejected("Challenge expired".into())
                } else {
                    Outcome::Done("created")
                })
            },
        );
        assert_eq!(result, Ok("created"));
        assert_eq!((fetched, sent), (3, 3));
    }

    #[test]
    fn retries_stop_after_five_attempts_with_the_last_rejection() {
        let mut sent = 0;
        let result: Result<(), String> = with_retries(
            || Ok(Some(challenge(1))),
            |c| solve(c, 1),
            |_| {
                sent += 1;
                Ok(Outcome::Rejected(format!("rejection {sent}")))
            },
        );
        assert_eq!(result, Err("rejection 5".into()));
        assert_eq!(sent, MAX_ATTEMPTS);
    }

    #[test]
    fn no_challenge_means_no_proof_and_errors_are_not_retried() {
        let mut sent = 0;
        let result: Result<(), String> = with_retries(
            || Ok(None),
            |_| unreachable!("nothing to solve"),
            |proof| {
                sent += 1;
                assert!(proof.is_none());
                Err("network down".into())
            },
        );
        assert_eq!(result, Err("network down".into()));
        assert_eq!(sent, 1);
    }
}
