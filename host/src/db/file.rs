//! The SQLite-file backend (rusqlite, bundled SQLite): a pool of connections
//! per database file. A connection per `open`, taken from the pool and given
//! back when dropped: never a fresh connection per request (closing the last
//! one checkpoints the WAL), never one shared by concurrent requests.
//!
//! Statements run inline on the async worker: the common statement is short
//! and uncontended, and a thread hop would cost more than the statement. One
//! that finds another writer holding the lock (`SQLITE_BUSY`, nothing
//! applied) is retried on tokio's blocking pool, so no async worker ever
//! waits in SQLite's busy handler.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmpaste_contract::sql;

use super::{AnyConnection, Connection, Database, DbError, Rows, Value};

/// How long a statement waits for another writer before failing. Below the
/// request deadline: epoch interruption cannot stop a guest inside a host
/// call. Connections wait only on the blocking pool; inline they fail at
/// once instead.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per database.
const MAX_IDLE: usize = 32;
/// A database holds pastes, the proof-of-work secret and the CA's encrypted
/// key: readable by the service's user alone, whatever the umask (systemd's
/// `UMask=0077` or a container's 022). SQLite gives the `-wal` and `-shm`
/// files the mode of the database file, so they follow.
const FILE_MODE: u32 = 0o600;
/// The database directory, when this host creates it.
const DIR_MODE: u32 = 0o700;

/// One SQLite database file and its idle connections.
pub struct FileDatabase {
    path: PathBuf,
    /// Largest size of the file; SQLite refuses writes beyond it (`SQLITE_FULL`).
    quota_bytes: Option<u64>,
    idle: Arc<Idle>,
}

/// Connections waiting for the next `open`.
struct Idle(Mutex<Vec<rusqlite::Connection>>);

impl Idle {
    fn give_back(&self, conn: rusqlite::Connection) {
        if !conn.is_autocommit() {
            // Unreachable while transactions are refused; kept as a guard so a
            // connection never returns to the pool inside a transaction.
            if conn.execute_batch("ROLLBACK").is_err() {
                return;
            }
        }
        if let Ok(mut idle) = self.0.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }
}

impl FileDatabase {
    /// Opens (creating if needed) the database file and its directory, and
    /// checks that it is usable, so a bad path fails at start, not per request.
    pub fn open(path: &Path, quota_bytes: Option<u64>) -> wasmtime::Result<Self> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|e| {
                    wasmtime::format_err!(
                        "cannot create the database directory {}: {e}{}",
                        dir.display(),
                        permission_hint(dir, &e)
                    )
                })?;
        }
        // Created here rather than by SQLite, which would use 0644 minus the
        // umask; and so that a directory this user may not write fails with
        // the system's reason, not SQLite's "unable to open database file".
        create_private(path).map_err(|e| {
            wasmtime::format_err!(
                "cannot create the database {}: {e}{}",
                path.display(),
                permission_hint(dir.unwrap_or(Path::new(".")), &e)
            )
        })?;
        let db = Self {
            path: path.to_path_buf(),
            quota_bytes,
            idle: Arc::new(Idle(Mutex::new(Vec::new()))),
        };
        let conn = db.connect().map_err(|e| {
            wasmtime::format_err!("cannot open the database {}: {e}", path.display())
        })?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| {
                wasmtime::format_err!("{} is not a usable SQLite database: {e}", path.display())
            })?;
        db.idle.give_back(conn);
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let mut conn = rusqlite::Connection::open(&self.path)?;
        sql::configure(&mut conn)?;
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
        conn.authorizer(Some(sql::guest_policy))?;
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        let idle = self.idle.0.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        self.idle.0.lock().map_or(0, |idle| idle.len())
    }
}

impl Database for FileDatabase {
    fn open(&self) -> Result<AnyConnection, DbError> {
        let conn = self.take().map_err(to_db_error)?;
        Ok(Box::new(FileConnection {
            conn: Some(conn),
            idle: Arc::clone(&self.idle),
        }))
    }

    /// Pages in use, including those still in the WAL. Read on a connection
    /// of its own, because guest connections refuse pragmas.
    fn size_bytes(&self) -> u64 {
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

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// A pooled connection; `None` only while a statement waits on the blocking
/// pool, or after such a wait was abandoned.
struct FileConnection {
    conn: Option<rusqlite::Connection>,
    idle: Arc<Idle>,
}

impl Drop for FileConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle.give_back(conn);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Connection for FileConnection {
    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, DbError> {
        let conn = self.conn.take().ok_or(DbError::InvalidConnection)?;
        // If the request is abandoned while the statement waits, the
        // connection is closed when the wait ends, never pooled mid-statement.
        let (conn, result) = execute(conn, sql, params).await;
        self.conn = conn;
        result
    }
}

/// Runs one statement inline without waiting for locks; only when another
/// connection holds the write lock is it retried on the blocking pool,
/// waiting up to [`BUSY_TIMEOUT`]. The connection comes back unless the
/// wait failed to finish.
async fn execute(
    raw: rusqlite::Connection,
    statement: String,
    params: Vec<Value>,
) -> (Option<rusqlite::Connection>, Result<Rows, DbError>) {
    match sql::query(&raw, &statement, &params) {
        Err(e) if is_busy(&e) => {}
        done => return (Some(raw), done.map_err(to_db_error)),
    }
    let waited = tokio::task::spawn_blocking(move || {
        let result = raw
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| sql::query(&raw, &statement, &params));
        // A connection that would wait inline must not go back to the pool.
        let reset = raw.busy_timeout(Duration::ZERO).is_ok();
        (reset.then_some(raw), result.map_err(to_db_error))
    })
    .await;
    waited.unwrap_or_else(|e| {
        (
            None,
            Err(DbError::Io(format!("the statement did not finish: {e}"))),
        )
    })
}

/// Creates the database file with [`FILE_MODE`] unless it exists (an
/// existing file keeps the mode its owner gave it).
fn create_private(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// For an error writing in `dir`: when permission was denied (a volume
/// mounted from a directory owned by root, say), who owns the directory, who
/// this process is, and the fix; otherwise nothing. The cache directory uses
/// it too.
pub fn permission_hint(dir: &Path, e: &std::io::Error) -> String {
    if e.kind() != ErrorKind::PermissionDenied {
        return String::new();
    }
    // The directory itself, or the nearest one that exists (the one that
    // refused to have a directory created in it).
    let existing = dir
        .ancestors()
        .find_map(|d| Some((d, std::fs::metadata(d).ok()?)));
    let (shown, owner) = match existing {
        Some((d, meta)) => (
            d.display().to_string(),
            format!(
                "is owned by uid {} (mode {:o})",
                meta.uid(),
                meta.mode() & 0o7777
            ),
        ),
        None => (dir.display().to_string(), "is not writable".to_owned()),
    };
    match effective_uid() {
        Some(uid) => format!(
            "\n  {shown} {owner} and wasmpaste runs as uid {uid}: make it writable by uid \
             {uid}, e.g. `chown -R {uid}:{uid} DIR` where DIR is {shown} or, in a container, \
             the host directory mounted there (rootless podman: `podman unshare chown -R \
             {uid}:{uid} DIR`)"
        ),
        None => format!("\n  {shown} {owner}: make it writable by the user wasmpaste runs as"),
    }
}

/// This process's effective user id, from `/proc/self/status` (the standard
/// library has no `geteuid`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    // Real, effective, saved, filesystem.
    uids.split_whitespace().nth(1)?.parse().ok()
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn to_db_error(e: rusqlite::Error) -> DbError {
    // Still locked after the busy timeout: nothing was applied, and the same
    // request a moment later may well succeed (the guest answers 503).
    if is_busy(&e) {
        return DbError::InvalidConnection;
    }
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => DbError::DatabaseFull,
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => DbError::AccessDenied,
        _ => DbError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, FileDatabase) {
        let dir = tempfile::tempdir().unwrap();
        let db = FileDatabase::open(&dir.path().join("nested/dir/t.db"), None).unwrap();
        (dir, db)
    }

    fn run(conn: &mut Box<dyn Connection>, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(conn.execute(sql.to_owned(), params.to_vec()))
    }

    #[test]
    fn guests_cannot_attach_pragma_or_hold_transactions() {
        let (dir, db) = temp_db();
        let mut c = db.open().unwrap();
        let other = dir.path().join("other.db");
        for sql in [
            format!("ATTACH DATABASE '{}' AS o", other.display()),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "PRAGMA max_page_count = 1000000".to_owned(),
            "BEGIN".to_owned(),
            "BEGIN IMMEDIATE".to_owned(),
            "SAVEPOINT s".to_owned(),
        ] {
            assert_eq!(run(&mut c, &sql, &[]), Err(DbError::AccessDenied), "{sql}");
        }
        assert!(!other.exists());
    }

    #[test]
    fn one_statement_per_call_and_errors_are_io() {
        let (_dir, db) = temp_db();
        let mut c = db.open().unwrap();
        for sql in ["SELECT 1; SELECT 2", "SELEKT", "SELECT ?1"] {
            assert!(
                matches!(run(&mut c, sql, &[]), Err(DbError::Io(_))),
                "{sql}"
            );
        }
    }

    #[test]
    fn connections_return_to_the_pool() {
        let (_dir, db) = temp_db();
        drop(db.open().unwrap());
        assert_eq!(db.idle_connections(), 1);
        let a = db.open().unwrap();
        let b = db.open().unwrap();
        assert_eq!(db.idle_connections(), 0);
        drop((a, b));
        assert_eq!(db.idle_connections(), 2);
    }

    #[test]
    fn the_quota_stops_writes_with_database_full_but_not_reads_or_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let db = FileDatabase::open(&dir.path().join("q.db"), Some(256 * 1024)).unwrap();
        let mut c = db.open().unwrap();
        run(&mut c, "CREATE TABLE t (b BLOB)", &[]).unwrap();
        let blob = Value::Blob(vec![7; 16 * 1024]);
        let mut stored = 0;
        let full = loop {
            match run(
                &mut c,
                "INSERT INTO t VALUES (?1)",
                std::slice::from_ref(&blob),
            ) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 100, "the quota never applied");
        };
        assert_eq!(full, DbError::DatabaseFull);
        assert!(stored >= 8, "only {stored} rows fit in 256 KiB");
        let r = run(&mut c, "SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(r.rows[0][0], Value::Integer(stored));
        run(&mut c, "DELETE FROM t WHERE rowid % 2 = 0", &[]).unwrap();
        run(&mut c, "INSERT INTO t VALUES (?1)", &[blob]).unwrap();
        // A connection opened later gets the same quota.
        let mut other = db.open().unwrap();
        let huge = Value::Blob(vec![1; 512 * 1024]);
        assert_eq!(
            run(&mut other, "INSERT INTO t VALUES (?1)", &[huge]),
            Err(DbError::DatabaseFull)
        );
        assert!(db.size_bytes() <= 256 * 1024 + 4096);
    }

    #[tokio::test]
    async fn a_locked_database_is_waited_for_on_the_blocking_pool_only() {
        let (_dir, db) = temp_db();
        let writer = db.take().unwrap();
        sql::query(&writer, "CREATE TABLE t (x)", &[]).unwrap();
        // Another writer (another host sharing the file) holds the lock a while.
        let locker = rusqlite::Connection::open(db.path()).unwrap();
        locker
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (0)")
            .unwrap();
        // Inline, a pooled connection does not wait: it fails at once.
        let inline = sql::query(&writer, "INSERT INTO t VALUES (1)", &[]).unwrap_err();
        assert!(is_busy(&inline), "{inline}");
        // Given up on a lock, a statement is unavailable (503), not an error (500).
        assert_eq!(to_db_error(inline), DbError::InvalidConnection);
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
            &sql::query(&writer, "INSERT INTO t VALUES (3)", &[]).unwrap_err()
        ));
        locker.execute_batch("ROLLBACK").unwrap();
        let (_, rows) = execute(writer, "SELECT x FROM t ORDER BY x".into(), vec![]).await;
        assert_eq!(
            rows.unwrap().rows,
            [[Value::Integer(0)], [Value::Integer(2)]]
        );
    }

    #[test]
    fn the_database_its_companions_and_its_new_directory_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh/p.db");
        let db = FileDatabase::open(&path, None).unwrap();
        let mut c = db.open().unwrap();
        // A write while the connection is open: the -wal and -shm exist.
        run(&mut c, "CREATE TABLE t (x)", &[]).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        assert_eq!(mode(&dir.path().join("fresh")), 0o700);
        // An existing file keeps the mode its owner chose.
        let shared = dir.path().join("shared.db");
        std::fs::write(&shared, b"").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(FileDatabase::open(&shared, None).unwrap());
        assert_eq!(mode(&shared), 0o640);
    }

    #[test]
    fn a_directory_it_may_not_write_is_named_with_its_owner_the_uid_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet");
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        let hint = permission_hint(&missing, &denied);
        // The nearest directory that exists is the one that refused.
        assert!(
            hint.contains(&format!("{} is owned by uid", dir.path().display())),
            "{hint}"
        );
        let uid = effective_uid().unwrap();
        assert!(hint.contains(&format!("runs as uid {uid}")), "{hint}");
        assert!(hint.contains(&format!("chown -R {uid}:{uid}")), "{hint}");
        let other = std::io::Error::from(ErrorKind::NotFound);
        assert_eq!(permission_hint(&missing, &other), "");
    }

    #[test]
    fn unusable_files_fail_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x42; 4096]).unwrap();
        assert!(FileDatabase::open(&path, None).is_err());
    }
}
