//! `fermyon:spin/sqlite@2.0.0` on rusqlite: policy (which database a guest may
//! open) plus backend (a per-database connection pool).
//!
//! One connection per `open`, taken from a pool and given back when the guest
//! drops the resource: never one connection shared by concurrent requests
//! (guests interleave at epoch yields, so connection state would leak), and
//! never a fresh connection per request (closing the last one checkpoints the
//! WAL). Guests may not `ATTACH`, change pragmas or hold transactions open
//! across calls: a transaction parked at an epoch yield would hold the write
//! lock while every other writer waits in SQLite's busy handler.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::sqlite::{self, Error, QueryResult, RowResult, Value};
use crate::state::HostState;

/// The only database label a guest may open (Spin's default).
pub const DEFAULT_LABEL: &str = "default";
/// How long a statement waits for another writer before failing. Below the
/// request deadline: epoch interruption cannot stop a guest inside a host call.
/// Connections wait only on the blocking pool (see [`execute`]); inline
/// they fail at once instead.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 64;
/// Idle connections kept per database.
const MAX_IDLE: usize = 32;
/// Connections one request may hold open at once.
pub const MAX_OPEN_PER_REQUEST: usize = 4;

/// One SQLite database file and its idle connections.
pub struct Database {
    path: PathBuf,
    /// Largest size of the file; SQLite refuses writes beyond it (`SQLITE_FULL`).
    quota_bytes: Option<u64>,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl Database {
    /// Opens (creating if needed) the database file and its directory, and
    /// checks that it is usable, so a bad path fails at start, not per request.
    pub fn open(path: &Path, quota_bytes: Option<u64>) -> wasmtime::Result<Arc<Self>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                wasmtime::format_err!(
                    "cannot create the database directory {}: {e}",
                    dir.display()
                )
            })?;
        }
        let db = Arc::new(Self {
            path: path.to_path_buf(),
            quota_bytes,
            idle: Mutex::new(Vec::new()),
        });
        let conn = db.connect().map_err(|e| {
            wasmtime::format_err!("cannot open the database {}: {e}", path.display())
        })?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| {
                wasmtime::format_err!("{} is not a usable SQLite database: {e}", path.display())
            })?;
        db.give_back(conn);
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's size as the quota counts it: pages in use, including
    /// those still in the WAL. Read on a connection of its own, because
    /// guest connections refuse pragmas.
    pub fn size_bytes(&self) -> u64 {
        let size = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|conn| {
            let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok(pages.saturating_mul(page_size))
        });
        size.ok().and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
    }

    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let mut conn = rusqlite::Connection::open(&self.path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across application crashes in WAL mode; a power
        // loss can lose the last transactions, never corrupt the file.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::ZERO)?;
        if let Some(quota) = self.quota_bytes {
            // Per connection, as SQLite keeps it: a write that would grow the
            // file past the quota fails with SQLITE_FULL (the guest's 507),
            // while reads and deletes keep working.
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let page_size = u64::try_from(page_size).unwrap_or(4096).max(1);
            let pages = i64::try_from(quota / page_size).unwrap_or(i64::MAX).max(1);
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.authorizer(Some(guest_policy))?;
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        if !conn.is_autocommit() {
            // Unreachable while transactions are refused; kept as a guard so a
            // connection never returns to the pool inside a transaction.
            if conn.execute_batch("ROLLBACK").is_err() {
                return;
            }
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }
}

/// What guest statements may do.
fn guest_policy(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } | AuthAction::Pragma { .. } => {
            Authorization::Deny
        }
        AuthAction::Transaction {
            operation: TransactionOperation::Begin,
        }
        | AuthAction::Savepoint {
            operation: TransactionOperation::Begin,
            ..
        } => Authorization::Deny,
        _ => Authorization::Allow,
    }
}

/// The host side of a guest's `connection` resource.
pub struct Connection {
    conn: Option<rusqlite::Connection>,
    db: Arc<Database>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.db.give_back(conn);
        }
    }
}

impl Connection {
    #[cfg(test)]
    fn execute(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        let conn = self.conn.as_ref().ok_or(Error::InvalidConnection)?;
        run(conn, sql, params).map_err(to_wit_error)
    }
}

/// Runs one statement: inline, without waiting for locks, because the
/// common statement is short and uncontended and a thread hop would cost
/// more than the statement itself. Only when another connection holds the
/// write lock (`SQLITE_BUSY`, nothing applied: one autocommit statement) is
/// it retried on the blocking pool, waiting up to [`BUSY_TIMEOUT`], so no
/// async worker ever sits in SQLite's busy handler. The connection comes
/// back unless the wait failed to finish.
async fn execute(
    raw: rusqlite::Connection,
    sql: String,
    params: Vec<Value>,
) -> (Option<rusqlite::Connection>, Result<QueryResult, Error>) {
    match run(&raw, &sql, &params) {
        Err(e) if is_busy(&e) => {}
        done => return (Some(raw), done.map_err(to_wit_error)),
    }
    let waited = tokio::task::spawn_blocking(move || {
        let result = raw
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| run(&raw, &sql, &params));
        // A connection that would wait inline must not go back to the pool.
        let reset = raw.busy_timeout(Duration::ZERO).is_ok();
        (reset.then_some(raw), result.map_err(to_wit_error))
    })
    .await;
    waited.unwrap_or_else(|e| {
        (
            None,
            Err(Error::Io(format!("the statement did not finish: {e}"))),
        )
    })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs one statement and collects its rows.
fn run(conn: &rusqlite::Connection, sql: &str, params: &[Value]) -> rusqlite::Result<QueryResult> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let bound = params.iter().map(|v| {
        ToSqlOutput::Borrowed(match v {
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Null => ValueRef::Null,
        })
    });
    let mut rows = stmt.query(rusqlite::params_from_iter(bound))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

fn to_wit_error(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Error::DatabaseFull,
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => Error::AccessDenied,
        _ => Error::Io(e.to_string()),
    }
}

/// Per-request SQL state: which database this guest may open, and how many
/// connections it holds.
pub struct SqliteCtx {
    db: Arc<Database>,
    open: usize,
}

impl SqliteCtx {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db, open: 0 }
    }
}

impl sqlite::Host for HostState {}

impl sqlite::HostConnection for HostState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        // Spin's rule: a label the component was not granted is access-denied.
        if database != DEFAULT_LABEL {
            return Ok(Err(Error::AccessDenied));
        }
        if self.sqlite.open >= MAX_OPEN_PER_REQUEST {
            return Ok(Err(Error::Io(format!(
                "too many open connections (at most {MAX_OPEN_PER_REQUEST} per request)"
            ))));
        }
        let conn = match self.sqlite.db.take() {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        self.sqlite.open += 1;
        let resource = self.table.push(Connection {
            conn: Some(conn),
            db: Arc::clone(&self.sqlite.db),
        })?;
        Ok(Ok(resource))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let Some(raw) = self.table.get_mut(&conn)?.conn.take() else {
            return Ok(Err(Error::InvalidConnection));
        };
        // If the request is abandoned while the statement waits, the
        // connection is closed when the wait ends, never pooled mid-statement.
        let (raw, result) = execute(raw, statement, parameters).await;
        self.table.get_mut(&conn)?.conn = raw;
        Ok(result)
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        self.sqlite.open = self.sqlite.open.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("nested/dir/t.db"), None).unwrap();
        (dir, db)
    }

    fn conn(db: &Arc<Database>) -> Connection {
        Connection {
            conn: Some(db.take().unwrap()),
            db: Arc::clone(db),
        }
    }

    #[test]
    fn round_trips_every_value_type() {
        let (_dir, db) = temp_db();
        let c = conn(&db);
        c.execute("CREATE TABLE t (a, b, c, d, e)", &[]).unwrap();
        c.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                Value::Integer(-7),
                Value::Real(1.5),
                Value::Text("héllo".into()),
                Value::Blob(vec![0, 255]),
                Value::Null,
            ],
        )
        .unwrap();
        let r = c.execute("SELECT a, b, c, d, e FROM t", &[]).unwrap();
        assert_eq!(r.columns, ["a", "b", "c", "d", "e"]);
        assert!(matches!(
            r.rows[0].values.as_slice(),
            [
                Value::Integer(-7),
                Value::Real(f),
                Value::Text(t),
                Value::Blob(b),
                Value::Null
            ] if *f == 1.5 && t == "héllo" && b == &[0, 255]
        ));
    }

    #[test]
    fn guests_cannot_attach_pragma_or_hold_transactions() {
        let (dir, db) = temp_db();
        let c = conn(&db);
        let other = dir.path().join("other.db");
        for sql in [
            format!("ATTACH DATABASE '{}' AS o", other.display()),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "PRAGMA max_page_count = 1000000".to_owned(),
            "BEGIN".to_owned(),
            "BEGIN IMMEDIATE".to_owned(),
            "SAVEPOINT s".to_owned(),
        ] {
            assert!(
                matches!(c.execute(&sql, &[]), Err(Error::AccessDenied)),
                "{sql}"
            );
        }
        assert!(!other.exists());
    }

    #[test]
    fn one_statement_per_call_and_errors_are_io() {
        let (_dir, db) = temp_db();
        let c = conn(&db);
        assert!(matches!(
            c.execute("SELECT 1; SELECT 2", &[]),
            Err(Error::Io(_))
        ));
        assert!(matches!(c.execute("SELEKT", &[]), Err(Error::Io(_))));
        assert!(matches!(c.execute("SELECT ?1", &[]), Err(Error::Io(_))));
    }

    #[test]
    fn connections_return_to_the_pool() {
        let (_dir, db) = temp_db();
        drop(conn(&db));
        assert_eq!(db.idle.lock().unwrap().len(), 1);
        let a = conn(&db);
        let b = conn(&db);
        assert_eq!(db.idle.lock().unwrap().len(), 0);
        drop((a, b));
        assert_eq!(db.idle.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_quota_stops_writes_with_database_full_but_not_reads_or_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("q.db"), Some(256 * 1024)).unwrap();
        let c = conn(&db);
        c.execute("CREATE TABLE t (b BLOB)", &[]).unwrap();
        let blob = Value::Blob(vec![7; 16 * 1024]);
        let mut stored = 0;
        let full = loop {
            match c.execute("INSERT INTO t VALUES (?1)", std::slice::from_ref(&blob)) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 100, "the quota never applied");
        };
        assert!(matches!(full, Error::DatabaseFull), "{full:?}");
        assert!(stored >= 8, "only {stored} rows fit in 256 KiB");
        let r = c.execute("SELECT count(*) FROM t", &[]).unwrap();
        assert!(matches!(r.rows[0].values[0], Value::Integer(n) if n == stored));
        c.execute("DELETE FROM t WHERE rowid % 2 = 0", &[]).unwrap();
        c.execute("INSERT INTO t VALUES (?1)", &[blob]).unwrap();
        // A connection opened later gets the same quota.
        let other = conn(&db);
        let huge = Value::Blob(vec![1; 512 * 1024]);
        assert!(matches!(
            other.execute("INSERT INTO t VALUES (?1)", &[huge]),
            Err(Error::DatabaseFull)
        ));
    }

    #[tokio::test]
    async fn a_locked_database_is_waited_for_on_the_blocking_pool_only() {
        let (_dir, db) = temp_db();
        let writer = db.take().unwrap();
        run(&writer, "CREATE TABLE t (x)", &[]).unwrap();
        // Another writer (another host sharing the file) holds the lock a while.
        let locker = rusqlite::Connection::open(db.path()).unwrap();
        locker
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (0)")
            .unwrap();
        // Inline, a pooled connection does not wait: it fails at once.
        let inline = run(&writer, "INSERT INTO t VALUES (1)", &[]).unwrap_err();
        assert!(is_busy(&inline), "{inline}");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            locker.execute_batch("COMMIT").unwrap();
        });
        let (writer, result) = execute(
            writer,
            "INSERT INTO t VALUES (?1)".into(),
            vec![Value::Integer(2)],
        )
        .await;
        result.unwrap();
        release.join().unwrap();
        let writer = writer.expect("the connection comes back");
        // It is back to not waiting inline.
        let locker = rusqlite::Connection::open(db.path()).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(is_busy(
            &run(&writer, "INSERT INTO t VALUES (3)", &[]).unwrap_err()
        ));
        locker.execute_batch("ROLLBACK").unwrap();
        let (_, rows) = execute(writer, "SELECT x FROM t ORDER BY x".into(), vec![]).await;
        let xs: Vec<_> = rows.unwrap().rows.into_iter().map(|r| r.values).collect();
        assert!(matches!(
            xs.as_slice(),
            [a, b] if matches!(a[..], [Value::Integer(0)]) && matches!(b[..], [Value::Integer(2)])
        ));
    }

    #[test]
    fn unusable_files_fail_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x42; 4096]).unwrap();
        assert!(Database::open(&path, None).is_err());
    }
}
