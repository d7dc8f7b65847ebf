//! Request bodies as handlers take them in: read up to the route's cap and,
//! when JSON, parsed. Every refusal says what the route expected, so
//! `error.rs` words it for that route.
//!
//! Never decides statuses or messages (that is `error.rs`), and never reads
//! more than the cap.

use serde_json::Value as Json;

use crate::http::{Body, BodyError, Headers, Request};

/// What a route expects in its body; the wording of its refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Paste content (`POST /`, `PUT /{id}`): too large is the reference's
    /// 413 with the client's limit.
    Paste { max: u64, authenticated: bool },
    /// A URL to shorten (`POST /s`) of at most `max` bytes.
    Url { max: u64 },
    /// An optional `{"common_name": ...}` (the PKI routes and `/register`).
    CommonName,
}

impl Expected {
    /// Whether a `Content-Length` above the cap is refused before reading.
    /// The PKI routes' bodies, a few bytes under a small cap, are judged by
    /// what arrives, as they always were.
    fn refused_by_declared_length(self) -> bool {
        !matches!(self, Self::CommonName)
    }
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyRefused {
    /// More than the route takes: `size` bytes declared, or read before stopping.
    TooLarge { expected: Expected, size: u64 },
    /// The client went away or the stream broke; the detail is for the log.
    Unreadable(String),
    /// A body announced or required as JSON that does not parse.
    InvalidJson(Expected),
}

/// Whether the request's `Content-Type` is JSON (parameters such as
/// `charset` aside).
pub fn is_json(headers: &Headers) -> bool {
    headers.get("content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Takes the body out of `req` and reads it, refusing as soon as it passes
/// `cap` bytes (or, for most routes, at once when `Content-Length` says it will).
pub fn read(req: &mut Request, cap: u64, expected: Expected) -> Result<Vec<u8>, BodyRefused> {
    let too_large = |size| BodyRefused::TooLarge { expected, size };
    if expected.refused_by_declared_length()
        && let Some(declared) = req
            .headers
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok())
        && declared > cap
    {
        return Err(too_large(declared));
    }
    let body = std::mem::replace(&mut req.body, Body::empty());
    body.read(cap).map_err(|e| match e {
        BodyError::TooLarge { received } => too_large(received),
        BodyError::Broken(detail) => BodyRefused::Unreadable(detail),
    })
}

/// A body parsed as JSON.
pub fn json(bytes: &[u8], expected: Expected) -> Result<Json, BodyRefused> {
    serde_json::from_slice(bytes).map_err(|_| BodyRefused::InvalidJson(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn request(content_length: Option<&str>, body: &[u8]) -> Request {
        let mut headers = Headers::new();
        if let Some(len) = content_length {
            headers.append("content-length", len);
        }
        Request {
            method: Method::Post,
            path: "/".into(),
            query: String::new(),
            headers,
            body: Body::Bytes(body.to_vec()),
        }
    }

    #[test]
    fn bodies_past_the_cap_are_refused_with_what_the_route_expected() {
        let paste = Expected::Paste {
            max: 4,
            authenticated: false,
        };
        assert_eq!(
            read(&mut request(None, b"1234"), 4, paste),
            Ok(b"1234".to_vec())
        );
        assert_eq!(
            read(&mut request(None, b"12345"), 4, paste),
            Err(BodyRefused::TooLarge {
                expected: paste,
                size: 5
            })
        );
        // Refused from Content-Length alone, before reading...
        assert_eq!(
            read(&mut request(Some("100"), b"1"), 4, paste),
            Err(BodyRefused::TooLarge {
                expected: paste,
                size: 100
            })
        );
        // ...except on the PKI routes, which judge what arrives.
        assert_eq!(
            read(&mut request(Some("100"), b"1"), 4, Expected::CommonName),
            Ok(b"1".to_vec())
        );
    }

    #[test]
    fn json_refusals_name_the_route() {
        let url = Expected::Url { max: 9 };
        assert_eq!(json(b"{nope", url), Err(BodyRefused::InvalidJson(url)));
        assert_eq!(
            json(br#"{"url":"x"}"#, url).ok().map(|v| v["url"].clone()),
            Some("x".into())
        );
        let mut headers = Headers::new();
        headers.append("Content-Type", "Application/JSON; charset=utf-8");
        assert!(is_json(&headers));
        assert!(!is_json(&Headers::new()));
    }
}
