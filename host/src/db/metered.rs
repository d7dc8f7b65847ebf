//! Any backend with its statements timed and its failures counted per
//! tenant (`wasmpaste_db_statement_seconds`, `wasmpaste_db_errors_total`).

use std::sync::Arc;
use std::time::Instant;

use super::{AnyConnection, Connection, Database, DbError, Rows, Value};
use crate::metrics::DbMetrics;

/// A database whose connections report to `metrics`.
pub struct Metered {
    inner: Arc<dyn Database>,
    metrics: DbMetrics,
}

impl Metered {
    pub fn new(inner: Arc<dyn Database>, metrics: DbMetrics) -> Self {
        Self { inner, metrics }
    }
}

impl Database for Metered {
    fn open(&self) -> Result<AnyConnection, DbError> {
        let inner = self.inner.open().inspect_err(|e| count(&self.metrics, e))?;
        Ok(Box::new(MeteredConnection {
            inner,
            metrics: self.metrics.clone(),
        }))
    }

    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
}

struct MeteredConnection {
    inner: AnyConnection,
    metrics: DbMetrics,
}

#[wasmtime_wasi::async_trait]
impl Connection for MeteredConnection {
    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, DbError> {
        let started = Instant::now();
        let result = self.inner.execute(sql, params).await;
        self.metrics
            .statement
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            count(&self.metrics, e);
        }
        result
    }
}

fn count(metrics: &DbMetrics, e: &DbError) {
    metrics.failed(match e {
        DbError::InvalidConnection => "unavailable",
        DbError::DatabaseFull => "full",
        DbError::AccessDenied => "denied",
        DbError::Io(_) => "other",
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// A database whose server is gone.
    struct Gone;

    impl Database for Gone {
        fn open(&self) -> Result<AnyConnection, DbError> {
            Ok(Box::new(Gone))
        }
        fn size_bytes(&self) -> u64 {
            0
        }
        fn location(&self) -> String {
            "gone".into()
        }
    }

    #[wasmtime_wasi::async_trait]
    impl Connection for Gone {
        async fn execute(&mut self, _: String, _: Vec<Value>) -> Result<Rows, DbError> {
            Err(DbError::InvalidConnection)
        }
    }

    #[tokio::test]
    async fn statements_are_timed_and_failures_counted_by_kind() {
        let metrics = Metrics::default();
        let db = Metered::new(Arc::new(Gone), metrics.db("t"));
        let mut conn = db.open().unwrap();
        for _ in 0..3 {
            assert_eq!(
                conn.execute("SELECT 1".into(), vec![]).await,
                Err(DbError::InvalidConnection)
            );
        }
        let text = metrics.render([]);
        assert!(
            text.contains(r#"wasmpaste_db_errors_total{tenant="t",kind="unavailable"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmpaste_db_statement_seconds_count{tenant="t"} 3"#),
            "{text}"
        );
    }
}
