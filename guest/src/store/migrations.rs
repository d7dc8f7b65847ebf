//! Schema migrations and the per-request bookkeeping row.
//!
//! Migrations are numbered `.sql` files; each statement is run on its own
//! (Spin's `execute` takes one statement) and must be idempotent, because
//! concurrent first requests, or several hosts, may migrate together.
//! The per-request cost is ONE query: the `meta` row, which also says when the
//! last cleanup ran.

use super::{Row, Sql, SqlExt, StoreError, Value};

/// `(version, SQL)`; append only, never edit a released file.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_pastes.sql")),
    (2, include_str!("../../migrations/0002_abuse.sql")),
    (3, include_str!("../../migrations/0003_short_urls.sql")),
    (4, include_str!("../../migrations/0004_pki.sql")),
    (5, include_str!("../../migrations/0005_wal.sql")),
];

/// The newest schema this build knows.
pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// What the per-request bookkeeping query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub schema_version: i64,
    pub last_cleanup: i64,
    /// The generated proof-of-work key, once some request has created it.
    pub pow_secret: Option<String>,
}

/// Makes sure the schema is current and returns the bookkeeping row.
///
/// The common case is one `SELECT`. A database written by a newer build is
/// used as it is: migrations only ever add.
pub fn ensure_schema(db: &dyn Sql) -> Result<Meta, StoreError> {
    match read_meta(db) {
        Ok(meta) if meta.is_current() => Ok(meta),
        Ok(meta) => {
            migrate_from(db, meta.schema_version)?;
            read_meta(db)
        }
        Err(e) if is_schema_missing(&e) => {
            migrate_from(db, read_version(db).unwrap_or(0))?;
            read_meta(db)
        }
        Err(e) => Err(e),
    }
}

/// Whether a statement failed for a schema that migrations would complete:
/// a fresh database has no `meta` table, an old one lacks newer columns.
pub fn is_schema_missing(e: &StoreError) -> bool {
    matches!(e, StoreError::Io(msg) if msg.contains("no such table") || msg.contains("no such column"))
}

impl Meta {
    /// Whether the schema needs no migration (a newer one is used as it is).
    pub fn is_current(&self) -> bool {
        self.schema_version >= LATEST
    }
}

/// The `meta` columns [`decode_meta`] reads, for statements that fold the
/// bookkeeping row into their own (`store::paste::read`).
pub const META_COLUMNS: &str = "schema_version, last_cleanup, pow_secret";

/// The [`META_COLUMNS`] of `row`, starting at column `at`.
pub fn decode_meta(row: &Row, at: usize) -> Result<Meta, StoreError> {
    Ok(Meta {
        schema_version: row.i64(at)?,
        last_cleanup: row.i64(at + 1)?,
        pow_secret: row.opt_text(at + 2)?,
    })
}

fn read_meta(db: &dyn Sql) -> Result<Meta, StoreError> {
    let row: Row = db.query_one(
        &format!("SELECT {META_COLUMNS} FROM meta WHERE id = 1"),
        vec![],
    )?;
    decode_meta(&row, 0)
}

/// The schema version alone: readable by every schema since the first.
fn read_version(db: &dyn Sql) -> Result<i64, StoreError> {
    db.query_one("SELECT schema_version FROM meta WHERE id = 1", vec![])?
        .i64(0)
}

fn migrate_from(db: &dyn Sql, current: i64) -> Result<(), StoreError> {
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        for statement in statements(sql) {
            match db.execute(&statement, vec![]) {
                Ok(_) => {}
                // A concurrent migration already added this column.
                Err(StoreError::Io(m)) if m.contains("duplicate column name") => {}
                // A PRAGMA tunes the file and changes no schema: where the
                // host refuses it (or it cannot run now), the schema is
                // still complete.
                Err(_) if is_pragma(&statement) => {}
                Err(e) => match read_version(db) {
                    // Another request finished this migration meanwhile.
                    Ok(v) if v >= *version => break,
                    _ => return Err(e),
                },
            }
        }
        db.execute(
            "UPDATE meta SET schema_version = ?1 WHERE id = 1 AND schema_version < ?1",
            vec![Value::Integer(*version)],
        )?;
    }
    Ok(())
}

/// The proof-of-work key stored in the database: `candidate` if none was
/// stored yet, else the one another request stored first (one statement, so
/// concurrent first uses agree).
pub fn pow_secret(db: &dyn Sql, candidate: String) -> Result<String, StoreError> {
    db.query_one(
        "UPDATE meta SET pow_secret = COALESCE(pow_secret, ?1) WHERE id = 1 RETURNING pow_secret",
        vec![Value::Text(candidate)],
    )?
    .text(0)
}

/// Splits a migration file into statements: `--` comment lines dropped, split on `;`.
fn is_pragma(statement: &str) -> bool {
    statement
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("PRAGMA"))
}

fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Claims the cleanup slot if the last pass is older than `interval` seconds.
/// One UPDATE: of many concurrent requests, exactly one wins the claim.
pub fn claim_cleanup(db: &dyn Sql, now: i64, interval: i64) -> Result<bool, StoreError> {
    let rows = db.execute(
        "UPDATE meta SET last_cleanup = ?1 WHERE id = 1 AND last_cleanup <= ?1 - ?2 RETURNING 1",
        vec![Value::Integer(now), Value::Integer(interval)],
    )?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::NativeSqlite;

    #[test]
    fn fresh_database_is_migrated_once_and_then_costs_one_query() {
        let db = NativeSqlite::memory();
        let meta = ensure_schema(&db).expect("migrate");
        assert_eq!(meta.schema_version, LATEST);
        assert_eq!(meta.last_cleanup, 0);
        let before = db.statements_run();
        ensure_schema(&db).expect("second call");
        assert_eq!(db.statements_run() - before, 1);
    }

    #[test]
    fn migrations_are_idempotent_when_raced() {
        let db = NativeSqlite::memory();
        migrate_from(&db, 0).expect("first");
        // A second request that saw the old version applies everything again.
        migrate_from(&db, 0).expect("second");
        assert_eq!(read_meta(&db).expect("meta").schema_version, LATEST);
    }

    #[test]
    fn cleanup_is_claimed_by_one_caller_per_interval() {
        let db = NativeSqlite::memory();
        ensure_schema(&db).expect("migrate");
        assert!(claim_cleanup(&db, 10_000, 3600).expect("claim"));
        assert!(!claim_cleanup(&db, 10_001, 3600).expect("claim"));
        assert!(claim_cleanup(&db, 10_000 + 3600, 3600).expect("claim"));
    }

    #[test]
    fn a_version_1_database_is_upgraded() {
        let db = NativeSqlite::memory();
        migrate_from(&db, 0).expect("migrate");
        // Roll back to what schema 1 looked like.
        db.execute("DROP TABLE pow_nonces", vec![]).unwrap();
        db.execute("ALTER TABLE meta DROP COLUMN pow_secret", vec![])
            .unwrap();
        db.execute("UPDATE meta SET schema_version = 1", vec![])
            .unwrap();
        let meta = ensure_schema(&db).expect("upgrade");
        assert_eq!(meta.schema_version, LATEST);
        assert_eq!(meta.pow_secret, None);
    }

    #[test]
    fn the_first_pow_secret_wins() {
        let db = NativeSqlite::memory();
        ensure_schema(&db).unwrap();
        assert_eq!(pow_secret(&db, "first".into()).unwrap(), "first");
        assert_eq!(pow_secret(&db, "second".into()).unwrap(), "first");
        assert_eq!(
            ensure_schema(&db).unwrap().pow_secret.as_deref(),
            Some("first")
        );
    }

    #[test]
    fn a_refused_pragma_does_not_stop_the_migration() {
        // Guest connections refuse every PRAGMA here, as on the native host.
        let db = NativeSqlite::memory();
        assert_eq!(ensure_schema(&db).expect("migrate").schema_version, LATEST);
        // Other failures still stop it.
        assert!(is_pragma("pragma journal_mode = WAL"));
        assert!(!is_pragma("PRAGM"));
    }

    #[test]
    fn statements_skip_comments_and_blanks() {
        let s =
            statements("-- a; comment\nCREATE TABLE a (x);\n\n-- x\nINSERT INTO a VALUES (1);\n");
        assert_eq!(s, vec!["CREATE TABLE a (x)", "INSERT INTO a VALUES (1)"]);
    }
}
