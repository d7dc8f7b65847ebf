//! Where a tenant's data lives, behind one seam: a [`Database`] opens
//! [`Connection`]s, a connection runs one statement at a time. The WIT glue
//! (`spin_sqlite.rs`) and the instance pool only ever see these traits, so a
//! new backend (a libSQL server, ...) is a new module here and nothing else.
//!
//! Backends must never share one connection between requests (guests
//! interleave at epoch yields, so connection state would leak between them),
//! never block an async worker waiting for a lock, and never let a guest
//! hold a transaction across calls.

pub mod file;
pub mod libsql;
pub mod metered;

use std::fmt;

pub use wasmpaste_contract::sql::{Rows, Value};

/// Why a statement or an `open` failed, as Spin's interface reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The statement is not allowed (`ATTACH`, `PRAGMA`, transactions).
    AccessDenied,
    /// The database reached its size quota: writes fail, reads still work.
    DatabaseFull,
    /// The connection can no longer be used (a wait for a lock was abandoned).
    InvalidConnection,
    /// Anything else, with a message for the guest's log.
    Io(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessDenied => f.write_str("access denied"),
            Self::DatabaseFull => f.write_str("database full"),
            Self::InvalidConnection => f.write_str("invalid connection"),
            Self::Io(m) => f.write_str(m),
        }
    }
}

/// One tenant's database.
pub trait Database: Send + Sync {
    /// A connection for one request, released when dropped.
    fn open(&self) -> Result<AnyConnection, DbError>;

    /// The database's size as its quota counts it (the metrics gauge).
    fn size_bytes(&self) -> u64;

    /// Where it is, for the operator's logs (a path, a URL without secrets).
    fn location(&self) -> String;

    /// Whether it is a server that may be away for a while (restarting, the
    /// network down): then the host starts without it and answers 503
    /// until it is back, instead of refusing to start.
    fn is_remote(&self) -> bool {
        false
    }
}

/// A connection held by one request.
#[wasmtime_wasi::async_trait]
pub trait Connection: Send {
    /// Runs exactly one statement.
    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, DbError>;
}

/// A connection of whichever backend serves the tenant: what a guest's
/// `connection` resource holds.
pub type AnyConnection = Box<dyn Connection>;
