//! The guest's stderr: its JSON log lines (audit events included) are
//! forwarded to the host's stderr, one line each, tagged with the tenant and
//! the request id, so an operator can tell which tenant and request wrote them.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Map, Value};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept; the rest of a longer line is dropped so a guest cannot
/// make the host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// The stderr of one store.
#[derive(Clone)]
pub struct GuestStderr(Arc<Mutex<Lines>>);

struct Lines {
    sink: fn(&str),
    tenant: Arc<str>,
    rid: Arc<str>,
    pending: Vec<u8>,
    /// Bytes of an over-long line are being skipped until its newline.
    skipping: bool,
}

impl GuestStderr {
    pub fn new(tenant: Arc<str>, rid: Arc<str>) -> Self {
        Self::with_sink(tenant, rid, to_stderr)
    }

    fn with_sink(tenant: Arc<str>, rid: Arc<str>, sink: fn(&str)) -> Self {
        Self(Arc::new(Mutex::new(Lines {
            sink,
            tenant,
            rid,
            pending: Vec::new(),
            skipping: false,
        })))
    }

    /// Tags the lines of the next request a reused instance serves; a line
    /// the last request left unfinished is written under the old id first.
    pub fn set_rid(&self, rid: Arc<str>) {
        let Ok(mut lines) = self.0.lock() else {
            return;
        };
        lines.flush();
        lines.rid = rid;
    }

    fn write(&self, bytes: &[u8]) {
        let Ok(mut lines) = self.0.lock() else {
            return;
        };
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            let (text, complete) = match chunk.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (chunk, false),
            };
            if !lines.skipping {
                let room = MAX_LINE.saturating_sub(lines.pending.len());
                let take = text.len().min(room);
                lines.pending.extend_from_slice(&text[..take]);
                if take < text.len() {
                    lines.emit();
                    lines.skipping = true;
                }
            }
            if complete {
                if !lines.skipping {
                    lines.emit();
                }
                lines.skipping = false;
            }
        }
    }
}

impl Lines {
    /// Ends the current line: written unless it is the skipped tail of an
    /// over-long one.
    fn flush(&mut self) {
        if !self.skipping {
            self.emit();
        }
        self.skipping = false;
    }

    fn emit(&mut self) {
        let raw = std::mem::take(&mut self.pending);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        (self.sink)(&tag(&raw, &self.tenant, &self.rid));
    }
}

fn to_stderr(line: &str) {
    // Logging must never fail a request; a closed stderr loses lines only.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One output line: the guest's JSON object with `tenant` set by the host
/// (a guest cannot claim to be another tenant) and `rid` kept if the guest
/// set one; any other text is wrapped in such an object.
fn tag(raw: &[u8], tenant: &str, rid: &str) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut object = match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(object)) => object,
        _ => {
            let mut object = Map::new();
            object.insert("level".into(), "info".into());
            object.insert("logger".into(), "guest".into());
            object.insert("message".into(), text.trim_end().into());
            object
        }
    };
    object.insert("tenant".into(), tenant.into());
    object.entry("rid").or_insert_with(|| rid.into());
    let mut line = Value::Object(object).to_string();
    line.push('\n');
    line
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStderr {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStderr {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestStderr::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

impl tokio::io::AsyncWrite for GuestStderr {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        GuestStderr::write(&self, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_get_the_tenant_and_keep_their_rid() {
        let line = tag(
            br#"{"event":"cert_issued","rid":"g1","tenant":"evil"}"#,
            "a",
            "h1",
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["tenant"], "a");
        assert_eq!(v["rid"], "g1");
        assert_eq!(v["event"], "cert_issued");
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
    }

    #[test]
    fn other_text_is_wrapped_with_tenant_and_request_id() {
        let line = tag(b"thread panicked at x\r\n\"quoted\"", "b", "h2");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["tenant"], "b");
        assert_eq!(v["rid"], "h2");
        assert_eq!(v["logger"], "guest");
        assert_eq!(v["message"], "thread panicked at x\r\n\"quoted\"");
    }

    static EMITTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn messages() -> Vec<String> {
        EMITTED
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["message"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn lines_are_split_joined_capped_and_flushed_at_the_end() {
        let out = GuestStderr::with_sink("t".into(), "r".into(), |l| {
            EMITTED.lock().unwrap().push(l.to_owned());
        });
        out.write(b"par");
        out.write(b"tial\nsecond\n\nthird");
        assert_eq!(messages(), ["partial", "second"]);
        out.write(&vec![b'x'; MAX_LINE * 2]);
        out.write(b"tail of the long line\nnext");
        out.write(b" line");
        drop(out);
        let found = messages();
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[2].len(), MAX_LINE);
        assert!(found[2].starts_with("thirdxxx"));
        assert_eq!(found[3], "next line");
    }

    static RETAGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[test]
    fn a_reused_instance_tags_each_request_with_its_own_id() {
        let out = GuestStderr::with_sink("t".into(), "first".into(), |l| {
            RETAGGED.lock().unwrap().push(l.to_owned());
        });
        out.write(
            b"one
unfinished",
        );
        out.set_rid("second".into());
        out.write(
            b"two
",
        );
        drop(out);
        let found: Vec<(String, String)> = RETAGGED
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["rid"].to_string(), v["message"].to_string())
            })
            .collect();
        let want = [
            (r#""first""#, r#""one""#),
            (r#""first""#, r#""unfinished""#),
            (r#""second""#, r#""two""#),
        ];
        assert_eq!(found.len(), want.len(), "{found:?}");
        for ((rid, msg), (want_rid, want_msg)) in found.iter().zip(want) {
            assert_eq!((rid.as_str(), msg.as_str()), (want_rid, want_msg));
        }
    }
}
