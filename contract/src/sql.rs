//! The SQL value model of Spin's `fermyon:spin/sqlite` interface, and (with
//! the `rusqlite` feature) how the native host and the guest's native test
//! store run statements on SQLite: the same connection settings, the same
//! binding, the same reading of rows, so tests see what production does.

/// One SQL value, as Spin's interface carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Integer(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// What one statement returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

#[cfg(feature = "rusqlite")]
pub use self::sqlite::{STATEMENT_CACHE, configure, guest_policy, query};

#[cfg(feature = "rusqlite")]
mod sqlite {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
    use rusqlite::types::{ToSqlOutput, ValueRef};

    use super::{Rows, Value};

    /// Prepared statements kept per connection: the guest uses a few dozen.
    pub const STATEMENT_CACHE: usize = 64;

    /// The settings every connection gets: WAL (readers never wait for the
    /// writer), `synchronous=NORMAL` (durable across application crashes in
    /// WAL mode; a power loss can lose the last transactions, never corrupt
    /// the file) and a statement cache. Busy handling is the caller's: the
    /// host waits only off its async workers.
    pub fn configure(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(())
    }

    /// What a guest's statements may do on a SQLite file (SQLite's authorizer
    /// callback for guest connections): no `ATTACH` (another tenant's file),
    /// no `PRAGMA` (the quota and journal settings are the host's), no
    /// transactions (one held across an epoch yield would make every other
    /// writer wait in SQLite's busy handler; the guest changes state with one
    /// atomic statement each). A refused statement fails with
    /// `AuthorizationForStatementDenied`.
    pub fn guest_policy(ctx: AuthContext<'_>) -> Authorization {
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

    /// Runs one statement (from the statement cache) and collects its rows.
    pub fn query(
        conn: &rusqlite::Connection,
        sql: &str,
        params: &[Value],
    ) -> rusqlite::Result<Rows> {
        let mut stmt = conn.prepare_cached(sql)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let bound = params.iter().map(|v| {
            ToSqlOutput::Borrowed(match v {
                Value::Null => ValueRef::Null,
                Value::Integer(i) => ValueRef::Integer(*i),
                Value::Real(f) => ValueRef::Real(*f),
                Value::Text(t) => ValueRef::Text(t.as_bytes()),
                Value::Blob(b) => ValueRef::Blob(b),
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
            out.push(values);
        }
        Ok(Rows { columns, rows: out })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_value_type_round_trips() {
            let mut conn = rusqlite::Connection::open_in_memory().unwrap();
            configure(&mut conn).unwrap();
            query(&conn, "CREATE TABLE t (a, b, c, d, e)", &[]).unwrap();
            let values = vec![
                Value::Integer(-7),
                Value::Real(1.5),
                Value::Text("héllo".into()),
                Value::Blob(vec![0, 255]),
                Value::Null,
            ];
            query(&conn, "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", &values).unwrap();
            let got = query(&conn, "SELECT a, b, c, d, e FROM t", &[]).unwrap();
            assert_eq!(got.columns, ["a", "b", "c", "d", "e"]);
            assert_eq!(got.rows, [values]);
        }
    }
}
