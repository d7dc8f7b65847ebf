//! Where results go: human-readable lines, or one JSON document per command
//! for scripts (`--json`). Errors go to stderr in the same style.

use serde_json::{Value, json};

use crate::error::Error;

pub struct Out {
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints `doc` in JSON mode, `human()` otherwise.
    pub fn result(&self, doc: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{doc}");
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end_matches('\n'));
            }
        }
    }

    /// A side note for people (stderr), silent in JSON mode.
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    pub fn error(&self, e: &Error) {
        let hint = e.hint();
        if self.json {
            let mut doc = json!({ "error": e.to_string(), "kind": e.kind() });
            if let Error::Server { status, .. } = e {
                doc["status"] = json!(status);
            }
            if let Some(h) = hint {
                doc["hint"] = json!(h);
            }
            eprintln!("{doc}");
        } else {
            eprintln!("fpaste: {e}");
            if let Some(h) = hint {
                eprintln!("  hint: {h}");
            }
        }
    }
}

/// Unix time as `YYYY-MM-DD HH:MM UTC` for tables (inverse of the days algorithm in args).
pub fn format_time(value: &Value) -> String {
    match value {
        Value::Number(n) => n.as_i64().map_or_else(|| n.to_string(), unix_to_utc),
        // ISO 8601 as `GET /pastes` writes it: 2024-12-20T10:30:00Z.
        Value::String(s) if s.len() >= 16 && s.is_char_boundary(16) => {
            format!("{} UTC", s[..16].replace('T', " "))
        }
        Value::String(s) => s.clone(),
        Value::Null => "never".into(),
        other => other.to_string(),
    }
}

fn unix_to_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant), the inverse of args::days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn format_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1 << 20 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / f64::from(1 << 20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes_read_well() {
        assert_eq!(format_time(&json!(0)), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(&json!(1_734_690_600)), "2024-12-20 10:30 UTC");
        assert_eq!(format_time(&json!(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(
            format_time(&json!("2024-12-20T10:30:00Z")),
            "2024-12-20 10:30 UTC"
        );
        assert_eq!(format_time(&Value::Null), "never");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3 << 20), "3.0 MiB");
    }
}
