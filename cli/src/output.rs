//! Where results go: human-readable lines, or one JSON document per command
//! for scripts (`--json`). Errors go to stderr in the same style.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

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

/// A time for tables, `YYYY-MM-DD HH:MM UTC`, from Unix seconds or the
/// RFC 3339 strings `GET /pastes` writes.
pub fn format_time(value: &Value) -> String {
    let parsed = match value {
        Value::Null => return "never".into(),
        Value::Number(n) => n
            .as_i64()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        Value::String(s) => OffsetDateTime::parse(s, &Rfc3339).ok(),
        _ => None,
    };
    parsed
        .and_then(|t| {
            t.to_offset(time::UtcOffset::UTC)
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .ok()
        })
        .unwrap_or_else(|| match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
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
