//! Cleanup of expired state: called by the native host's scheduler through the
//! `maintenance` export, and throttled during requests (all that Spin allows).
//! Both paths run the same code; the throttle is claimed in SQL so only one
//! request per interval, across every instance and host, does the work.

use crate::domain::paste;
use crate::store::migrations::{self, claim_cleanup};
use crate::store::{Sql, StoreError};

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub expired_pastes: u64,
}

/// One full cleanup pass.
pub fn cleanup(db: &dyn Sql, now: i64) -> Result<CleanupReport, StoreError> {
    migrations::ensure_schema(db)?;
    Ok(CleanupReport {
        expired_pastes: paste::cleanup(db, now)?,
    })
}

/// Per-request bookkeeping: schema check (one query) and, at most once per
/// `interval` seconds, a cleanup pass. `Some` when this request ran the pass.
pub fn on_request(
    db: &dyn Sql,
    now: i64,
    interval: i64,
) -> Result<Option<CleanupReport>, StoreError> {
    let meta = migrations::ensure_schema(db)?;
    if now - meta.last_cleanup < interval || !claim_cleanup(db, now, interval)? {
        return Ok(None);
    }
    Ok(Some(CleanupReport {
        expired_pastes: paste::cleanup(db, now)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::NativeSqlite;

    #[test]
    fn request_path_cleans_at_most_once_per_interval() {
        let db = NativeSqlite::memory();
        assert!(on_request(&db, 10_000, 3600).unwrap().is_some());
        let before = db.statements_run();
        assert_eq!(on_request(&db, 10_001, 3600).unwrap(), None);
        // Within the interval a request pays exactly one query.
        assert_eq!(db.statements_run() - before, 1);
        assert!(on_request(&db, 13_600, 3600).unwrap().is_some());
    }
}
