//! A rusqlite-backed [`Sql`] for native tests: the real SQL and migrations,
//! without wasm. It behaves like the hosts do (one statement per call,
//! `ATTACH` refused) so tests catch what production would. With the
//! `native-store` feature it also backs the native benchmark server.

use std::cell::Cell;
use std::path::Path;

use rusqlite::types::{ToSqlOutput, ValueRef};

use super::{Row, Sql, StoreError, Value};

pub struct NativeSqlite {
    conn: rusqlite::Connection,
    statements: Cell<u64>,
}

impl NativeSqlite {
    pub fn memory() -> Self {
        Self::wrap(rusqlite::Connection::open_in_memory().expect("open in-memory sqlite"))
    }

    #[cfg(test)]
    pub fn open(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).expect("open sqlite file");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("enable WAL");
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .expect("busy timeout");
        Self::wrap(conn)
    }

    /// Opens (or creates) a database file the way the native host's
    /// connections are set up (host/src/sqlite.rs): WAL, `synchronous=NORMAL`,
    /// a 5 s busy timeout and a 64-statement cache. Fails instead of panicking.
    pub fn open_like_host(path: &Path) -> Result<Self, StoreError> {
        let io = |e: rusqlite::Error| StoreError::Io(e.to_string());
        let conn = rusqlite::Connection::open(path).map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(io)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(io)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self::wrap(conn))
    }

    fn wrap(conn: rusqlite::Connection) -> Self {
        Self {
            conn,
            statements: Cell::new(0),
        }
    }

    /// How many statements ran so far: tests pin the per-request SQL cost.
    pub fn statements_run(&self) -> u64 {
        self.statements.get()
    }
}

impl Sql for NativeSqlite {
    fn run(&self, sql: &str, params: Vec<Value>) -> (Result<Vec<Row>, StoreError>, Vec<Value>) {
        let result = self.query(sql, &params);
        (result, params)
    }
}

impl NativeSqlite {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.statements.set(self.statements.get() + 1);
        if sql.trim_start().to_ascii_uppercase().starts_with("ATTACH") {
            return Err(StoreError::AccessDenied);
        }
        let io = |e: rusqlite::Error| StoreError::Io(e.to_string());
        let mut stmt = self.conn.prepare_cached(sql).map_err(io)?;
        let params: Vec<ToSqlOutput<'_>> = params
            .iter()
            .map(|v| {
                ToSqlOutput::Borrowed(match v {
                    Value::Null => ValueRef::Null,
                    Value::Integer(i) => ValueRef::Integer(*i),
                    Value::Real(f) => ValueRef::Real(*f),
                    Value::Text(t) => ValueRef::Text(t.as_bytes()),
                    Value::Blob(b) => ValueRef::Blob(b),
                })
            })
            .collect();
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(io)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(io)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(io)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}
