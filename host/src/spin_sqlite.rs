//! `fermyon:spin/sqlite@2.0.0` for the guest: Spin's policy (a component may
//! open only the database it was granted, the label `default`) and a bound
//! on connections per request, over whichever backend ([`crate::db`]) the
//! tenant's database uses. Only conversions between the WIT types and the
//! backend's live here; no SQL runs in this module.

use std::sync::Arc;

use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::bindings::fermyon::spin::sqlite::{self, Error, QueryResult, RowResult, Value};
use crate::db::{self, AnyConnection, Database, DbError};

/// The only database label a guest may open (Spin's default).
pub const DEFAULT_LABEL: &str = "default";
/// Connections one request may hold open at once.
pub const MAX_OPEN_PER_REQUEST: usize = 4;

/// Per-store SQL state: the database this guest may open, and how many
/// connections it holds.
pub struct SqliteCtx {
    db: Arc<dyn Database>,
    open: usize,
}

impl SqliteCtx {
    pub fn new(db: Arc<dyn Database>) -> Self {
        Self { db, open: 0 }
    }
}

/// What the sqlite imports see of a store: its SQL state and resource table.
pub struct SqliteView<'a> {
    pub ctx: &'a mut SqliteCtx,
    pub table: &'a mut ResourceTable,
}

/// Links the sqlite imports against [`SqliteView`].
pub struct SpinSqlite;

impl HasData for SpinSqlite {
    type Data<'a> = SqliteView<'a>;
}

impl sqlite::Host for SqliteView<'_> {}

impl sqlite::HostConnection for SqliteView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<AnyConnection>, Error>> {
        // Spin's rule: a label the component was not granted is access-denied.
        if database != DEFAULT_LABEL {
            return Ok(Err(Error::AccessDenied));
        }
        if self.ctx.open >= MAX_OPEN_PER_REQUEST {
            return Ok(Err(Error::Io(format!(
                "too many open connections (at most {MAX_OPEN_PER_REQUEST} per request)"
            ))));
        }
        let conn = match self.ctx.db.open() {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        self.ctx.open += 1;
        Ok(Ok(self.table.push(conn)?))
    }

    async fn execute(
        &mut self,
        conn: Resource<AnyConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let conn = self.table.get_mut(&conn)?;
        let params = parameters.into_iter().map(from_wit).collect();
        Ok(conn
            .execute(statement, params)
            .await
            .map(to_wit_rows)
            .map_err(to_wit_error))
    }

    async fn drop(&mut self, conn: Resource<AnyConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        self.ctx.open = self.ctx.open.saturating_sub(1);
        Ok(())
    }
}

fn from_wit(v: Value) -> db::Value {
    match v {
        Value::Integer(i) => db::Value::Integer(i),
        Value::Real(f) => db::Value::Real(f),
        Value::Text(t) => db::Value::Text(t),
        Value::Blob(b) => db::Value::Blob(b),
        Value::Null => db::Value::Null,
    }
}

fn to_wit(v: db::Value) -> Value {
    match v {
        db::Value::Integer(i) => Value::Integer(i),
        db::Value::Real(f) => Value::Real(f),
        db::Value::Text(t) => Value::Text(t),
        db::Value::Blob(b) => Value::Blob(b),
        db::Value::Null => Value::Null,
    }
}

fn to_wit_rows(rows: db::Rows) -> QueryResult {
    QueryResult {
        columns: rows.columns,
        rows: rows
            .rows
            .into_iter()
            .map(|row| RowResult {
                values: row.into_iter().map(to_wit).collect(),
            })
            .collect(),
    }
}

fn to_wit_error(e: DbError) -> Error {
    match e {
        DbError::AccessDenied => Error::AccessDenied,
        DbError::DatabaseFull => Error::DatabaseFull,
        DbError::InvalidConnection => Error::InvalidConnection,
        DbError::Io(m) => Error::Io(m),
    }
}
