//! SQL for pastes. Each function is one statement, except `list` (rows + count).
//!
//! Reads filter on `expires_at > now`, so an expired paste is gone for clients
//! even before cleanup deletes it.

use super::migrations::{self, Meta};
use super::{Row, Sql, SqlExt, StoreError, Value};

/// Everything about a paste except its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasteMeta {
    pub id: String,
    pub size: i64,
    pub mime_type: String,
    pub owner: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub burn_after_read: bool,
    pub created_at: i64,
    pub last_accessed: i64,
    pub expires_at: i64,
}

/// Columns decoded by [`decode_meta`], in order.
const META_COLUMNS: &str = "id, size, mime_type, owner, display_name, password_hash, \
                            burn_after_read, created_at, last_accessed, expires_at";

/// Index of the first column after [`META_COLUMNS`].
const AFTER_META: usize = 10;

fn decode_meta(row: &Row) -> Result<PasteMeta, StoreError> {
    Ok(PasteMeta {
        id: row.text(0)?,
        size: row.i64(1)?,
        mime_type: row.text(2)?,
        owner: row.opt_text(3)?,
        display_name: row.opt_text(4)?,
        password_hash: row.opt_text(5)?,
        burn_after_read: row.bool(6)?,
        created_at: row.i64(7)?,
        last_accessed: row.i64(8)?,
        expires_at: row.i64(9)?,
    })
}

/// A paste about to be stored.
#[derive(Debug, Clone)]
pub struct NewPaste {
    pub id: String,
    pub content: Vec<u8>,
    pub mime_type: String,
    pub owner: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub burn_after_read: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Why an insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// The id is taken; the paste comes back (content uncopied) for another try.
    IdTaken(Box<NewPaste>),
    Store(StoreError),
}

/// Inserts a paste.
pub fn insert(db: &dyn Sql, mut paste: NewPaste) -> Result<(), InsertError> {
    let size = i64::try_from(paste.content.len())
        .map_err(|_| InsertError::Store(StoreError::Decode("paste size overflows i64".into())))?;
    let content = std::mem::take(&mut paste.content);
    let (result, mut params) = db.run(
        "INSERT INTO pastes (id, size, mime_type, owner, display_name, password_hash, \
         burn_after_read, created_at, last_accessed, expires_at, content) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
        vec![
            paste.id.as_str().into(),
            size.into(),
            paste.mime_type.as_str().into(),
            paste.owner.clone().into(),
            paste.display_name.clone().into(),
            paste.password_hash.clone().into(),
            paste.burn_after_read.into(),
            paste.created_at.into(),
            paste.expires_at.into(),
            Value::Blob(content),
        ],
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_constraint_violation() => {
            if let Some(Value::Blob(content)) = params.pop() {
                paste.content = content;
            }
            Err(InsertError::IdTaken(Box::new(paste)))
        }
        Err(e) => Err(InsertError::Store(e)),
    }
}

/// Metadata of a live paste, without touching it (HEAD, ownership checks).
pub fn meta(db: &dyn Sql, id: &str, now: i64) -> Result<Option<PasteMeta>, StoreError> {
    db.query_opt(
        &format!("SELECT {META_COLUMNS} FROM pastes WHERE id = ?1 AND expires_at > ?2"),
        vec![id.into(), now.into()],
    )?
    .as_ref()
    .map(decode_meta)
    .transpose()
}

/// A paste's metadata and, when it could be returned at once, its content.
pub type Touched = (PasteMeta, Option<Vec<u8>>);

/// How stale a paste's `last_accessed` may get. A read records its access
/// only when the stored time is at least this old, so nearly every read is a
/// plain `SELECT`, which never waits for SQLite's write lock nor writes a page
/// (the reference writes the time on every GET; nothing reads it at a finer
/// grain than this).
pub const ACCESS_GRANULARITY_SECS: i64 = 60;

/// A read's one statement (`GET /{id}`, `GET /{id}/raw`): the bookkeeping
/// row, and the live paste's metadata with, when `with_content` and the paste
/// is neither protected nor burn-after-read, its content. Folding the `meta`
/// row in makes the schema check free (`Ctx::read`).
///
/// `UNION ALL` of two single-table queries rather than a join: SQLite
/// re-prepares a statement whose `LEFT JOIN` constrains a bound parameter at
/// every execution (its parse cost more than the second statement it saves),
/// while these stay in the statement cache. Each row says which it is.
pub fn read(
    db: &dyn Sql,
    id: &str,
    now: i64,
    with_content: bool,
) -> Result<(Meta, Option<Touched>), StoreError> {
    let content = if with_content {
        "CASE WHEN password_hash IS NULL AND burn_after_read = 0 THEN content END"
    } else {
        "NULL"
    };
    let meta_width = migrations::META_COLUMNS.split(", ").count();
    let nulls = |n: usize| vec!["NULL"; n].join(", ");
    let rows = db.execute(
        &format!(
            "SELECT {META_COLUMNS}, {content}, {} FROM pastes WHERE id = ?1 AND expires_at > ?2 \
             UNION ALL SELECT {}, {} FROM meta WHERE id = 1",
            nulls(meta_width),
            nulls(AFTER_META + 1),
            migrations::META_COLUMNS,
        ),
        vec![id.into(), now.into()],
    )?;
    let (mut meta, mut found) = (None, None);
    for mut row in rows {
        if matches!(row.0.first(), Some(Value::Null) | None) {
            meta = Some(migrations::decode_meta(&row, AFTER_META + 1)?);
            continue;
        }
        let paste = decode_meta(&row)?;
        let content = match row.0.get(AFTER_META) {
            Some(Value::Null) | None => None,
            Some(_) => Some(row.take_blob(AFTER_META)?),
        };
        found = Some((paste, content));
    }
    let meta = meta.ok_or_else(|| StoreError::Decode("no bookkeeping row".into()))?;
    Ok((meta, found))
}

/// Whether a read at `now` should record its access ([`record_access`]).
pub fn access_due(paste: &PasteMeta, now: i64) -> bool {
    now - paste.last_accessed >= ACCESS_GRANULARITY_SECS
}

/// Records a read's access. Concurrent readers may all send it; the first
/// writes, the others match no row.
pub fn record_access(db: &dyn Sql, id: &str, now: i64) -> Result<(), StoreError> {
    db.execute(
        "UPDATE pastes SET last_accessed = ?2 WHERE id = ?1 AND last_accessed <= ?2 - ?3",
        vec![id.into(), now.into(), ACCESS_GRANULARITY_SECS.into()],
    )?;
    Ok(())
}

/// The content of a live paste (after its password was checked).
pub fn content(db: &dyn Sql, id: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
    db.query_opt(
        "SELECT content FROM pastes WHERE id = ?1 AND expires_at > ?2",
        vec![id.into(), now.into()],
    )?
    .map(|mut row| row.take_blob(0))
    .transpose()
}

/// Deletes a burn-after-read paste and returns its content. One statement:
/// of any number of concurrent readers exactly one gets `Some`.
pub fn burn(db: &dyn Sql, id: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
    db.query_opt(
        "DELETE FROM pastes WHERE id = ?1 AND expires_at > ?2 RETURNING content",
        vec![id.into(), now.into()],
    )?
    .map(|mut row| row.take_blob(0))
    .transpose()
}

/// A new value for a nullable column: leave it, set it, or clear it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Set(T),
    Clear,
}

/// The changes of `PUT /{id}`.
#[derive(Debug, Clone, Default)]
pub struct PasteUpdate {
    /// New content and its MIME type.
    pub content: Option<(Vec<u8>, String)>,
    pub password_hash: Change<String>,
    pub display_name: Change<String>,
    /// Seconds to add to the expiry, and the latest expiry allowed.
    pub extend: Option<(i64, i64)>,
}

impl PasteUpdate {
    pub fn is_empty(&self) -> bool {
        self.content.is_none()
            && self.password_hash == Change::Keep
            && self.display_name == Change::Keep
            && self.extend.is_none()
    }
}

/// Applies an update in one statement, only if `owner` still owns the live,
/// non-burn paste; `None` when that no longer holds.
pub fn update(
    db: &dyn Sql,
    id: &str,
    owner: &str,
    now: i64,
    update: PasteUpdate,
) -> Result<Option<PasteMeta>, StoreError> {
    let mut sets = Vec::new();
    let mut params: Vec<Value> = vec![id.into(), owner.into(), now.into()];
    let bind = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("?{}", params.len())
    };
    if let Some((content, mime)) = update.content {
        let size = i64::try_from(content.len())
            .map_err(|_| StoreError::Decode("paste size overflows i64".into()))?;
        sets.push(format!("size = {}", bind(size.into(), &mut params)));
        sets.push(format!("mime_type = {}", bind(mime.into(), &mut params)));
        sets.push(format!("content = {}", bind(content.into(), &mut params)));
    }
    for (column, change) in [
        ("password_hash", update.password_hash),
        ("display_name", update.display_name),
    ] {
        match change {
            Change::Keep => {}
            Change::Set(v) => sets.push(format!("{column} = {}", bind(v.into(), &mut params))),
            Change::Clear => sets.push(format!("{column} = NULL")),
        }
    }
    if let Some((seconds, latest)) = update.extend {
        let s = bind(seconds.into(), &mut params);
        let l = bind(latest.into(), &mut params);
        // Never shortens a paste, never extends it past the cap.
        sets.push(format!(
            "expires_at = MAX(expires_at, MIN(expires_at + {s}, {l}))"
        ));
    }
    if sets.is_empty() {
        return meta(db, id, now);
    }
    let sql = format!(
        "UPDATE pastes SET {} WHERE id = ?1 AND owner = ?2 AND burn_after_read = 0 \
         AND expires_at > ?3 RETURNING {META_COLUMNS}",
        sets.join(", ")
    );
    db.query_opt(&sql, params)?
        .as_ref()
        .map(decode_meta)
        .transpose()
}

/// Deletes a paste; `false` when it was already gone.
pub fn delete(db: &dyn Sql, id: &str) -> Result<bool, StoreError> {
    Ok(!db
        .execute(
            "DELETE FROM pastes WHERE id = ?1 RETURNING id",
            vec![id.into()],
        )?
        .is_empty())
}

/// Filters of `GET /pastes`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this owner's pastes; `None` lists everyone's (admin).
    pub owner: Option<String>,
    /// SQLite GLOB over the MIME type (`image/*`).
    pub mime_glob: Option<String>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of pastes, newest first, and the number of matches in total.
pub fn list(
    db: &dyn Sql,
    filter: &ListFilter,
    now: i64,
) -> Result<(Vec<PasteMeta>, i64), StoreError> {
    let mut conditions = vec!["expires_at > ?1".to_owned()];
    let mut params: Vec<Value> = vec![now.into()];
    let mut push = |cond: &str, v: Value| {
        params.push(v);
        conditions.push(cond.replace('?', &format!("?{}", params.len())));
    };
    if let Some(owner) = &filter.owner {
        push("owner = ?", owner.as_str().into());
    }
    if let Some(glob) = &filter.mime_glob {
        push("mime_type GLOB ?", glob.as_str().into());
    }
    if let Some(after) = filter.created_after {
        push("created_at > ?", after.into());
    }
    if let Some(before) = filter.created_before {
        push("created_at < ?", before.into());
    }
    let where_clause = conditions.join(" AND ");
    let total = db
        .query_one(
            &format!("SELECT COUNT(*) FROM pastes WHERE {where_clause}"),
            params.clone(),
        )?
        .i64(0)?;
    let n = params.len();
    params.push(filter.limit.into());
    params.push(filter.offset.into());
    let rows = db.execute(
        &format!(
            "SELECT {META_COLUMNS} FROM pastes WHERE {where_clause} \
             ORDER BY created_at DESC, id LIMIT ?{} OFFSET ?{}",
            n + 1,
            n + 2
        ),
        params,
    )?;
    let pastes = rows.iter().map(decode_meta).collect::<Result<_, _>>()?;
    Ok((pastes, total))
}

/// Deletes every expired paste; returns how many.
pub fn delete_expired(db: &dyn Sql, now: i64) -> Result<u64, StoreError> {
    let rows = db.execute(
        "DELETE FROM pastes WHERE expires_at <= ?1 RETURNING 1",
        vec![now.into()],
    )?;
    Ok(rows.len() as u64)
}
