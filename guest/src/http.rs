//! Plain HTTP request and response values, independent of wasi-http.
//!
//! The adapter converts wasi-http resources into these types and back; everything
//! above it (router, api, domain) sees only these, so it runs natively in tests.
//! Nothing here may touch generated bindings.

use std::fmt;

/// The methods the API routes on; anything else is answered with 405.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Self {
        match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header list with lowercase names, in arrival order. Lookups are linear: a
/// request carries a few dozen headers at most, fewer than a map would pay for.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a header; the name is lowercased so lookups are case-insensitive.
    pub fn append(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Replaces every header of that name with one value.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let name = name.to_ascii_lowercase();
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value.into()));
    }

    /// The first value of a header, as raw bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of a header if it is valid UTF-8, trimmed of surrounding whitespace.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// The last value of a header if it is valid UTF-8, trimmed: for
    /// headers the host appends after the client's own (Spin adds
    /// `spin-client-addr` after whatever the client sent under that name).
    pub fn get_last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn into_vec(self) -> Vec<(String, Vec<u8>)> {
        self.0
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is longer than the caller allowed; `received` bytes were read before stopping.
    TooLarge { received: u64 },
    /// The client went away or the stream broke.
    Broken(String),
}

/// A source of body bytes read on demand, so a handler can decide the size
/// limit (which depends on who is asking) before anything is buffered.
pub trait BodyStream {
    /// Reads up to `max` bytes; `Ok(None)` at the end of the body.
    fn read_chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>, BodyError>;
}

/// A request body: already in memory (tests) or still on the wire (the component).
pub enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn BodyStream>),
}

impl Body {
    pub fn empty() -> Self {
        Self::Bytes(Vec::new())
    }

    /// Reads the whole body, failing as soon as it exceeds `limit` bytes.
    pub fn read(self, limit: u64) -> Result<Vec<u8>, BodyError> {
        match self {
            Self::Bytes(bytes) => {
                let len = bytes.len() as u64;
                if len > limit {
                    Err(BodyError::TooLarge { received: len })
                } else {
                    Ok(bytes)
                }
            }
            Self::Stream(mut stream) => {
                const CHUNK: usize = 256 * 1024;
                let mut out = Vec::new();
                while let Some(chunk) = stream.read_chunk(CHUNK)? {
                    out.extend_from_slice(&chunk);
                    if out.len() as u64 > limit {
                        return Err(BodyError::TooLarge {
                            received: out.len() as u64,
                        });
                    }
                }
                Ok(out)
            }
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// An incoming request as the router sees it.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// The path without the query string, percent-encoding untouched.
    pub path: String,
    /// The raw query string without the `?` (empty when there is none).
    pub query: String,
    pub headers: Headers,
    pub body: Body,
}

impl Request {
    /// The value of one query parameter, percent-decoded; `None` when absent.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

/// Decodes `%XX` escapes and `+` (form encoding); malformed escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A response on its way out.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response; the value is serialized once, here.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut resp = Self::new(status);
        resp.headers.set("content-type", "application/json");
        resp.body = value.to_string().into_bytes();
        resp
    }

    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.set(name, value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_handles_escapes_plus_and_garbage() {
        assert_eq!(percent_decode("image%2F%2A"), "image/*");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn query_param_finds_first_match() {
        let req = Request {
            method: Method::Get,
            path: "/pastes".into(),
            query: "limit=5&type=image%2F*&flag".into(),
            headers: Headers::new(),
            body: Body::empty(),
        };
        assert_eq!(req.query_param("limit").as_deref(), Some("5"));
        assert_eq!(req.query_param("type").as_deref(), Some("image/*"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("offset"), None);
    }

    #[test]
    fn streamed_body_stops_past_the_limit() {
        struct Endless;
        impl BodyStream for Endless {
            fn read_chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>, BodyError> {
                Ok(Some(vec![b'x'; max.min(1000)]))
            }
        }
        let err = Body::Stream(Box::new(Endless)).read(2500).unwrap_err();
        assert_eq!(err, BodyError::TooLarge { received: 3000 });
    }
}
