//! A rusqlite-backed [`Sql`] for native tests: the real SQL and migrations,
//! without wasm. It runs statements the way the native host does (the same
//! binding, connection settings and statement policy, from
//! `wasmpaste-contract`: one statement per call, no `ATTACH`, `PRAGMA` or
//! transactions) so tests catch what production would. With the
//! `native-store` feature it also backs the native benchmark server.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use wasmpaste_contract::sql;

use super::{Row, Sql, StoreError, Value};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct NativeSqlite {
    conn: rusqlite::Connection,
    statements: Cell<u64>,
}

impl NativeSqlite {
    pub fn memory() -> Self {
        rusqlite::Connection::open_in_memory()
            .and_then(Self::wrap)
            .expect("open in-memory sqlite")
    }

    #[cfg(test)]
    pub fn open(path: &Path) -> Self {
        Self::open_like_host(path).expect("open sqlite file")
    }

    /// Opens (or creates) a database file with the native host's connection
    /// settings and a busy timeout. Fails instead of panicking.
    pub fn open_like_host(path: &Path) -> Result<Self, StoreError> {
        let io = |e: rusqlite::Error| StoreError::Io(e.to_string());
        let mut conn = rusqlite::Connection::open(path).map_err(io)?;
        sql::configure(&mut conn).map_err(io)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(io)?;
        Self::wrap(conn).map_err(io)
    }

    fn wrap(mut conn: rusqlite::Connection) -> rusqlite::Result<Self> {
        conn.authorizer(Some(sql::guest_policy))?;
        Ok(Self {
            conn,
            statements: Cell::new(0),
        })
    }

    /// How many statements ran so far: tests pin the per-request SQL cost.
    pub fn statements_run(&self) -> u64 {
        self.statements.get()
    }

    fn query(&self, statement: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.statements.set(self.statements.get() + 1);
        let rows =
            sql::query(&self.conn, statement, params).map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => {
                    StoreError::AccessDenied
                }
                _ => StoreError::Io(e.to_string()),
            })?;
        Ok(rows.rows.into_iter().map(Row).collect())
    }
}

impl Sql for NativeSqlite {
    fn run(&self, sql: &str, params: Vec<Value>) -> (Result<Vec<Row>, StoreError>, Vec<Value>) {
        let result = self.query(sql, &params);
        (result, params)
    }
}
