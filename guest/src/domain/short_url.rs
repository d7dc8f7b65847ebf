//! URL shortener rules: which targets are accepted, ids, expiry, ownership.
//!
//! A target is parsed with the WHATWG URL parser (the `url` crate, what
//! browsers do) and stored as the parser re-serializes it. That string is
//! ASCII only (IDNA hosts, percent-encoded paths) and free of control
//! characters, so the `Location` header carries exactly the URL the parser
//! saw and nothing can be injected into it.

use url::Url;

use crate::domain::Rng;
use crate::domain::expiry::ExpiryPolicy;
use crate::domain::identity::Identity;
use crate::store::short_url::{self as store, ShortUrl};
use crate::store::{Sql, StoreError};

/// Characters of a short URL id.
pub const ID_LEN: usize = 8;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Attempts at drawing an unused id (62^8 ≈ 2^47.6 ids, so a retry is rare).
const ID_ATTEMPTS: usize = 5;
pub const LIST_LIMIT_DEFAULT: i64 = 50;
pub const LIST_LIMIT_MAX: i64 = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum ShortUrlError {
    NoUrl,
    InvalidScheme,
    MissingHost,
    /// Control characters (CR, LF, NUL, ...) anywhere in the URL.
    ControlCharacters,
    /// Not a URL at all; the parser's reason.
    Malformed(String),
    TooLong {
        max: u64,
    },
    InvalidId,
    NotFound,
    AuthenticationRequired,
    PermissionDenied,
    Store(StoreError),
}

impl From<StoreError> for ShortUrlError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Checks a target URL and returns the form to store and redirect to.
///
/// Surrounding whitespace is trimmed (`echo URL | curl --data-binary @-`
/// sends a newline). The scheme must be followed by `//` literally: the
/// WHATWG parser would read `http:example.com` or `http:\\example.com` as
/// having a host, which is not what such text says.
pub fn validate_target(raw: &str, max_len: u64) -> Result<String, ShortUrlError> {
    let text = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return Err(ShortUrlError::NoUrl);
    }
    let too_long = |len: usize| u64::try_from(len).map_or(true, |l| l > max_len);
    if too_long(text.len()) {
        return Err(ShortUrlError::TooLong { max: max_len });
    }
    if text.chars().any(char::is_control) {
        return Err(ShortUrlError::ControlCharacters);
    }
    let Some((scheme, rest)) = text.split_once(':') else {
        return Err(ShortUrlError::InvalidScheme);
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(ShortUrlError::InvalidScheme);
    }
    // `https:///x` has an empty authority; the parser would take `x` as the host.
    let Some(authority) = rest.strip_prefix("//") else {
        return Err(ShortUrlError::MissingHost);
    };
    if authority.is_empty() || authority.starts_with(['/', '\\', '?', '#']) {
        return Err(ShortUrlError::MissingHost);
    }
    let url = Url::parse(text).map_err(|e| match e {
        url::ParseError::EmptyHost => ShortUrlError::MissingHost,
        other => ShortUrlError::Malformed(other.to_string()),
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ShortUrlError::MissingHost);
    }
    let stored = String::from(url);
    // Percent-encoding and punycode can lengthen the URL; the limit holds for
    // what is stored and sent, too.
    if too_long(stored.len()) {
        return Err(ShortUrlError::TooLong { max: max_len });
    }
    Ok(stored)
}

/// Whether `id` has the form of a short URL id (8 base62 characters).
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A random id: each character from one random byte, bytes >= 248 redrawn
/// so every character is equally likely (248 = 4 * 62).
pub fn new_id(rng: &dyn Rng) -> String {
    let mut id = String::with_capacity(ID_LEN);
    let mut buf = [0u8; 16];
    while id.len() < ID_LEN {
        rng.fill(&mut buf);
        for b in buf.iter().filter(|b| **b < 248) {
            if id.len() == ID_LEN {
                break;
            }
            id.push(char::from(BASE62[usize::from(*b % 62)]));
        }
    }
    id
}

/// Creates a short URL for a validated `target`.
pub fn create(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    who: &Identity,
    expiry_policy: &ExpiryPolicy,
    target: String,
    expiry: Option<&str>,
) -> Result<ShortUrl, ShortUrlError> {
    let mut url = ShortUrl {
        id: new_id(rng),
        target_url: target,
        owner: who.fingerprint.clone(),
        created_at: now,
        last_accessed: None,
        access_count: 0,
        expires_at: now + expiry_policy.lifetime(who.trust, expiry),
    };
    for _ in 0..ID_ATTEMPTS {
        if store::insert(db, &url)? {
            return Ok(url);
        }
        url.id = new_id(rng);
    }
    Err(StoreError::Io("could not find an unused short URL id".into()).into())
}

/// The target of a redirect; counts the access.
pub fn redirect(db: &dyn Sql, now: i64, id: &str) -> Result<String, ShortUrlError> {
    if !is_valid_id(id) {
        return Err(ShortUrlError::InvalidId);
    }
    store::hit(db, id, now)?.ok_or(ShortUrlError::NotFound)
}

/// A short URL's details, without counting an access.
pub fn info(db: &dyn Sql, now: i64, id: &str) -> Result<ShortUrl, ShortUrlError> {
    if !is_valid_id(id) {
        return Err(ShortUrlError::InvalidId);
    }
    store::get(db, id, now)?.ok_or(ShortUrlError::NotFound)
}

/// Deletes a short URL owned by the client (any, for the admin).
pub fn delete(db: &dyn Sql, now: i64, who: &Identity, id: &str) -> Result<(), ShortUrlError> {
    if !is_valid_id(id) {
        return Err(ShortUrlError::InvalidId);
    }
    if !who.is_authenticated() {
        return Err(ShortUrlError::AuthenticationRequired);
    }
    let url = store::get(db, id, now)?.ok_or(ShortUrlError::NotFound)?;
    if !who.may_manage(url.owner.as_deref()) {
        return Err(ShortUrlError::PermissionDenied);
    }
    if store::delete(db, id)? {
        Ok(())
    } else {
        Err(ShortUrlError::NotFound)
    }
}

/// A page of the client's short URLs: (urls, total, limit, offset).
pub fn list(
    db: &dyn Sql,
    now: i64,
    who: &Identity,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<(Vec<ShortUrl>, i64, i64, i64), ShortUrlError> {
    let fingerprint = who
        .fingerprint
        .as_deref()
        .ok_or(ShortUrlError::AuthenticationRequired)?;
    let limit = limit.unwrap_or(LIST_LIMIT_DEFAULT).clamp(1, LIST_LIMIT_MAX);
    let offset = offset.unwrap_or(0).max(0);
    let (urls, total) = store::list(db, Some(fingerprint), now, limit, offset)?;
    Ok((urls, total, limit, offset))
}

/// Deletes expired short URLs; returns how many.
pub fn cleanup(db: &dyn Sql, now: i64) -> Result<u64, StoreError> {
    store::delete_expired(db, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::SeqRng;
    use crate::store::migrations;
    use crate::store::native::NativeSqlite;

    const MAX: u64 = 2048;
    const FP: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";
    const OTHER: &str = "ffffffffffffffffffffffffffffffffffffffff";

    fn ok(raw: &str) -> String {
        validate_target(raw, MAX).unwrap_or_else(|e| panic!("{raw:?} refused: {e:?}"))
    }

    fn err(raw: &str) -> ShortUrlError {
        validate_target(raw, MAX).expect_err(raw)
    }

    #[test]
    fn http_and_https_urls_are_accepted_as_parsed() {
        assert_eq!(ok("https://example.com"), "https://example.com/");
        assert_eq!(
            ok("https://example.com/some/long/path?query=value#frag"),
            "https://example.com/some/long/path?query=value#frag"
        );
        assert_eq!(ok("HTTP://Example.COM:8080/a"), "http://example.com:8080/a");
        assert_eq!(ok("  https://example.com/x \n"), "https://example.com/x");
        // Non-ASCII becomes punycode and percent-encoding: Location stays ASCII.
        assert_eq!(
            ok("https://exämple.com/ü"),
            "https://xn--exmple-cua.com/%C3%BC"
        );
        assert_eq!(ok("https://example.com/a b"), "https://example.com/a%20b");
        assert_eq!(ok("http://127.0.0.1/"), "http://127.0.0.1/");
        assert_eq!(ok("http://[::1]:8080/"), "http://[::1]:8080/");
    }

    #[test]
    fn userinfo_is_kept_so_the_target_is_what_the_url_says() {
        // The host is evil.com: that is the URL, and that is where it goes.
        assert_eq!(
            ok("https://good.com@evil.com/"),
            "https://good.com@evil.com/"
        );
        let parsed = Url::parse(&ok("https://good.com@evil.com/")).unwrap();
        assert_eq!(parsed.host_str(), Some("evil.com"));
    }

    #[test]
    fn other_schemes_are_refused() {
        for raw in [
            "javascript:alert(1)",
            "JavaScript://%0Aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "ftp://example.com/",
            "mailto:a@example.com",
            "example.com",
            "//example.com/path",
            "/relative",
            "httpx://example.com",
        ] {
            assert_eq!(err(raw), ShortUrlError::InvalidScheme, "{raw}");
        }
    }

    #[test]
    fn urls_without_a_host_are_refused() {
        for raw in [
            "http://",
            "https:///path",
            "http:example.com",
            "http:/example.com",
            "https:\\\\example.com",
            "http://:80/",
        ] {
            assert!(
                matches!(
                    err(raw),
                    ShortUrlError::MissingHost | ShortUrlError::Malformed(_)
                ),
                "{raw}: {:?}",
                err(raw)
            );
        }
        assert_eq!(err("http:example.com"), ShortUrlError::MissingHost);
        assert_eq!(err("https://"), ShortUrlError::MissingHost);
        assert_eq!(err("https:///path"), ShortUrlError::MissingHost);
        assert_eq!(err("https://?q"), ShortUrlError::MissingHost);
    }

    #[test]
    fn control_characters_are_refused_not_stripped() {
        for raw in [
            "https://example.com/\r\nSet-Cookie: a=b",
            "https://exa\nmple.com/",
            "https://example.com/\ta",
            "https://example.com/\0",
            "https://example.com/\u{7f}",
            "https://example.com/\u{85}",
        ] {
            assert_eq!(err(raw), ShortUrlError::ControlCharacters, "{raw:?}");
        }
    }

    #[test]
    fn length_is_limited_before_and_after_encoding() {
        let base = "https://example.com/";
        let fits = format!("{base}{}", "a".repeat(2048 - base.len()));
        assert_eq!(ok(&fits).len(), 2048);
        let over = format!("{fits}a");
        assert_eq!(err(&over), ShortUrlError::TooLong { max: 2048 });
        // 700 'ü' are 1400 bytes of input but 4200 once percent-encoded.
        let grows = format!("{base}{}", "ü".repeat(700));
        assert_eq!(err(&grows), ShortUrlError::TooLong { max: 2048 });
        assert_eq!(err(""), ShortUrlError::NoUrl);
        assert_eq!(err(" \n"), ShortUrlError::NoUrl);
    }

    #[test]
    fn ids_are_base62_of_fixed_length_and_unbiased_draws_are_skipped() {
        let rng = SeqRng(std::cell::Cell::new(0));
        for _ in 0..100 {
            let id = new_id(&rng);
            assert!(is_valid_id(&id), "{id}");
        }
        // Bytes 248..=255 are skipped; the next ones map in order.
        let rng = SeqRng(std::cell::Cell::new(246));
        assert_eq!(&new_id(&rng)[..2], "yz");
        assert!(!is_valid_id("AbCdEfG"));
        assert!(!is_valid_id("AbCdEfGhI"));
        assert!(!is_valid_id("AbCd-fGh"));
        assert!(!is_valid_id("AbCdEfG\u{e9}"));
        assert!(is_valid_id("AbCdEf12"));
    }

    fn db() -> NativeSqlite {
        let db = NativeSqlite::memory();
        migrations::ensure_schema(&db).unwrap();
        db
    }

    fn policy() -> ExpiryPolicy {
        ExpiryPolicy {
            anonymous: 100,
            untrusted: 200,
            trusted: 300,
            max: 1000,
        }
    }

    #[test]
    fn lifecycle_counts_accesses_and_expires() {
        let db = db();
        let rng = SeqRng(std::cell::Cell::new(1));
        let who = Identity::untrusted(FP.into());
        let url = create(
            &db,
            &rng,
            1000,
            &who,
            &policy(),
            "https://a.example/".into(),
            None,
        )
        .unwrap();
        assert_eq!(url.expires_at, 1200);
        assert_eq!(redirect(&db, 1001, &url.id).unwrap(), "https://a.example/");
        assert_eq!(redirect(&db, 1002, &url.id).unwrap(), "https://a.example/");
        let seen = info(&db, 1003, &url.id).unwrap();
        assert_eq!((seen.access_count, seen.last_accessed), (2, Some(1002)));
        // Info does not count.
        assert_eq!(info(&db, 1003, &url.id).unwrap().access_count, 2);
        assert_eq!(redirect(&db, 1200, &url.id), Err(ShortUrlError::NotFound));
        assert_eq!(cleanup(&db, 1200).unwrap(), 1);
        assert_eq!(cleanup(&db, 1200).unwrap(), 0);
    }

    #[test]
    fn x_expiry_is_capped_and_anonymous_urls_have_no_owner() {
        let db = db();
        let rng = SeqRng(std::cell::Cell::new(9));
        let anon = Identity::anonymous();
        let url = create(
            &db,
            &rng,
            0,
            &anon,
            &policy(),
            "http://x.example/".into(),
            Some("50"),
        )
        .unwrap();
        assert_eq!((url.expires_at, url.owner), (50, None));
        let capped = create(
            &db,
            &rng,
            0,
            &anon,
            &policy(),
            "http://x.example/".into(),
            Some("99999"),
        )
        .unwrap();
        assert_eq!(capped.expires_at, 1000);
    }

    #[test]
    fn id_collisions_are_retried() {
        let db = db();
        let who = Identity::anonymous();
        // The same rng state twice: the second create draws the taken id first.
        let make = || {
            let rng = SeqRng(std::cell::Cell::new(5));
            create(
                &db,
                &rng,
                0,
                &who,
                &policy(),
                "https://a.example/".into(),
                None,
            )
            .unwrap()
        };
        let first = make();
        let second = make();
        assert_ne!(first.id, second.id);
    }

    #[test]
    fn only_owners_and_the_admin_delete_and_list() {
        let db = db();
        let rng = SeqRng(std::cell::Cell::new(3));
        let owner = Identity::untrusted(FP.into());
        let other = Identity::untrusted(OTHER.into());
        let url = create(
            &db,
            &rng,
            0,
            &owner,
            &policy(),
            "https://a.example/".into(),
            None,
        )
        .unwrap();
        assert_eq!(
            delete(&db, 1, &Identity::anonymous(), &url.id),
            Err(ShortUrlError::AuthenticationRequired)
        );
        assert_eq!(
            delete(&db, 1, &other, &url.id),
            Err(ShortUrlError::PermissionDenied)
        );
        assert_eq!(delete(&db, 1, &other, "bad"), Err(ShortUrlError::InvalidId));
        assert_eq!(
            delete(&db, 1, &other, "AAAAAAAA"),
            Err(ShortUrlError::NotFound)
        );
        let (mine, total, limit, offset) = list(&db, 1, &owner, None, None).unwrap();
        assert_eq!((mine.len(), total, limit, offset), (1, 1, 50, 0));
        assert_eq!(list(&db, 1, &other, Some(1000), Some(-3)).unwrap().1, 0);
        assert_eq!(list(&db, 1, &other, Some(1000), None).unwrap().2, 200);
        let mut admin = other.clone();
        admin.admin = true;
        assert_eq!(delete(&db, 1, &admin, &url.id), Ok(()));
        assert_eq!(
            delete(&db, 1, &owner, &url.id),
            Err(ShortUrlError::NotFound)
        );
    }
}
