//! The one place where errors become HTTP statuses and JSON bodies.
//!
//! Messages are the reference's, word for word, because existing FlaskPaste
//! clients match on them. Internal details (SQL errors, variable values) are
//! logged with the request id, never sent to the client.

use serde_json::{Value as Json, json};

use crate::api::abuse::{Gate, PowRefused};
use crate::api::body::{BodyRefused, Expected};
use crate::api::pki::{CertFailure, CertWork};
use crate::config::ConfigError;
use crate::domain::abuse::{AbuseError, ENTROPY_HINT};
use crate::domain::paste::PasteError;
use crate::domain::pki::PkiError;
use crate::domain::pow::PowError;
use crate::domain::short_url::ShortUrlError;
use crate::http::Response;
use crate::maintenance::MaintenanceError;
use crate::store::StoreError;

/// How to get `fpaste` where the server does not hand it out.
pub const CLIENT_HINT: &str = "This server does not serve the fpaste client: build it from the \
     wasmpaste sources with `cargo install --path cli` (docs/cli.md)";

/// An error response on its way out, plus what to log about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// Boxed: errors travel through every `Result` of the request path.
    pub body: Box<Json>,
    pub headers: Vec<(&'static str, String)>,
    /// Logged (with the request id) and never shown to the client.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: &str) -> Self {
        Self::with_body(status, json!({ "error": message }))
    }

    pub fn with_body(status: u16, body: Json) -> Self {
        Self {
            status,
            body: Box::new(body),
            headers: Vec::new(),
            internal: None,
        }
    }

    pub fn bad_request(message: &str) -> Self {
        Self::new(400, message)
    }

    pub fn not_found() -> Self {
        Self::new(404, "Not found")
    }

    /// `GET /client` where no client is served (Spin; a native host with
    /// `--no-client`): the native host serves `fpaste` there itself.
    pub fn client_not_served() -> Self {
        Self::with_body(404, json!({ "error": "Not found", "hint": CLIENT_HINT }))
    }

    pub fn method_not_allowed(allow: &str) -> Self {
        let mut e = Self::new(405, "Method not allowed");
        e.headers.push(("allow", allow.to_owned()));
        e
    }

    /// A failure of ours: 500 with a generic message, details to the log.
    pub fn internal(detail: String) -> Self {
        let mut e = Self::new(500, "Internal server error");
        e.internal = Some(detail);
        e
    }

    pub fn into_response(self) -> Response {
        let mut resp = Response::json(self.status, &self.body);
        for (name, value) in self.headers {
            resp.headers.set(name, value);
        }
        resp
    }
}

/// `Retry-After` of a 503 for a database that is unavailable for now.
const DATABASE_RETRY_AFTER_SECS: u32 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DatabaseFull => {
                let mut err = Self::new(507, "Storage quota exceeded");
                err.internal = Some(e.to_string());
                err
            }
            // The host lost the database for now (a libSQL server that
            // cannot be reached or restarts, a lock wait given up): the
            // request did nothing; the same request later may succeed.
            StoreError::InvalidConnection => {
                let mut err = Self::new(503, "Database unavailable, try again shortly");
                err.headers
                    .push(("retry-after", DATABASE_RETRY_AFTER_SECS.to_string()));
                err.internal = Some(e.to_string());
                err
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        let mut err = Self::with_body(
            500,
            json!({ "error": "Server configuration error", "variable": e.name }),
        );
        err.internal = Some(e.to_string());
        err
    }
}

impl From<MaintenanceError> for ApiError {
    fn from(e: MaintenanceError) -> Self {
        match e {
            MaintenanceError::Store(e) => e.into(),
            MaintenanceError::Config(e) => e.into(),
        }
    }
}

impl From<BodyRefused> for ApiError {
    fn from(e: BodyRefused) -> Self {
        match e {
            BodyRefused::TooLarge {
                expected: Expected::Paste { max, authenticated },
                size,
            } => PasteError::TooLarge {
                size,
                max,
                authenticated,
            }
            .into(),
            BodyRefused::TooLarge {
                expected: Expected::Url { max },
                ..
            } => ShortUrlError::TooLong { max }.into(),
            BodyRefused::TooLarge {
                expected: Expected::CommonName,
                ..
            } => Self::bad_request("Request body too large"),
            BodyRefused::Unreadable(detail) => {
                let mut err = Self::bad_request("Request body could not be read");
                err.internal = Some(detail);
                err
            }
            BodyRefused::InvalidJson(expected) => {
                let hint = match expected {
                    Expected::Paste { .. } => {
                        "Send {\"content\": \"...\"} or a raw body with --data-binary"
                    }
                    Expected::Url { .. } => {
                        "Send {\"url\": \"https://...\"} or the URL as a raw body"
                    }
                    Expected::CommonName => "Send {\"common_name\": \"...\"} or no body",
                };
                Self::with_body(400, json!({ "error": "Invalid JSON body", "hint": hint }))
            }
        }
    }
}

impl From<PasteError> for ApiError {
    fn from(e: PasteError) -> Self {
        use PasteError as P;
        match e {
            P::NoContent => Self::bad_request("No content provided"),
            P::PasswordTooLong => Self::bad_request("Password too long (max 1024 chars)"),
            P::DisplayNameTooLong => Self::bad_request("Display name too long (max 128 chars)"),
            P::DisplayNameInvalid => Self::bad_request("Display name contains invalid characters"),
            P::TooLarge {
                size,
                max,
                authenticated,
            } => Self::with_body(
                413,
                json!({
                    "error": "Paste too large",
                    "size": size,
                    "max_size": max,
                    "authenticated": authenticated,
                }),
            ),
            P::InvalidId => Self::bad_request("Invalid paste ID format"),
            P::NotFound => Self::new(404, "Paste not found"),
            P::PasswordRequired => Self::with_body(
                401,
                json!({ "error": "Password required", "password_protected": true }),
            ),
            P::InvalidPassword => Self::new(403, "Invalid password"),
            P::AuthenticationRequired => Self::new(401, "Authentication required"),
            P::PermissionDenied => Self::new(403, "Permission denied"),
            P::AdminRequired => Self::new(403, "Admin access required"),
            P::NoUpdates => Self::bad_request("No updates provided"),
            P::BurnNotUpdatable => Self::bad_request("Cannot update burn-after-read paste"),
            P::InvalidInput { name, reason } => {
                Self::bad_request(&format!("Invalid {name}: {reason}"))
            }
            P::Store(e) => e.into(),
        }
    }
}

/// A PKI error outside `/register`: cryptography failed while issuing
/// (`POST /pki/ca`, `POST /pki/issue`).
impl From<PkiError> for ApiError {
    fn from(e: PkiError) -> Self {
        CertFailure {
            work: CertWork::Issuance,
            error: e,
        }
        .into()
    }
}

impl From<CertFailure> for ApiError {
    fn from(CertFailure { work, error }: CertFailure) -> Self {
        use PkiError as P;
        match error {
            P::Disabled => Self::new(404, "PKI not enabled"),
            P::NoCa => Self::new(404, "CA not initialized"),
            P::CaExists => Self::new(409, "CA already exists"),
            P::PasswordNotConfigured => Self::new(500, "PKI_CA_PASSWORD not configured"),
            P::CommonNameRequired => Self::bad_request("common_name required"),
            P::CommonNameInvalid(reason) => {
                Self::bad_request(&format!("Invalid common_name: {reason}"))
            }
            P::AuthenticationRequired => Self::new(401, "Authentication required"),
            P::PermissionDenied => Self::new(403, "Permission denied"),
            P::CertNotFound => Self::new(404, "Certificate not found"),
            P::AlreadyRevoked => Self::new(409, "Certificate already revoked"),
            P::Crypto(detail) => {
                let message = match work {
                    CertWork::Issuance => "Certificate issuance failed",
                    CertWork::Generation => "Certificate generation failed",
                };
                let mut err = Self::new(500, message);
                err.internal = Some(detail);
                err
            }
            P::Store(e) => e.into(),
        }
    }
}

impl From<ShortUrlError> for ApiError {
    fn from(e: ShortUrlError) -> Self {
        use ShortUrlError as S;
        match e {
            S::NoUrl => Self::bad_request("No URL provided"),
            S::InvalidScheme => Self::bad_request("Invalid URL scheme (only http/https allowed)"),
            S::MissingHost => Self::bad_request("Invalid URL: missing host"),
            S::ControlCharacters => {
                Self::bad_request("Invalid URL: control characters are not allowed")
            }
            S::Malformed(reason) => Self::bad_request(&format!("Invalid URL: {reason}")),
            S::TooLong { max } => Self::bad_request(&format!("URL too long (max {max} bytes)")),
            S::InvalidId => Self::bad_request("Invalid short URL ID format"),
            S::NotFound => Self::new(404, "Short URL not found"),
            S::AuthenticationRequired => Self::new(401, "Authentication required"),
            S::PermissionDenied => Self::new(403, "Permission denied"),
            S::Store(e) => e.into(),
        }
    }
}

/// An abuse error outside `/register`: a missing proof-of-work is the
/// creation gate's (`POST /`, `POST /s`).
impl From<AbuseError> for ApiError {
    fn from(e: AbuseError) -> Self {
        PowRefused {
            gate: Gate::Creation,
            error: e,
        }
        .into()
    }
}

impl From<PowRefused> for ApiError {
    fn from(PowRefused { gate, error }: PowRefused) -> Self {
        use AbuseError as A;
        match error {
            A::Pow(PowError::Required) => {
                // Where the client gets a challenge for this gate.
                let hint = match gate {
                    Gate::Creation => "GET /challenge for a new challenge",
                    Gate::Registration => "GET /register/challenge for a new challenge",
                };
                Self::with_body(
                    400,
                    json!({ "error": "Proof-of-work required", "hint": hint }),
                )
            }
            A::Pow(PowError::Failed(reason)) => {
                Self::bad_request(&format!("Proof-of-work failed: {reason}"))
            }
            A::Replayed => Self::bad_request("Proof-of-work failed: Challenge already used"),
            A::RateLimited(s) => {
                let mut err = Self::with_body(
                    429,
                    json!({ "error": "Rate limit exceeded", "retry_after": s.retry_after }),
                );
                err.headers.extend([
                    ("retry-after", s.retry_after.to_string()),
                    ("x-ratelimit-limit", s.limit.to_string()),
                    ("x-ratelimit-remaining", s.remaining.to_string()),
                    ("x-ratelimit-reset", s.reset.to_string()),
                ]);
                err
            }
            A::Duplicate { count, window } => {
                duplicate("Duplicate content rate limit exceeded", count, window)
            }
            A::DuplicateUrl { count, window } => {
                duplicate("Duplicate URL rate limit exceeded", count, window)
            }
            A::TooSmall { size, min } => Self::with_body(
                400,
                json!({ "error": "Paste too small", "size": size, "min_size": min }),
            ),
            A::Recognizable { detected } => Self::with_body(
                400,
                json!({
                    "error": "Recognizable format not allowed",
                    "detected": detected,
                    "hint": ENTROPY_HINT,
                }),
            ),
            A::LowEntropy { entropy, min } => Self::with_body(
                400,
                json!({
                    "error": "Content entropy too low",
                    "entropy": (entropy * 100.0).round() / 100.0,
                    "min_entropy": min,
                    "hint": ENTROPY_HINT,
                }),
            ),
            A::Store(e) => e.into(),
        }
    }
}

/// The 429 of a dedup limit: at most `count` submissions per `window` seconds.
fn duplicate(message: &str, count: u64, window: i64) -> ApiError {
    ApiError::with_body(
        429,
        json!({
            "error": message,
            "count": count,
            "window_seconds": window,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_database_connection_is_a_503_to_retry() {
        let e = ApiError::from(StoreError::InvalidConnection);
        assert_eq!(e.status, 503);
        assert!(
            e.headers
                .iter()
                .any(|(n, v)| *n == "retry-after" && v == "2")
        );
        let other = ApiError::from(StoreError::Io("no such table: x".into()));
        assert_eq!(other.status, 500);
    }

    #[test]
    fn statuses_and_messages_follow_the_reference() {
        let cases: Vec<(PasteError, u16, &str)> = vec![
            (PasteError::NoContent, 400, "No content provided"),
            (PasteError::InvalidId, 400, "Invalid paste ID format"),
            (PasteError::NotFound, 404, "Paste not found"),
            (PasteError::PasswordRequired, 401, "Password required"),
            (PasteError::InvalidPassword, 403, "Invalid password"),
            (
                PasteError::AuthenticationRequired,
                401,
                "Authentication required",
            ),
            (PasteError::AdminRequired, 403, "Admin access required"),
            (PasteError::NoUpdates, 400, "No updates provided"),
            (
                PasteError::BurnNotUpdatable,
                400,
                "Cannot update burn-after-read paste",
            ),
        ];
        for (err, status, message) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status, status);
            assert_eq!(api.body["error"], message);
        }
    }

    #[test]
    fn store_failures_hide_details() {
        let api = ApiError::from(StoreError::Io("disk I/O error at /secret/path".into()));
        assert_eq!(api.status, 500);
        assert!(!api.body.to_string().contains("secret"));
        assert!(api.internal.unwrap().contains("/secret/path"));
        assert_eq!(ApiError::from(StoreError::DatabaseFull).status, 507);
    }

    /// The wording that differs by route is chosen by data the raiser
    /// attaches, and each route keeps the reference's words.
    #[test]
    fn route_specific_wording_follows_the_data() {
        let body = |e: ApiError| (e.status, e.body.to_string());
        let paste = Expected::Paste {
            max: 10,
            authenticated: false,
        };
        let url = Expected::Url { max: 20 };
        assert_eq!(
            body(BodyRefused::InvalidJson(paste).into()),
            (400, r#"{"error":"Invalid JSON body","hint":"Send {\"content\": \"...\"} or a raw body with --data-binary"}"#.into())
        );
        assert_eq!(
            body(BodyRefused::InvalidJson(url).into()),
            (400, r#"{"error":"Invalid JSON body","hint":"Send {\"url\": \"https://...\"} or the URL as a raw body"}"#.into())
        );
        assert_eq!(
            body(BodyRefused::InvalidJson(Expected::CommonName).into()),
            (400, r#"{"error":"Invalid JSON body","hint":"Send {\"common_name\": \"...\"} or no body"}"#.into())
        );
        let too_large = |expected| BodyRefused::TooLarge { expected, size: 99 };
        assert_eq!(
            body(too_large(paste).into()),
            (
                413,
                r#"{"error":"Paste too large","size":99,"max_size":10,"authenticated":false}"#
                    .into()
            )
        );
        assert_eq!(
            body(too_large(url).into()),
            (400, r#"{"error":"URL too long (max 20 bytes)"}"#.into())
        );
        assert_eq!(
            body(too_large(Expected::CommonName).into()),
            (400, r#"{"error":"Request body too large"}"#.into())
        );
        let unreadable = ApiError::from(BodyRefused::Unreadable("reset by peer".into()));
        assert_eq!(unreadable.body["error"], "Request body could not be read");
        assert_eq!(unreadable.internal.as_deref(), Some("reset by peer"));

        let required = |gate| PowRefused {
            gate,
            error: AbuseError::Pow(PowError::Required),
        };
        assert_eq!(
            ApiError::from(required(Gate::Creation)).body["hint"],
            "GET /challenge for a new challenge"
        );
        assert_eq!(
            ApiError::from(AbuseError::Pow(PowError::Required)).body["hint"],
            "GET /challenge for a new challenge"
        );
        assert_eq!(
            ApiError::from(required(Gate::Registration)).body["hint"],
            "GET /register/challenge for a new challenge"
        );
        assert_eq!(
            body(
                AbuseError::DuplicateUrl {
                    count: 3,
                    window: 60
                }
                .into()
            ),
            (
                429,
                r#"{"error":"Duplicate URL rate limit exceeded","count":3,"window_seconds":60}"#
                    .into()
            )
        );
        assert_eq!(
            body(AbuseError::Duplicate { count: 3, window: 60 }.into()),
            (429, r#"{"error":"Duplicate content rate limit exceeded","count":3,"window_seconds":60}"#.into())
        );

        let crypto = || PkiError::Crypto("detail".into());
        assert_eq!(
            ApiError::from(crypto()).body["error"],
            "Certificate issuance failed"
        );
        let generation = ApiError::from(CertFailure {
            work: CertWork::Generation,
            error: crypto(),
        });
        assert_eq!(
            (generation.status, &generation.body["error"]),
            (500, &json!("Certificate generation failed"))
        );
        assert_eq!(generation.internal.as_deref(), Some("detail"));
    }
}
