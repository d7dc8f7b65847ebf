//! Paste rules: ids, size limits, burn-after-read, passwords, display names,
//! ownership. Lifetimes follow the shared rule of [`crate::domain::expiry`].
//!
//! Order matters for cost: every cheap check runs before the PBKDF2 hash, and
//! every state change is one statement in `store::paste`.

use crate::domain::expiry::ExpiryPolicy;
use crate::domain::identity::Identity;
use crate::domain::{Rng, hex, mime, password};
use crate::store::migrations::Meta;
use crate::store::paste::{
    self as store, Change, InsertError, ListFilter, NewPaste, PasteMeta, PasteUpdate, Touched,
};
use crate::store::{Sql, StoreError};

/// Random bytes in a new paste id (16 hex digits: 64 bits, not guessable).
const ID_BYTES: usize = 8;
/// Ids accepted on input: lowercase hex of this many digits (older, shorter ids included).
const ID_LEN: std::ops::RangeInclusive<usize> = 8..=64;
/// Attempts at drawing an unused id before giving up (a collision is already ~2^-64).
const ID_ATTEMPTS: usize = 3;
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;
pub const LIST_LIMIT_DEFAULT: i64 = 100;
pub const LIST_LIMIT_MAX: i64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum PasteError {
    NoContent,
    PasswordTooLong,
    DisplayNameTooLong,
    DisplayNameInvalid,
    TooLarge {
        size: u64,
        max: u64,
        authenticated: bool,
    },
    InvalidId,
    NotFound,
    PasswordRequired,
    InvalidPassword,
    AuthenticationRequired,
    PermissionDenied,
    AdminRequired,
    NoUpdates,
    BurnNotUpdatable,
    /// A header or query parameter with a value that cannot mean anything.
    InvalidInput {
        name: &'static str,
        reason: String,
    },
    Store(StoreError),
}

impl From<StoreError> for PasteError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The limits and lifetimes that apply, read from configuration per request.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_anon: u64,
    pub max_auth: u64,
    pub expiry: ExpiryPolicy,
}

impl Policy {
    /// The largest paste this client may store.
    pub fn max_size(&self, who: &Identity) -> u64 {
        if who.is_authenticated() {
            self.max_auth
        } else {
            self.max_anon
        }
    }

    /// Fails with the reference's 413 details when `size` exceeds the client's limit.
    pub fn check_size(&self, who: &Identity, size: u64) -> Result<(), PasteError> {
        let max = self.max_size(who);
        if size > max {
            Err(PasteError::TooLarge {
                size,
                max,
                authenticated: who.is_authenticated(),
            })
        } else {
            Ok(())
        }
    }
}

/// Whether an `X-Burn-After-Read` (or similar flag header) value means yes.
pub fn is_truthy(value: &str) -> bool {
    ["true", "1", "yes"]
        .iter()
        .any(|t| value.trim().eq_ignore_ascii_case(t))
}

pub fn is_valid_id(id: &str) -> bool {
    ID_LEN.contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn new_id(rng: &dyn Rng) -> String {
    let mut bytes = [0u8; ID_BYTES];
    rng.fill(&mut bytes);
    hex(&bytes)
}

/// A display name: at most 128 characters, none of them control or
/// bidirectional-override characters (which would let a name disguise itself).
pub fn validate_display_name(raw: &str) -> Result<String, PasteError> {
    let name = raw.trim();
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(PasteError::DisplayNameTooLong);
    }
    let invalid = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if name.chars().any(invalid) {
        return Err(PasteError::DisplayNameInvalid);
    }
    Ok(name.to_owned())
}

/// Everything `POST /` supplies besides the identity.
#[derive(Debug, Default)]
pub struct CreateRequest {
    pub content: Vec<u8>,
    /// From [`mime::detect`]; the caller needs it first for the content policies.
    pub mime_type: String,
    pub burn_after_read: bool,
    pub expiry: Option<String>,
    pub password: Option<Vec<u8>>,
    pub display_name: Option<String>,
}

/// Checks the cheap parts of a create request (before the body is even read).
pub fn check_create_headers(
    who: &Identity,
    password: Option<&[u8]>,
    display_name: Option<&str>,
) -> Result<(), PasteError> {
    if password.is_some_and(password::is_too_long) {
        return Err(PasteError::PasswordTooLong);
    }
    if who.is_authenticated()
        && let Some(name) = display_name
    {
        validate_display_name(name)?;
    }
    Ok(())
}

/// Creates a paste and returns what was stored.
pub fn create(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    who: &Identity,
    policy: &Policy,
    req: CreateRequest,
) -> Result<PasteMeta, PasteError> {
    check_create_headers(who, req.password.as_deref(), req.display_name.as_deref())?;
    if req.content.is_empty() {
        return Err(PasteError::NoContent);
    }
    policy.check_size(who, req.content.len() as u64)?;
    // Display names are for authenticated users only; anonymous ones are ignored.
    let display_name = match (&who.fingerprint, req.display_name.as_deref()) {
        (Some(_), Some(raw)) => Some(validate_display_name(raw)?).filter(|n| !n.is_empty()),
        _ => None,
    };
    let expires_at = now + policy.expiry.lifetime(who.trust, req.expiry.as_deref());
    let password_hash = req
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| password::hash(p, rng));
    let mut paste = NewPaste {
        id: new_id(rng),
        content: req.content,
        mime_type: req.mime_type,
        owner: who.fingerprint.clone(),
        display_name,
        password_hash,
        burn_after_read: req.burn_after_read,
        created_at: now,
        expires_at,
    };
    for _ in 1..ID_ATTEMPTS {
        match try_insert(db, paste)? {
            Ok(meta) => return Ok(meta),
            Err(taken) => {
                paste = taken;
                paste.id = new_id(rng);
            }
        }
    }
    try_insert(db, paste)?
        .map_err(|_| PasteError::Store(StoreError::Io("could not find an unused paste id".into())))
}

/// One insert attempt: the stored metadata, or the paste back if its id was taken.
fn try_insert(db: &dyn Sql, paste: NewPaste) -> Result<Result<PasteMeta, NewPaste>, PasteError> {
    let meta = PasteMeta {
        id: paste.id.clone(),
        size: i64::try_from(paste.content.len()).unwrap_or(i64::MAX),
        mime_type: paste.mime_type.clone(),
        owner: paste.owner.clone(),
        display_name: paste.display_name.clone(),
        password_hash: paste.password_hash.clone(),
        burn_after_read: paste.burn_after_read,
        created_at: paste.created_at,
        last_accessed: paste.created_at,
        expires_at: paste.expires_at,
    };
    match store::insert(db, paste) {
        Ok(()) => Ok(Ok(meta)),
        Err(InsertError::IdTaken(paste)) => Ok(Err(*paste)),
        Err(InsertError::Store(e)) => Err(e.into()),
    }
}

/// Checks a paste's password against what the client sent.
fn check_password(meta: &PasteMeta, sent: Option<&[u8]>) -> Result<(), PasteError> {
    let Some(stored) = &meta.password_hash else {
        return Ok(());
    };
    let sent = sent.ok_or(PasteError::PasswordRequired)?;
    if password::is_too_long(sent) {
        return Err(PasteError::PasswordTooLong);
    }
    if password::verify(sent, stored) {
        Ok(())
    } else {
        Err(PasteError::InvalidPassword)
    }
}

/// What a read may change: a GET reads, a HEAD only peeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Records the access; a raw read returns the content and burns a
    /// burn-after-read paste (exactly one reader gets it).
    Read,
    /// Changes nothing and returns no content: headers only.
    Peek,
}

/// The first statement of a read (`store::paste::read`): the bookkeeping
/// row and the live paste, with its content when `with_content` and it can
/// be returned at once. The caller checks the id first.
pub fn lookup(
    db: &dyn Sql,
    id: &str,
    now: i64,
    with_content: bool,
) -> Result<(Meta, Option<Touched>), StoreError> {
    store::read(db, id, now, with_content)
}

/// Records a read's access, at the granularity `store::paste` keeps.
fn record_access(db: &dyn Sql, meta: &PasteMeta, now: i64) -> Result<(), StoreError> {
    if store::access_due(meta, now) {
        store::record_access(db, &meta.id, now)?;
    }
    Ok(())
}

/// Metadata for `GET|HEAD /{id}`; a read records the access, a peek does not.
pub fn metadata(
    db: &dyn Sql,
    now: i64,
    id: &str,
    password: Option<&[u8]>,
    access: Access,
) -> Result<PasteMeta, PasteError> {
    if !is_valid_id(id) {
        return Err(PasteError::InvalidId);
    }
    let (_, found) = lookup(db, id, now, false)?;
    metadata_of(db, now, found.map(|(meta, _)| meta), password, access)
}

/// [`metadata`] from what [`lookup`] found.
pub fn metadata_of(
    db: &dyn Sql,
    now: i64,
    found: Option<PasteMeta>,
    password: Option<&[u8]>,
    access: Access,
) -> Result<PasteMeta, PasteError> {
    let meta = found.ok_or(PasteError::NotFound)?;
    if access == Access::Read {
        record_access(db, &meta, now)?;
    }
    check_password(&meta, password)?;
    Ok(meta)
}

/// What `GET|HEAD /{id}/raw` serves.
#[derive(Debug)]
pub struct RawPaste {
    pub meta: PasteMeta,
    /// Empty for a peek.
    pub content: Vec<u8>,
    /// This read deleted the paste.
    pub burned: bool,
}

/// Content for `GET /{id}/raw` (a read: burns a burn-after-read paste) or the
/// headers alone for HEAD (a peek: never burns).
pub fn raw(
    db: &dyn Sql,
    now: i64,
    id: &str,
    password: Option<&[u8]>,
    access: Access,
) -> Result<RawPaste, PasteError> {
    if !is_valid_id(id) {
        return Err(PasteError::InvalidId);
    }
    let (_, found) = lookup(db, id, now, access == Access::Read)?;
    raw_of(db, now, found, password, access)
}

/// [`raw`] from what [`lookup`] found (with content for a read).
pub fn raw_of(
    db: &dyn Sql,
    now: i64,
    found: Option<Touched>,
    password: Option<&[u8]>,
    access: Access,
) -> Result<RawPaste, PasteError> {
    let (meta, content) = found.ok_or(PasteError::NotFound)?;
    if access == Access::Peek {
        check_password(&meta, password)?;
        return Ok(RawPaste {
            meta,
            content: Vec::new(),
            burned: false,
        });
    }
    if let Some(content) = content {
        // The common read: one statement, plus this write once a minute.
        record_access(db, &meta, now)?;
        return Ok(RawPaste {
            meta,
            content,
            burned: false,
        });
    }
    check_password(&meta, password)?;
    let (content, burned) = if meta.burn_after_read {
        (store::burn(db, &meta.id, now)?, true)
    } else {
        record_access(db, &meta, now)?;
        (store::content(db, &meta.id, now)?, false)
    };
    // `None`: another reader burned it, or it was deleted, since the first statement.
    let content = content.ok_or(PasteError::NotFound)?;
    Ok(RawPaste {
        meta,
        content,
        burned,
    })
}

/// Everything `PUT /{id}` supplies.
#[derive(Debug, Default)]
pub struct UpdateRequest {
    /// New content (non-empty body) and the request's `Content-Type`.
    pub content: Option<(Vec<u8>, Option<String>)>,
    pub password: Option<Vec<u8>>,
    pub remove_password: bool,
    pub display_name: Option<String>,
    pub remove_display_name: bool,
    pub extend_expiry: Option<String>,
}

fn require_fingerprint(who: &Identity) -> Result<&str, PasteError> {
    who.fingerprint
        .as_deref()
        .ok_or(PasteError::AuthenticationRequired)
}

/// Updates content and/or metadata of a paste the client owns.
pub fn update(
    db: &dyn Sql,
    rng: &dyn Rng,
    now: i64,
    who: &Identity,
    policy: &Policy,
    id: &str,
    req: UpdateRequest,
) -> Result<PasteMeta, PasteError> {
    if !is_valid_id(id) {
        return Err(PasteError::InvalidId);
    }
    let owner = require_fingerprint(who)?;
    let meta = store::meta(db, id, now)?.ok_or(PasteError::NotFound)?;
    if meta.owner.as_deref() != Some(owner) {
        return Err(PasteError::PermissionDenied);
    }
    if meta.burn_after_read {
        return Err(PasteError::BurnNotUpdatable);
    }

    let mut changes = PasteUpdate::default();
    if let Some((content, declared)) = req.content {
        policy.check_size(who, content.len() as u64)?;
        let mime = mime::detect(&content, declared.as_deref());
        changes.content = Some((content, mime));
    }
    let new_password = match (req.password.filter(|p| !p.is_empty()), req.remove_password) {
        (Some(_), true) => {
            return Err(PasteError::InvalidInput {
                name: "X-Paste-Password",
                reason: "cannot be combined with X-Remove-Password".into(),
            });
        }
        (Some(p), false) => {
            if password::is_too_long(&p) {
                return Err(PasteError::PasswordTooLong);
            }
            Some(p)
        }
        (None, true) => {
            changes.password_hash = Change::Clear;
            None
        }
        (None, false) => None,
    };
    let display_name = req
        .display_name
        .as_deref()
        .map(validate_display_name)
        .transpose()?
        .filter(|n| !n.is_empty());
    changes.display_name = match (display_name, req.remove_display_name) {
        (Some(_), true) => {
            return Err(PasteError::InvalidInput {
                name: "X-Display-Name",
                reason: "cannot be combined with X-Remove-Display-Name".into(),
            });
        }
        (Some(name), false) => Change::Set(name),
        (None, true) => Change::Clear,
        (None, false) => Change::Keep,
    };
    if let Some(raw) = req.extend_expiry {
        let seconds = raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| PasteError::InvalidInput {
                name: "X-Extend-Expiry",
                reason: "must be a positive number of seconds".into(),
            })?;
        changes.extend = Some((seconds.min(policy.expiry.max), now + policy.expiry.max));
    }
    if changes.is_empty() && new_password.is_none() {
        return Err(PasteError::NoUpdates);
    }
    // The expensive hash runs last, once everything else is known to be valid.
    if let Some(p) = new_password {
        changes.password_hash = Change::Set(password::hash(&p, rng));
    }
    store::update(db, id, owner, now, changes)?.ok_or(PasteError::NotFound)
}

/// Deletes a paste owned by the client (or any paste, for the admin).
pub fn delete(db: &dyn Sql, now: i64, who: &Identity, id: &str) -> Result<(), PasteError> {
    if !is_valid_id(id) {
        return Err(PasteError::InvalidId);
    }
    require_fingerprint(who)?;
    let meta = store::meta(db, id, now)?.ok_or(PasteError::NotFound)?;
    if !who.may_manage(meta.owner.as_deref()) {
        return Err(PasteError::PermissionDenied);
    }
    if store::delete(db, id)? {
        Ok(())
    } else {
        Err(PasteError::NotFound)
    }
}

/// The query of `GET /pastes`, already parsed into numbers.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub mime_glob: Option<String>,
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub all: bool,
}

/// The client's pastes (everyone's with `all`, admin only), newest first.
pub fn list(
    db: &dyn Sql,
    now: i64,
    who: &Identity,
    req: ListRequest,
) -> Result<(Vec<PasteMeta>, i64, ListFilter), PasteError> {
    let fingerprint = require_fingerprint(who)?;
    if req.all && !who.admin {
        return Err(PasteError::AdminRequired);
    }
    let filter = ListFilter {
        owner: (!req.all).then(|| fingerprint.to_owned()),
        mime_glob: req.mime_glob.filter(|g| !g.is_empty()),
        created_after: req.after,
        created_before: req.before,
        limit: req
            .limit
            .unwrap_or(LIST_LIMIT_DEFAULT)
            .clamp(1, LIST_LIMIT_MAX),
        offset: req.offset.unwrap_or(0).max(0),
    };
    let (pastes, total) = store::list(db, &filter, now)?;
    Ok((pastes, total, filter))
}

/// Deletes expired pastes; returns how many.
pub fn cleanup(db: &dyn Sql, now: i64) -> Result<u64, StoreError> {
    store::delete_expired(db, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::SeqRng;
    use crate::store::migrations::ensure_schema;
    use crate::store::native::NativeSqlite;

    const FP: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";
    const OTHER: &str = "ffffffffffffffffffffffffffffffffffffffff";

    fn policy() -> Policy {
        Policy {
            max_anon: 100,
            max_auth: 1000,
            expiry: ExpiryPolicy {
                anonymous: 86_400,
                untrusted: 604_800,
                trusted: 2_592_000,
                max: 7_776_000,
            },
        }
    }

    fn db() -> NativeSqlite {
        let db = NativeSqlite::memory();
        ensure_schema(&db).unwrap();
        db
    }

    fn text(content: &str) -> CreateRequest {
        bytes(content.as_bytes().to_vec())
    }

    fn bytes(content: Vec<u8>) -> CreateRequest {
        CreateRequest {
            mime_type: mime::detect(&content, None),
            content,
            ..CreateRequest::default()
        }
    }

    #[test]
    fn truthy_values_are_the_documented_ones() {
        for yes in ["true", "TRUE", "1", "yes", "Yes", " true "] {
            assert!(is_truthy(yes), "{yes}");
        }
        for no in ["false", "0", "no", "", "y", "on"] {
            assert!(!is_truthy(no), "{no}");
        }
    }

    #[test]
    fn ids_are_lowercase_hex_of_sane_length() {
        let id = new_id(&SeqRng::default());
        assert_eq!(id.len(), 16);
        assert!(is_valid_id(&id));
        assert!(!is_valid_id("ABCDEF0123456789"));
        assert!(!is_valid_id("abc"));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(!is_valid_id("../../etc/passwd"));
        assert!(!is_valid_id("0123456789abcdeg"));
    }

    #[test]
    fn display_names_are_checked() {
        assert_eq!(validate_display_name("  notes "), Ok("notes".into()));
        assert_eq!(validate_display_name(&"é".repeat(128)), Ok("é".repeat(128)));
        assert_eq!(
            validate_display_name(&"x".repeat(129)),
            Err(PasteError::DisplayNameTooLong)
        );
        for bad in ["a\tb", "a\u{7f}b", "a\u{202e}b", "a\u{0}b"] {
            assert_eq!(
                validate_display_name(bad),
                Err(PasteError::DisplayNameInvalid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn create_then_read_round_trip() {
        let db = db();
        let rng = SeqRng::default();
        let who = Identity::anonymous();
        let meta = create(&db, &rng, 1000, &who, &policy(), text("hello")).unwrap();
        assert_eq!(meta.mime_type, "text/plain");
        assert_eq!(meta.expires_at, 1000 + 86_400);
        assert_eq!(meta.owner, None);
        let raw = raw(&db, 1001, &meta.id, None, Access::Read).unwrap();
        assert_eq!(raw.content, b"hello");
        assert!(!raw.burned);
        let again = metadata(&db, 1002, &meta.id, None, Access::Read).unwrap();
        assert_eq!(again.size, 5);
        // Access is recorded at a minute's granularity: not yet.
        assert_eq!(again.last_accessed, 1000);
        super::raw(&db, 1060, &meta.id, None, Access::Read).unwrap();
        let later = metadata(&db, 1061, &meta.id, None, Access::Peek).unwrap();
        assert_eq!(later.last_accessed, 1060);
    }

    /// Draws the given byte for each call in turn, then 0xff forever.
    struct ScriptedRng(std::cell::RefCell<Vec<u8>>);

    impl Rng for ScriptedRng {
        fn fill(&self, buf: &mut [u8]) {
            let next = self.0.borrow_mut().pop().unwrap_or(0xff);
            buf.fill(next);
        }
    }

    #[test]
    fn id_collisions_are_retried_without_losing_content() {
        let db = db();
        let who = Identity::anonymous();
        create(
            &db,
            &ScriptedRng(vec![0].into()),
            0,
            &who,
            &policy(),
            text("first"),
        )
        .unwrap();
        // Two draws collide with the existing id, the third is free.
        let rng = ScriptedRng(vec![1, 0, 0].into());
        let meta = create(&db, &rng, 0, &who, &policy(), text("second")).unwrap();
        assert_eq!(meta.id, "0101010101010101");
        assert_eq!(
            raw(&db, 0, &meta.id, None, Access::Read).unwrap().content,
            b"second"
        );
        // When every draw collides the request fails cleanly.
        let rng = ScriptedRng(vec![0, 0, 0].into());
        assert!(matches!(
            create(&db, &rng, 0, &who, &policy(), text("third")),
            Err(PasteError::Store(_))
        ));
    }

    #[test]
    fn size_limits_depend_on_authentication() {
        let db = db();
        let rng = SeqRng::default();
        let err = create(
            &db,
            &rng,
            0,
            &Identity::anonymous(),
            &policy(),
            text(&"x".repeat(101)),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PasteError::TooLarge {
                size: 101,
                max: 100,
                authenticated: false
            }
        );
        create(
            &db,
            &rng,
            0,
            &Identity::untrusted(FP.into()),
            &policy(),
            text(&"x".repeat(101)),
        )
        .unwrap();
    }

    #[test]
    fn empty_content_is_rejected() {
        let err = create(
            &db(),
            &SeqRng::default(),
            0,
            &Identity::anonymous(),
            &policy(),
            text(""),
        )
        .unwrap_err();
        assert_eq!(err, PasteError::NoContent);
    }

    #[test]
    fn expired_pastes_are_invisible_and_cleaned_up() {
        let db = db();
        let rng = SeqRng::default();
        let mut req = text("short-lived");
        req.expiry = Some("10".into());
        let meta = create(&db, &rng, 100, &Identity::anonymous(), &policy(), req).unwrap();
        assert!(metadata(&db, 109, &meta.id, None, Access::Peek).is_ok());
        assert_eq!(
            metadata(&db, 110, &meta.id, None, Access::Peek),
            Err(PasteError::NotFound)
        );
        assert_eq!(cleanup(&db, 109).unwrap(), 0);
        assert_eq!(cleanup(&db, 110).unwrap(), 1);
    }

    #[test]
    fn burn_after_read_gives_content_once_and_head_never_burns() {
        let db = db();
        let mut req = text("secret");
        req.burn_after_read = true;
        let meta = create(
            &db,
            &SeqRng::default(),
            0,
            &Identity::anonymous(),
            &policy(),
            req,
        )
        .unwrap();
        assert!(raw(&db, 1, &meta.id, None, Access::Peek).is_ok());
        assert!(metadata(&db, 1, &meta.id, None, Access::Read).is_ok());
        let first = raw(&db, 1, &meta.id, None, Access::Read).unwrap();
        assert_eq!(first.content, b"secret");
        assert!(first.burned);
        assert_eq!(
            raw(&db, 1, &meta.id, None, Access::Read).unwrap_err(),
            PasteError::NotFound
        );
    }

    #[test]
    fn concurrent_burn_has_exactly_one_winner() {
        let dir = tempdir();
        let path = dir.join("burn.db");
        let setup = NativeSqlite::open(&path);
        ensure_schema(&setup).unwrap();
        let mut req = text("only once");
        req.burn_after_read = true;
        let id = create(
            &setup,
            &SeqRng::default(),
            0,
            &Identity::anonymous(),
            &policy(),
            req,
        )
        .unwrap()
        .id;
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (path, id) = (&path, &id);
                    s.spawn(move || {
                        let db = NativeSqlite::open(path);
                        match raw(&db, 1, id, None, Access::Read) {
                            Ok(r) => {
                                assert_eq!(r.content, b"only once");
                                1
                            }
                            Err(PasteError::NotFound) => 0,
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "wasmpaste-test-{}-{}",
            std::process::id(),
            crate::domain::uuid_v4(&crate::domain::OsRng)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn passwords_are_required_checked_and_never_stored_plain() {
        let db = db();
        let rng = SeqRng::default();
        let mut req = text("protected");
        req.password = Some(b"hunter2".to_vec());
        let meta = create(&db, &rng, 0, &Identity::anonymous(), &policy(), req).unwrap();
        let stored = meta.password_hash.clone().unwrap();
        assert!(!stored.contains("hunter2"));
        assert_eq!(
            metadata(&db, 1, &meta.id, None, Access::Read),
            Err(PasteError::PasswordRequired)
        );
        assert_eq!(
            metadata(&db, 1, &meta.id, Some(b"wrong"), Access::Read),
            Err(PasteError::InvalidPassword)
        );
        assert_eq!(
            raw(&db, 1, &meta.id, None, Access::Read).unwrap_err(),
            PasteError::PasswordRequired
        );
        assert_eq!(
            raw(&db, 1, &meta.id, Some(b"hunter2"), Access::Read)
                .unwrap()
                .content,
            b"protected"
        );
    }

    #[test]
    fn only_the_owner_updates_and_deletes() {
        let db = db();
        let rng = SeqRng::default();
        let owner = Identity::untrusted(FP.into());
        let meta = create(&db, &rng, 0, &owner, &policy(), text("v1")).unwrap();
        let other = Identity::untrusted(OTHER.into());
        let upd = || UpdateRequest {
            content: Some((b"v2".to_vec(), None)),
            ..UpdateRequest::default()
        };
        assert_eq!(
            update(&db, &rng, 1, &other, &policy(), &meta.id, upd()),
            Err(PasteError::PermissionDenied)
        );
        assert_eq!(
            update(
                &db,
                &rng,
                1,
                &Identity::anonymous(),
                &policy(),
                &meta.id,
                upd()
            ),
            Err(PasteError::AuthenticationRequired)
        );
        assert_eq!(
            update(
                &db,
                &rng,
                1,
                &owner,
                &policy(),
                &meta.id,
                UpdateRequest::default()
            ),
            Err(PasteError::NoUpdates)
        );
        let updated = update(&db, &rng, 1, &owner, &policy(), &meta.id, upd()).unwrap();
        assert_eq!(updated.size, 2);
        assert_eq!(
            raw(&db, 2, &meta.id, None, Access::Read).unwrap().content,
            b"v2"
        );
        assert_eq!(
            delete(&db, 3, &other, &meta.id),
            Err(PasteError::PermissionDenied)
        );
        let admin = Identity {
            admin: true,
            ..Identity::untrusted(OTHER.into())
        };
        delete(&db, 3, &admin, &meta.id).unwrap();
        assert_eq!(delete(&db, 3, &owner, &meta.id), Err(PasteError::NotFound));
    }

    #[test]
    fn extend_expiry_never_passes_the_cap() {
        let db = db();
        let rng = SeqRng::default();
        let owner = Identity::untrusted(FP.into());
        let meta = create(&db, &rng, 0, &owner, &policy(), text("x")).unwrap();
        let ext = |v: &str| UpdateRequest {
            extend_expiry: Some(v.into()),
            ..UpdateRequest::default()
        };
        let m = update(&db, &rng, 0, &owner, &policy(), &meta.id, ext("100")).unwrap();
        assert_eq!(m.expires_at, 604_900);
        let m = update(&db, &rng, 0, &owner, &policy(), &meta.id, ext("99999999")).unwrap();
        assert_eq!(m.expires_at, 7_776_000);
        assert!(matches!(
            update(&db, &rng, 0, &owner, &policy(), &meta.id, ext("-1")),
            Err(PasteError::InvalidInput { .. })
        ));
    }

    #[test]
    fn burn_pastes_cannot_be_updated() {
        let db = db();
        let rng = SeqRng::default();
        let owner = Identity::untrusted(FP.into());
        let mut req = text("x");
        req.burn_after_read = true;
        let meta = create(&db, &rng, 0, &owner, &policy(), req).unwrap();
        let upd = UpdateRequest {
            remove_display_name: true,
            ..UpdateRequest::default()
        };
        assert_eq!(
            update(&db, &rng, 0, &owner, &policy(), &meta.id, upd),
            Err(PasteError::BurnNotUpdatable)
        );
    }

    #[test]
    fn listing_filters_and_pages() {
        let db = db();
        let rng = SeqRng::default();
        let owner = Identity::untrusted(FP.into());
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\0".to_vec();
        for t in 0..5 {
            create(&db, &rng, t, &owner, &policy(), text("t")).unwrap();
        }
        create(&db, &rng, 10, &owner, &policy(), bytes(png)).unwrap();
        create(
            &db,
            &rng,
            11,
            &Identity::untrusted(OTHER.into()),
            &policy(),
            text("other"),
        )
        .unwrap();
        let (pastes, total, _) = list(&db, 20, &owner, ListRequest::default()).unwrap();
        assert_eq!(total, 6);
        assert_eq!(pastes[0].mime_type, "image/png");
        let (pastes, total, _) = list(
            &db,
            20,
            &owner,
            ListRequest {
                mime_glob: Some("image/*".into()),
                ..ListRequest::default()
            },
        )
        .unwrap();
        assert_eq!((pastes.len(), total), (1, 1));
        let (pastes, total, f) = list(
            &db,
            20,
            &owner,
            ListRequest {
                limit: Some(2),
                offset: Some(1),
                after: Some(0),
                before: Some(10),
                ..ListRequest::default()
            },
        )
        .unwrap();
        assert_eq!(total, 4);
        assert_eq!(
            pastes.iter().map(|p| p.created_at).collect::<Vec<_>>(),
            vec![3, 2]
        );
        assert_eq!((f.limit, f.offset), (2, 1));
        assert_eq!(
            list(
                &db,
                20,
                &owner,
                ListRequest {
                    all: true,
                    ..ListRequest::default()
                }
            )
            .unwrap_err(),
            PasteError::AdminRequired
        );
        assert_eq!(
            list(&db, 20, &Identity::anonymous(), ListRequest::default()).unwrap_err(),
            PasteError::AuthenticationRequired
        );
    }
}
