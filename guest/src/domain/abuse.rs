//! Abuse controls on creation: per-IP rate limits, proof-of-work (with the
//! nonce consumed once), anti-flood difficulty, content-hash deduplication and
//! the content policies (minimum size, entropy, binary-only).
//!
//! Every counter lives in SQL and is checked-and-counted by one statement in
//! `store::abuse`; nothing here keeps state between requests.

use sha2::{Digest, Sha256};

use crate::domain::hex;
use crate::domain::pow::{self, PowError};
use crate::store::abuse::{self as store, Antiflood};
use crate::store::{Sql, StoreError};

pub const ENTROPY_HINT: &str = "Encrypt content before uploading (fpaste encrypts by default)";

#[derive(Debug, Clone, PartialEq)]
pub enum AbuseError {
    Pow(PowError),
    /// A proof-of-work solution that was already used.
    Replayed,
    RateLimited(RateStatus),
    /// The same paste content, more than `count` times in `window` seconds.
    Duplicate {
        count: u64,
        window: i64,
    },
    /// The same URL shortened more than `count` times in `window` seconds.
    DuplicateUrl {
        count: u64,
        window: i64,
    },
    TooSmall {
        size: u64,
        min: u64,
    },
    Recognizable {
        detected: String,
    },
    LowEntropy {
        entropy: f64,
        min: f64,
    },
    Store(StoreError),
}

impl From<StoreError> for AbuseError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The client's standing in its rate window: the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub limit: u64,
    pub remaining: u64,
    /// Unix time when the window ends.
    pub reset: i64,
    /// Seconds until then, at least 1 (for `Retry-After`).
    pub retry_after: i64,
}

/// Counts one creation attempt from `client_ip` against `limit` per `window`
/// seconds. `Err(RateLimited)` past the limit. One statement.
pub fn rate_limit(
    db: &dyn Sql,
    client_ip: &str,
    now: i64,
    limit: u64,
    window: i64,
) -> Result<RateStatus, AbuseError> {
    let w = store::rate_hit(db, client_ip, now, window)?;
    let count = u64::try_from(w.count).unwrap_or(u64::MAX);
    let reset = w.start + window;
    let status = RateStatus {
        limit,
        remaining: limit.saturating_sub(count),
        reset,
        retry_after: (reset - now).max(1),
    };
    if count > limit {
        Err(AbuseError::RateLimited(status))
    } else {
        Ok(status)
    }
}

/// Verifies a proof-of-work submission and consumes its nonce: of concurrent
/// submissions of one solution exactly one passes.
pub fn proof_of_work(
    db: &dyn Sql,
    key: &[u8],
    token: Option<&str>,
    solution: Option<&str>,
    now: i64,
    min_difficulty: u32,
) -> Result<(), AbuseError> {
    let verified =
        pow::verify(key, token, solution, now, min_difficulty).map_err(AbuseError::Pow)?;
    if store::consume_nonce(db, &verified.nonce, verified.expires)? {
        Ok(())
    } else {
        Err(AbuseError::Replayed)
    }
}

/// Anti-flood configuration with the base difficulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodPolicy {
    pub base: u32,
    /// 0 disables anti-flood.
    pub threshold: u64,
    pub window: i64,
    pub step: u32,
    pub max: u32,
    pub decay: i64,
}

impl FloodPolicy {
    fn enabled(&self) -> bool {
        self.base > 0 && self.threshold > 0
    }

    fn params(&self) -> Antiflood {
        Antiflood {
            threshold: i64::try_from(self.threshold).unwrap_or(i64::MAX),
            window: self.window,
            step: i64::from(self.step),
            max_extra: i64::from(self.max.saturating_sub(self.base)),
            decay: self.decay,
        }
    }

    fn with_extra(&self, extra: i64) -> u32 {
        let extra = u32::try_from(extra.max(0)).unwrap_or(u32::MAX);
        self.base.saturating_add(extra).min(self.max.max(self.base))
    }
}

/// The difficulty new challenges get now: the base, raised while flooded.
pub fn current_difficulty(db: &dyn Sql, now: i64, p: &FloodPolicy) -> Result<u32, StoreError> {
    if !p.enabled() {
        return Ok(p.base);
    }
    Ok(p.with_extra(store::antiflood_extra(db, now, p.decay)?))
}

/// Counts one creation towards anti-flood.
pub fn record_creation(db: &dyn Sql, now: i64, p: &FloodPolicy) -> Result<(), StoreError> {
    if p.enabled() {
        store::antiflood_record(db, now, &p.params())?;
    }
    Ok(())
}

/// Separates URL hashes from paste-content hashes in the dedup table, so a
/// paste that happens to hold a URL does not count against shortening it.
const URL_DEDUP_DOMAIN: &[u8] = b"short-url\0";

/// Counts one submission of paste `content`; past `max` identical ones per
/// `window` seconds it is refused. `max` 0 disables the check.
pub fn dedup(
    db: &dyn Sql,
    content: &[u8],
    now: i64,
    max: u64,
    window: i64,
) -> Result<(), AbuseError> {
    if over_dedup_limit(db, content, now, max, window)? {
        Err(AbuseError::Duplicate { count: max, window })
    } else {
        Ok(())
    }
}

/// [`dedup`] for a URL to shorten, counted apart from paste content.
pub fn dedup_url(
    db: &dyn Sql,
    url: &str,
    now: i64,
    max: u64,
    window: i64,
) -> Result<(), AbuseError> {
    let key = [URL_DEDUP_DOMAIN, url.as_bytes()].concat();
    if over_dedup_limit(db, &key, now, max, window)? {
        Err(AbuseError::DuplicateUrl { count: max, window })
    } else {
        Ok(())
    }
}

/// Counts one submission of `key` and says whether it is past `max` per
/// `window` (never, and nothing counted, when `max` is 0).
fn over_dedup_limit(
    db: &dyn Sql,
    key: &[u8],
    now: i64,
    max: u64,
    window: i64,
) -> Result<bool, StoreError> {
    if max == 0 {
        return Ok(false);
    }
    let hash = hex(&Sha256::digest(key));
    let w = store::dedup_hit(db, &hash, now, window)?;
    Ok(u64::try_from(w.count).unwrap_or(u64::MAX) > max)
}

/// The content policies that need no database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContentPolicy {
    pub min_size: u64,
    pub min_entropy: f64,
    pub min_entropy_size: u64,
    pub require_binary: bool,
}

/// Applies minimum size, binary-only and minimum entropy, in that order.
/// `mime` is what detection found for the content.
pub fn content_policy(content: &[u8], mime: &str, p: &ContentPolicy) -> Result<(), AbuseError> {
    let size = content.len() as u64;
    if p.min_size > 0 && size < p.min_size {
        return Err(AbuseError::TooSmall {
            size,
            min: p.min_size,
        });
    }
    if p.require_binary && mime != super::mime::OCTET_STREAM {
        return Err(AbuseError::Recognizable {
            detected: mime.to_owned(),
        });
    }
    if p.min_entropy > 0.0 && size >= p.min_entropy_size {
        let entropy = shannon_entropy(content);
        if entropy < p.min_entropy {
            return Err(AbuseError::LowEntropy {
                entropy,
                min: p.min_entropy,
            });
        }
    }
    Ok(())
}

/// Shannon entropy of the byte distribution, in bits per byte (0 to 8).
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for b in data {
        counts[usize::from(*b)] += 1;
    }
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let total = data.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            #[allow(clippy::cast_precision_loss)]
            let p = *c as f64 / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::SeqRng;
    use crate::domain::{OsRng, Rng};
    use crate::store::migrations::ensure_schema;
    use crate::store::native::NativeSqlite;

    fn db() -> NativeSqlite {
        let db = NativeSqlite::memory();
        ensure_schema(&db).unwrap();
        db
    }

    #[test]
    fn entropy_of_known_distributions() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abab") - 1.0).abs() < 1e-12);
        let all: Vec<u8> = (0..=255).collect();
        assert!((shannon_entropy(&all) - 8.0).abs() < 1e-12);
        let mut random = vec![0u8; 65536];
        OsRng.fill(&mut random);
        assert!(shannon_entropy(&random) > 7.9);
        let english = b"the quick brown fox jumps over the lazy dog and keeps running";
        let e = shannon_entropy(english);
        assert!((3.5..5.0).contains(&e), "{e}");
    }

    #[test]
    fn rate_limit_admits_exactly_the_limit() {
        let db = db();
        for i in 1..=3 {
            let s = rate_limit(&db, "1.2.3.4", 100, 3, 60).unwrap();
            assert_eq!(s.remaining, 3 - i);
            assert_eq!(s.reset, 160);
        }
        let AbuseError::RateLimited(s) = rate_limit(&db, "1.2.3.4", 130, 3, 60).unwrap_err() else {
            panic!("expected a rate limit");
        };
        assert_eq!(
            (s.limit, s.remaining, s.reset, s.retry_after),
            (3, 0, 160, 30)
        );
        assert!(rate_limit(&db, "5.6.7.8", 130, 3, 60).is_ok());
        assert!(rate_limit(&db, "1.2.3.4", 160, 3, 60).is_ok());
    }

    #[test]
    fn proof_of_work_is_single_use() {
        let db = db();
        let c = pow::issue(b"k", &SeqRng::default(), 0, 300, 8);
        let n = pow::solve(&c.nonce, 8).to_string();
        proof_of_work(&db, b"k", Some(&c.token), Some(&n), 1, 8).unwrap();
        assert_eq!(
            proof_of_work(&db, b"k", Some(&c.token), Some(&n), 2, 8),
            Err(AbuseError::Replayed)
        );
        assert_eq!(
            proof_of_work(&db, b"k", None, None, 2, 8),
            Err(AbuseError::Pow(PowError::Required))
        );
    }

    #[test]
    fn difficulty_rises_under_flood_and_respects_the_cap() {
        let db = db();
        let p = FloodPolicy {
            base: 20,
            threshold: 2,
            window: 60,
            step: 2,
            max: 24,
            decay: 60,
        };
        assert_eq!(current_difficulty(&db, 0, &p).unwrap(), 20);
        for _ in 0..3 {
            record_creation(&db, 10, &p).unwrap();
        }
        assert_eq!(current_difficulty(&db, 10, &p).unwrap(), 22);
        for _ in 0..20 {
            record_creation(&db, 11, &p).unwrap();
        }
        assert_eq!(current_difficulty(&db, 11, &p).unwrap(), 24);
        assert_eq!(current_difficulty(&db, 71, &p).unwrap(), 20);
        let off = FloodPolicy { threshold: 0, ..p };
        assert_eq!(current_difficulty(&db, 11, &off).unwrap(), 20);
    }

    #[test]
    fn dedup_refuses_past_the_maximum() {
        let db = db();
        for _ in 0..3 {
            dedup(&db, b"same", 0, 3, 3600).unwrap();
        }
        assert_eq!(
            dedup(&db, b"same", 1, 3, 3600),
            Err(AbuseError::Duplicate {
                count: 3,
                window: 3600
            })
        );
        dedup(&db, b"other", 1, 3, 3600).unwrap();
        dedup(&db, b"same", 3600, 3, 3600).unwrap();
        dedup(&db, b"same", 1, 0, 3600).unwrap();
    }

    #[test]
    fn urls_are_deduplicated_apart_from_paste_content() {
        let db = db();
        dedup_url(&db, "https://a.example/", 0, 1, 3600).unwrap();
        // The same text as paste content is another count.
        dedup(&db, b"https://a.example/", 0, 1, 3600).unwrap();
        assert_eq!(
            dedup_url(&db, "https://a.example/", 1, 1, 3600),
            Err(AbuseError::DuplicateUrl {
                count: 1,
                window: 3600
            })
        );
        dedup_url(&db, "https://a.example/", 1, 0, 3600).unwrap();
    }

    #[test]
    fn content_policies_in_order() {
        let p = ContentPolicy {
            min_size: 4,
            min_entropy: 6.0,
            min_entropy_size: 8,
            require_binary: false,
        };
        assert_eq!(
            content_policy(b"abc", "text/plain", &p),
            Err(AbuseError::TooSmall { size: 3, min: 4 })
        );
        // Below min_entropy_size: exempt.
        assert!(content_policy(b"aaaaaaa", "text/plain", &p).is_ok());
        assert!(matches!(
            content_policy(b"aaaaaaaa", "text/plain", &p),
            Err(AbuseError::LowEntropy { min, .. }) if min == 6.0
        ));
        let binary = ContentPolicy {
            require_binary: true,
            ..p
        };
        assert_eq!(
            content_policy(b"hello world!", "text/plain", &binary),
            Err(AbuseError::Recognizable {
                detected: "text/plain".into()
            })
        );
        let all: Vec<u8> = (0..=255).collect();
        assert!(content_policy(&all, "application/octet-stream", &binary).is_ok());
    }
}
