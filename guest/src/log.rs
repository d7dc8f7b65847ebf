//! Structured log lines: one JSON object per line on the component's stderr,
//! which every host collects. Every line carries the request id. Secrets and
//! paste contents are never passed here.

use serde_json::{Value as Json, json};

use crate::domain::time::iso8601;

/// Where log lines go (stderr in the component, a buffer in tests).
pub trait Log {
    fn line(&self, line: &str);
}

/// Writes to the component's stderr.
pub struct Stderr;

impl Log for Stderr {
    fn line(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// Logs one event of `logger` (e.g. `app`, `app.audit`) with extra fields.
pub fn event(log: &dyn Log, now: i64, level: &str, logger: &str, rid: &str, fields: Json) {
    let mut entry = json!({
        "time": iso8601(now),
        "level": level,
        "logger": logger,
        "rid": rid,
    });
    if let (Some(obj), Json::Object(extra)) = (entry.as_object_mut(), fields) {
        obj.extend(extra);
    }
    log.line(&entry.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Captured;

    #[test]
    fn lines_are_json_with_request_id() {
        let log = Captured::default();
        event(&log, 0, "ERROR", "app", "rid-1", json!({"message": "boom"}));
        let line: Json = serde_json::from_str(&log.0.borrow()[0]).unwrap();
        assert_eq!(line["rid"], "rid-1");
        assert_eq!(line["message"], "boom");
        assert_eq!(line["time"], "1970-01-01T00:00:00Z");
    }
}
