//! Cleanup of expired state: called by the native host's scheduler through the
//! `maintenance` export, and throttled during requests (all that Spin allows).
//! Both paths run the same code; the throttle is claimed in SQL so only one
//! request per interval, across every instance and host, does the work.

use crate::config::{self, Config, ConfigError};
use crate::domain::{paste, short_url};
use crate::store::abuse;
use crate::store::migrations::{self, Meta, claim_cleanup};
use crate::store::{Sql, StoreError};

/// What one pass removed. A new field goes here, in [`CleanupReport::counts`]
/// (which will not compile without it), in the WIT record and in the
/// adapter's conversion to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub expired_pastes: u64,
    pub expired_short_urls: u64,
    pub used_nonces: u64,
    pub rate_windows: u64,
    pub content_hashes: u64,
}

impl CleanupReport {
    /// Every count with its name, in declaration order: the fields of the
    /// cleanup log line.
    pub fn counts(&self) -> [(&'static str, u64); 5] {
        let Self {
            expired_pastes,
            expired_short_urls,
            used_nonces,
            rate_windows,
            content_hashes,
        } = *self;
        [
            ("expired_pastes", expired_pastes),
            ("expired_short_urls", expired_short_urls),
            ("used_nonces", used_nonces),
            ("rate_windows", rate_windows),
            ("content_hashes", content_hashes),
        ]
    }
}

/// Why maintenance could not run.
#[derive(Debug, Clone, PartialEq)]
pub enum MaintenanceError {
    Store(StoreError),
    Config(ConfigError),
}

impl From<StoreError> for MaintenanceError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<ConfigError> for MaintenanceError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl std::fmt::Display for MaintenanceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::Config(e) => e.fmt(f),
        }
    }
}

/// One full cleanup pass (the schema is migrated first if needed).
pub fn cleanup(
    db: &dyn Sql,
    cfg: &Config<'_>,
    now: i64,
) -> Result<CleanupReport, MaintenanceError> {
    migrations::ensure_schema(db)?;
    pass(db, cfg, now)
}

fn pass(db: &dyn Sql, cfg: &Config<'_>, now: i64) -> Result<CleanupReport, MaintenanceError> {
    let abuse = abuse::cleanup(
        db,
        now,
        cfg.get(&config::RATE_WINDOW)?,
        cfg.get(&config::DEDUP_WINDOW)?,
    )?;
    Ok(CleanupReport {
        expired_pastes: paste::cleanup(db, now)?,
        expired_short_urls: short_url::cleanup(db, now)?,
        used_nonces: abuse.nonces,
        rate_windows: abuse.rate_windows,
        content_hashes: abuse.content_hashes,
    })
}

/// Per-request bookkeeping: the schema check (one query, which also returns
/// the bookkeeping row) and, at most once per `cleanup_interval`, a cleanup
/// pass. The report is `Some` when this request ran the pass.
pub fn on_request(
    db: &dyn Sql,
    cfg: &Config<'_>,
    now: i64,
) -> Result<(Meta, Option<CleanupReport>), MaintenanceError> {
    let meta = migrations::ensure_schema(db)?;
    let report = cleanup_if_due(db, cfg, now, &meta)?;
    Ok((meta, report))
}

/// The request-driven cleanup, when `meta` (the bookkeeping row this request
/// read) says one is due and this request wins the claim.
pub fn cleanup_if_due(
    db: &dyn Sql,
    cfg: &Config<'_>,
    now: i64,
    meta: &Meta,
) -> Result<Option<CleanupReport>, MaintenanceError> {
    let interval = cfg.get(&config::CLEANUP_INTERVAL)?;
    if now - meta.last_cleanup < interval || !claim_cleanup(db, now, interval)? {
        return Ok(None);
    }
    Ok(Some(pass(db, cfg, now)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::NativeSqlite;
    use crate::testkit::MapVars;

    #[test]
    fn request_path_cleans_at_most_once_per_interval() {
        let db = NativeSqlite::memory();
        let vars = MapVars::default();
        let cfg = Config::new(&vars);
        assert!(on_request(&db, &cfg, 10_000).unwrap().1.is_some());
        let before = db.statements_run();
        assert_eq!(on_request(&db, &cfg, 10_001).unwrap().1, None);
        // Within the interval a request pays exactly one query.
        assert_eq!(db.statements_run() - before, 1);
        assert!(on_request(&db, &cfg, 13_600).unwrap().1.is_some());
    }

    /// The log line's fields are the WIT record's, in its order.
    #[test]
    fn counts_name_the_wit_record_fields_in_order() {
        let wit = include_str!("../../wit/world.wit");
        let record = wit
            .split("record cleanup-report {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .unwrap();
        let fields: Vec<String> = record
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_suffix(": u64,"))
            .map(|name| name.replace('-', "_"))
            .collect();
        let names: Vec<&str> = CleanupReport::default()
            .counts()
            .iter()
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(fields, names);
    }

    #[test]
    fn a_pass_reports_what_it_removed() {
        let db = NativeSqlite::memory();
        let vars = MapVars::default();
        let cfg = Config::new(&vars);
        migrations::ensure_schema(&db).unwrap();
        abuse::consume_nonce(&db, "n", 5).unwrap();
        abuse::rate_hit(&db, "1.1.1.1", 0, 60).unwrap();
        let report = cleanup(&db, &cfg, 100).unwrap();
        assert_eq!(report.used_nonces, 1);
        assert_eq!(report.rate_windows, 1);
        assert_eq!(report.expired_pastes, 0);
    }
}
