//! SQL for the abuse controls: used proof-of-work nonces, per-IP rate windows,
//! content-hash counters and the anti-flood row. Each check-and-count is ONE
//! statement (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`), so N
//! concurrent requests against a limit L admit exactly L, on any number of hosts.
//!
//! In SQLite's `DO UPDATE SET`, every expression sees the row as it was before
//! the update, which is what the window arithmetic below relies on.

use super::{Sql, SqlExt, StoreError, Value};

/// Records a nonce as used; `false` if it already was (a replay).
pub fn consume_nonce(db: &dyn Sql, nonce: &str, expires_at: i64) -> Result<bool, StoreError> {
    let rows = db.execute(
        "INSERT INTO pow_nonces (nonce, expires_at) VALUES (?1, ?2) \
         ON CONFLICT (nonce) DO NOTHING RETURNING 1",
        vec![nonce.into(), expires_at.into()],
    )?;
    Ok(!rows.is_empty())
}

/// A fixed-window counter after one more hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When the current window began.
    pub start: i64,
    /// Hits in the current window, this one included.
    pub count: i64,
}

/// The shared upsert of the fixed-window counters (`rate_limits`, `content_hashes`).
fn hit(
    db: &dyn Sql,
    table: &str,
    key_column: &str,
    key: &str,
    now: i64,
    window: i64,
) -> Result<Window, StoreError> {
    let row = db.query_one(
        &format!(
            "INSERT INTO {table} ({key_column}, window_start, count) VALUES (?1, ?2, 1) \
             ON CONFLICT ({key_column}) DO UPDATE SET \
               window_start = CASE WHEN ?2 >= window_start + ?3 THEN ?2 ELSE window_start END, \
               count = CASE WHEN ?2 >= window_start + ?3 THEN 1 ELSE count + 1 END \
             RETURNING window_start, count"
        ),
        vec![Value::from(key), now.into(), window.into()],
    )?;
    Ok(Window {
        start: row.i64(0)?,
        count: row.i64(1)?,
    })
}

/// Counts one creation attempt from `client_ip`.
pub fn rate_hit(
    db: &dyn Sql,
    client_ip: &str,
    now: i64,
    window: i64,
) -> Result<Window, StoreError> {
    hit(db, "rate_limits", "client_ip", client_ip, now, window)
}

/// Counts one submission of content with this SHA-256 (hex).
pub fn dedup_hit(db: &dyn Sql, hash: &str, now: i64, window: i64) -> Result<Window, StoreError> {
    hit(db, "content_hashes", "hash", hash, now, window)
}

/// Anti-flood parameters, all from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Antiflood {
    pub threshold: i64,
    pub window: i64,
    pub step: i64,
    /// Most bits that may be added on top of the base difficulty.
    pub max_extra: i64,
    pub decay: i64,
}

/// Counts one creation; a count past the threshold is a breach, which adds
/// `step` bits (up to `max_extra`) and starts a new window. Returns the extra
/// bits now in force. One statement: the subquery reads the row under the
/// statement's write lock.
pub fn antiflood_record(db: &dyn Sql, now: i64, p: &Antiflood) -> Result<i64, StoreError> {
    // ?1 now, ?2 window, ?3 threshold, ?4 step, ?5 max_extra, ?6 decay.
    // c.n: the count with this hit (1 when the window expired); c.base: the
    // extra bits before this hit, after decay.
    let row = db.query_one(
        "UPDATE antiflood SET \
           window_start = CASE WHEN c.n > ?3 OR c.fresh THEN ?1 ELSE antiflood.window_start END, \
           count = CASE WHEN c.n > ?3 THEN 0 ELSE c.n END, \
           extra = CASE WHEN c.n > ?3 THEN MIN(c.base + ?4, ?5) ELSE c.base END, \
           last_breach = CASE WHEN c.n > ?3 THEN ?1 ELSE antiflood.last_breach END \
         FROM (SELECT ?1 >= window_start + ?2 AS fresh, \
                      CASE WHEN ?1 >= window_start + ?2 THEN 1 ELSE count + 1 END AS n, \
                      CASE WHEN ?1 - last_breach >= ?6 THEN 0 ELSE extra END AS base \
               FROM antiflood WHERE id = 1) AS c \
         WHERE antiflood.id = 1 \
         RETURNING extra",
        vec![
            now.into(),
            p.window.into(),
            p.threshold.into(),
            p.step.into(),
            p.max_extra.into(),
            p.decay.into(),
        ],
    )?;
    row.i64(0)
}

/// The extra bits in force now (0 once `decay` seconds passed without a breach).
pub fn antiflood_extra(db: &dyn Sql, now: i64, decay: i64) -> Result<i64, StoreError> {
    db.query_one(
        "SELECT CASE WHEN ?1 - last_breach >= ?2 THEN 0 ELSE extra END \
         FROM antiflood WHERE id = 1",
        vec![now.into(), decay.into()],
    )?
    .i64(0)
}

/// What one cleanup pass removed from the abuse tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AbuseCleanup {
    pub nonces: u64,
    pub rate_windows: u64,
    pub content_hashes: u64,
}

/// Deletes expired nonces and counters whose window ended `keep` seconds ago
/// or more (`keep` is the longest window in use, so no live window is lost).
pub fn cleanup(
    db: &dyn Sql,
    now: i64,
    rate_window: i64,
    dedup_window: i64,
) -> Result<AbuseCleanup, StoreError> {
    let count = |sql: &str, params: Vec<Value>| -> Result<u64, StoreError> {
        Ok(db.execute(sql, params)?.len() as u64)
    };
    Ok(AbuseCleanup {
        nonces: count(
            "DELETE FROM pow_nonces WHERE expires_at <= ?1 RETURNING 1",
            vec![now.into()],
        )?,
        rate_windows: count(
            "DELETE FROM rate_limits WHERE window_start + ?2 <= ?1 RETURNING 1",
            vec![now.into(), rate_window.into()],
        )?,
        content_hashes: count(
            "DELETE FROM content_hashes WHERE window_start + ?2 <= ?1 RETURNING 1",
            vec![now.into(), dedup_window.into()],
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::ensure_schema;
    use crate::store::native::NativeSqlite;

    fn db() -> NativeSqlite {
        let db = NativeSqlite::memory();
        ensure_schema(&db).unwrap();
        db
    }

    #[test]
    fn nonces_are_single_use() {
        let db = db();
        assert!(consume_nonce(&db, "abc", 100).unwrap());
        assert!(!consume_nonce(&db, "abc", 100).unwrap());
        assert!(consume_nonce(&db, "abd", 100).unwrap());
    }

    #[test]
    fn windows_count_and_reset() {
        let db = db();
        assert_eq!(
            rate_hit(&db, "1.2.3.4", 100, 60).unwrap(),
            Window {
                start: 100,
                count: 1
            }
        );
        assert_eq!(
            rate_hit(&db, "1.2.3.4", 159, 60).unwrap(),
            Window {
                start: 100,
                count: 2
            }
        );
        assert_eq!(
            rate_hit(&db, "5.6.7.8", 159, 60).unwrap(),
            Window {
                start: 159,
                count: 1
            }
        );
        assert_eq!(
            rate_hit(&db, "1.2.3.4", 160, 60).unwrap(),
            Window {
                start: 160,
                count: 1
            }
        );
    }

    const FLOOD: Antiflood = Antiflood {
        threshold: 5,
        window: 60,
        step: 2,
        max_extra: 8,
        decay: 60,
    };

    #[test]
    fn antiflood_rises_per_breach_caps_and_decays() {
        let db = db();
        assert_eq!(antiflood_extra(&db, 0, 60).unwrap(), 0);
        for _ in 0..5 {
            assert_eq!(antiflood_record(&db, 1000, &FLOOD).unwrap(), 0);
        }
        // The sixth creation in the window is a breach.
        assert_eq!(antiflood_record(&db, 1001, &FLOOD).unwrap(), 2);
        assert_eq!(antiflood_extra(&db, 1001, 60).unwrap(), 2);
        // A breach starts a new window: five more are fine, the sixth breaches again.
        for _ in 0..5 {
            assert_eq!(antiflood_record(&db, 1002, &FLOOD).unwrap(), 2);
        }
        assert_eq!(antiflood_record(&db, 1002, &FLOOD).unwrap(), 4);
        for _ in 0..30 {
            antiflood_record(&db, 1003, &FLOOD).unwrap();
        }
        assert_eq!(antiflood_extra(&db, 1003, 60).unwrap(), 8);
        // Normal traffic after the decay period: back to base.
        assert_eq!(antiflood_extra(&db, 1003 + 60, 60).unwrap(), 0);
        assert_eq!(antiflood_record(&db, 1003 + 60, &FLOOD).unwrap(), 0);
    }

    #[test]
    fn cleanup_removes_only_what_ended() {
        let db = db();
        consume_nonce(&db, "old", 50).unwrap();
        consume_nonce(&db, "live", 500).unwrap();
        rate_hit(&db, "a", 0, 60).unwrap();
        rate_hit(&db, "b", 90, 60).unwrap();
        dedup_hit(&db, "h", 0, 3600).unwrap();
        let removed = cleanup(&db, 100, 60, 3600).unwrap();
        assert_eq!(
            removed,
            AbuseCleanup {
                nonces: 1,
                rate_windows: 1,
                content_hashes: 0
            }
        );
        assert!(!consume_nonce(&db, "live", 500).unwrap());
    }
}
