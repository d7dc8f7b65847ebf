//! SQL for short URLs. Each function is one statement, except `list` (rows +
//! count). Reads filter on `expires_at > now`, like pastes.

use super::{Row, Sql, SqlExt, StoreError};

/// A stored short URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortUrl {
    pub id: String,
    pub target_url: String,
    pub owner: Option<String>,
    pub created_at: i64,
    pub last_accessed: Option<i64>,
    pub access_count: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, target_url, owner, created_at, last_accessed, access_count, expires_at";

fn decode(row: &Row) -> Result<ShortUrl, StoreError> {
    Ok(ShortUrl {
        id: row.text(0)?,
        target_url: row.text(1)?,
        owner: row.opt_text(2)?,
        created_at: row.i64(3)?,
        last_accessed: row.opt_i64(4)?,
        access_count: row.i64(5)?,
        expires_at: row.i64(6)?,
    })
}

/// Inserts a new short URL; `Ok(false)` when its id is already taken.
pub fn insert(db: &dyn Sql, url: &ShortUrl) -> Result<bool, StoreError> {
    let result = db.execute(
        "INSERT INTO short_urls (id, target_url, owner, created_at, last_accessed, \
         access_count, expires_at) VALUES (?1, ?2, ?3, ?4, NULL, 0, ?5)",
        vec![
            url.id.as_str().into(),
            url.target_url.as_str().into(),
            url.owner.clone().into(),
            url.created_at.into(),
            url.expires_at.into(),
        ],
    );
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_constraint_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records one access and returns the target, in one statement, so N
/// concurrent redirects add exactly N.
pub fn hit(db: &dyn Sql, id: &str, now: i64) -> Result<Option<String>, StoreError> {
    db.query_opt(
        "UPDATE short_urls SET access_count = access_count + 1, last_accessed = ?2 \
         WHERE id = ?1 AND expires_at > ?2 RETURNING target_url",
        vec![id.into(), now.into()],
    )?
    .map(|row| row.text(0))
    .transpose()
}

/// A live short URL, without counting an access.
pub fn get(db: &dyn Sql, id: &str, now: i64) -> Result<Option<ShortUrl>, StoreError> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM short_urls WHERE id = ?1 AND expires_at > ?2"),
        vec![id.into(), now.into()],
    )?
    .as_ref()
    .map(decode)
    .transpose()
}

/// Deletes a short URL; `false` when it was already gone.
pub fn delete(db: &dyn Sql, id: &str) -> Result<bool, StoreError> {
    Ok(!db
        .execute(
            "DELETE FROM short_urls WHERE id = ?1 RETURNING id",
            vec![id.into()],
        )?
        .is_empty())
}

/// One page of an owner's live short URLs (everyone's for `None`), newest
/// first, and how many there are in total.
pub fn list(
    db: &dyn Sql,
    owner: Option<&str>,
    now: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ShortUrl>, i64), StoreError> {
    // `?2 IS NULL` lists everyone's (admin) with the same statement text.
    let filter = "expires_at > ?1 AND (?2 IS NULL OR owner = ?2)";
    let total = db
        .query_one(
            &format!("SELECT COUNT(*) FROM short_urls WHERE {filter}"),
            vec![now.into(), owner.into()],
        )?
        .i64(0)?;
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM short_urls WHERE {filter} \
             ORDER BY created_at DESC, id LIMIT ?3 OFFSET ?4"
        ),
        vec![now.into(), owner.into(), limit.into(), offset.into()],
    )?;
    let urls = rows.iter().map(decode).collect::<Result<_, _>>()?;
    Ok((urls, total))
}

/// Deletes every expired short URL; returns how many.
pub fn delete_expired(db: &dyn Sql, now: i64) -> Result<u64, StoreError> {
    let rows = db.execute(
        "DELETE FROM short_urls WHERE expires_at <= ?1 RETURNING 1",
        vec![now.into()],
    )?;
    Ok(rows.len() as u64)
}
