//! SQL storage: the only module that writes SQL text.
//!
//! Everything goes through [`Sql`], a one-method mirror of Spin's
//! `fermyon:spin/sqlite` connection. Every state change that must be atomic is
//! ONE statement (`... RETURNING`, `ON CONFLICT DO UPDATE`): several hosts may
//! share the database and there are no transactions across calls.
//! Nothing here may keep state between requests.

pub mod abuse;
pub mod migrations;
#[cfg(any(test, feature = "native-store"))]
pub mod native;
pub mod paste;
pub mod pki;
pub mod short_url;

use std::cell::OnceCell;
use std::fmt;

/// One SQL value, as Spin's interface carries it (shared with the native
/// host, which binds the same values to SQLite).
pub use wasmpaste_contract::sql::Value;

/// The errors of Spin's sqlite interface, plus decoding problems found here.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    NoSuchDatabase,
    AccessDenied,
    InvalidConnection,
    /// The database reached its size quota: writes fail, reads still work.
    DatabaseFull,
    Io(String),
    /// A row did not have the shape the query promised (a bug or a foreign schema).
    Decode(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchDatabase => f.write_str("no such database"),
            Self::AccessDenied => f.write_str("access to the database denied"),
            Self::InvalidConnection => f.write_str("invalid database connection"),
            Self::DatabaseFull => f.write_str("database full"),
            Self::Io(m) => write!(f, "database error: {m}"),
            Self::Decode(m) => write!(f, "unexpected row shape: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// Whether the failure is a UNIQUE / PRIMARY KEY violation (an id collision).
    pub fn is_constraint_violation(&self) -> bool {
        matches!(self, Self::Io(m) if m.contains("UNIQUE constraint failed"))
    }
}

/// One result row; getters fail with [`StoreError::Decode`] instead of panicking.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Decode(format!("no column {i}")))
    }

    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        match self.at(i)? {
            Value::Integer(v) => Ok(*v),
            other => Err(StoreError::Decode(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool, StoreError> {
        self.i64(i).map(|v| v != 0)
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.at(i)? {
            Value::Text(v) => Ok(v.clone()),
            other => Err(StoreError::Decode(format!(
                "column {i}: expected text, got {other:?}"
            ))),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// Moves a blob out of the row (paste content can be megabytes: no copy).
    pub fn take_blob(&mut self, i: usize) -> Result<Vec<u8>, StoreError> {
        let slot = self
            .0
            .get_mut(i)
            .ok_or_else(|| StoreError::Decode(format!("no column {i}")))?;
        match std::mem::replace(slot, Value::Null) {
            Value::Blob(v) => Ok(v),
            // SQLite hands back text if a blob was ever stored as text.
            Value::Text(v) => Ok(v.into_bytes()),
            other => Err(StoreError::Decode(format!(
                "column {i}: expected blob, got {other:?}"
            ))),
        }
    }
}

/// A SQL connection: Spin's `connection.execute`, nothing more.
pub trait Sql {
    /// Runs exactly one statement and returns its rows (empty for most writes),
    /// handing the parameters back so a caller can retry without copying a
    /// megabyte blob.
    fn run(&self, sql: &str, params: Vec<Value>) -> (Result<Vec<Row>, StoreError>, Vec<Value>);

    /// [`Sql::run`] for callers that do not need the parameters back.
    fn execute(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        self.run(sql, params).0
    }
}

/// Helpers every store module uses on top of [`Sql::execute`].
pub trait SqlExt: Sql {
    /// The first row, if any.
    fn query_opt(&self, sql: &str, params: Vec<Value>) -> Result<Option<Row>, StoreError> {
        Ok(self.execute(sql, params)?.into_iter().next())
    }

    /// The first row, which must exist.
    fn query_one(&self, sql: &str, params: Vec<Value>) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Decode("query returned no row".into()))
    }
}

impl<T: Sql + ?Sized> SqlExt for T {}

/// Opens the database on first use, so requests that never touch SQL (`GET /`)
/// never pay for a connection; on Spin every `open` is a new SQLite connection.
pub struct LazyDb<C, F: Fn() -> Result<C, StoreError>> {
    open: F,
    conn: OnceCell<Result<C, StoreError>>,
}

impl<C: Sql, F: Fn() -> Result<C, StoreError>> LazyDb<C, F> {
    pub fn new(open: F) -> Self {
        Self {
            open,
            conn: OnceCell::new(),
        }
    }
}

impl<C: Sql, F: Fn() -> Result<C, StoreError>> Sql for LazyDb<C, F> {
    fn run(&self, sql: &str, params: Vec<Value>) -> (Result<Vec<Row>, StoreError>, Vec<Value>) {
        match self.conn.get_or_init(&self.open) {
            Ok(conn) => conn.run(sql, params),
            Err(e) => (Err(e.clone()), params),
        }
    }
}
