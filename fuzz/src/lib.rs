//! Turns fuzzer bytes into requests for the guest's router.
//!
//! An input is text close to HTTP/1, so corpus files can be read and written
//! by hand and libFuzzer's mutations stay near real requests:
//!
//! ```text
//! POST /?x=1
//! X-Burn-After-Read: true
//!
//! body bytes...
//! %%
//! GET /$ID/raw
//! ```
//!
//! Requests are separated by a line `%%` (at most [`MAX_REQUESTS`], run
//! against one database so later requests meet earlier state). Each starts
//! with `METHOD target`, then `name: value` lines, an empty line and the body.
//! `$ID`, `$SERIAL` and `$FP` are replaced by the last `id`, `serial` and
//! `fingerprint_sha1` the API answered with: identifiers are random, and a
//! fuzzer could never guess one, so without this no input could read, update
//! or delete what it created.

use serde_json::Value;
use wasmpaste_guest::http::{Body, Headers, Method, Request, Response};

/// Requests per input: enough to create, read, update and delete.
pub const MAX_REQUESTS: usize = 6;

/// A request as written in the input, before `$` names are replaced.
pub struct Template {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Splits an input into request templates.
pub fn templates(data: &[u8]) -> Vec<Template> {
    split(data, b"\n%%\n")
        .take(MAX_REQUESTS)
        .map(template)
        .collect()
}

fn template(raw: &[u8]) -> Template {
    let (head, body) = match find(raw, b"\n\n") {
        Some(at) => (&raw[..at], raw[at + 2..].to_vec()),
        None => (raw, Vec::new()),
    };
    let mut lines = split(head, b"\n");
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let (method, target) = first.split_once(' ').unwrap_or((first.as_str(), "/"));
    let headers = lines
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
            let value = line[colon + 1..].trim_ascii_start().to_vec();
            Some((name, value))
        })
        .collect();
    Template {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    }
}

/// Identifiers seen in earlier answers, for `$` names.
#[derive(Default)]
pub struct Seen {
    id: Option<String>,
    serial: Option<String>,
    fingerprint: Option<String>,
}

impl Seen {
    /// Remembers the identifiers a response carries.
    pub fn learn(&mut self, resp: &Response) {
        if let Some(fp) = resp.headers.get("x-fingerprint-sha1") {
            self.fingerprint = Some(fp.to_owned());
        }
        let Ok(json) = serde_json::from_slice::<Value>(&resp.body) else {
            return;
        };
        let field = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
        self.id = field("id").or(self.id.take());
        self.serial = field("serial").or(self.serial.take());
        self.fingerprint = field("fingerprint_sha1").or(self.fingerprint.take());
    }

    fn fill(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = raw.to_vec();
        for (name, value) in [
            (&b"$ID"[..], &self.id),
            (b"$SERIAL", &self.serial),
            (b"$FP", &self.fingerprint),
        ] {
            if let Some(value) = value {
                out = replace(&out, name, value.as_bytes());
            }
        }
        out
    }

    /// The request a template stands for, now.
    pub fn request(&self, t: &Template) -> Request {
        let target = String::from_utf8_lossy(&self.fill(t.target.as_bytes())).into_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut headers = Headers::new();
        for (name, value) in &t.headers {
            headers.append(name, self.fill(value));
        }
        Request {
            method: Method::parse(&t.method),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            // Streamed in small pieces, as the component receives bodies.
            body: Body::Stream(Box::new(Chunks(self.fill(&t.body)))),
        }
    }
}

/// A body handed out a few bytes at a time.
struct Chunks(Vec<u8>);

impl wasmpaste_guest::http::BodyStream for Chunks {
    fn read_chunk(
        &mut self,
        max: usize,
    ) -> Result<Option<Vec<u8>>, wasmpaste_guest::http::BodyError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let n = max.clamp(1, 7).min(self.0.len());
        Ok(Some(self.0.drain(..n).collect()))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut rest: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match find(rest, sep) {
            Some(at) => {
                let part = &rest[..at];
                rest = &rest[at + sep.len()..];
                Some(part)
            }
            None => {
                done = true;
                Some(rest)
            }
        }
    })
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_decode_like_http() {
        let ts = templates(b"POST /s?a=1\nContent-Type:  application/json\nX-A:b:c\n\n{\"url\":1}\n\nx\n%%\nGET /$ID");
        assert_eq!(ts.len(), 2);
        let mut seen = Seen::default();
        let req = seen.request(&ts[0]);
        assert_eq!((req.path.as_str(), req.query.as_str()), ("/s", "a=1"));
        assert_eq!(req.headers.get("content-type"), Some("application/json"));
        assert_eq!(req.headers.get("x-a"), Some("b:c"));
        assert_eq!(
            req.body.read(100).ok().as_deref(),
            Some(&b"{\"url\":1}\n\nx"[..])
        );

        let mut created = Response::json(201, &serde_json::json!({"id": "abc123"}));
        created.headers.set("x-fingerprint-sha1", "ff");
        seen.learn(&created);
        assert_eq!(seen.request(&ts[1]).path, "/abc123");
        assert_eq!(seen.fill(b"$FP $SERIAL"), b"ff $SERIAL");
    }

    #[test]
    fn garbage_still_decodes() {
        for input in [&b""[..], b"\n", b"%%", b"\n%%\n\n%%\n", b"\xff\xfe :\n\n"] {
            let seen = Seen::default();
            for t in templates(input) {
                let _ = seen.request(&t);
            }
        }
        assert_eq!(templates(&b"GET /\n%%\n".repeat(20)).len(), MAX_REQUESTS);
    }
}
