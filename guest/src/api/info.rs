//! `GET /` (API information) and `GET /health` (database check).

use serde_json::json;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};

/// The service's name and version in `GET /`.
pub const NAME: &str = "wasmpaste";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn index(ctx: &Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    // Examples point at the address the client used, so they can be pasted as they are.
    let host = req
        .headers
        .get("host")
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match req.headers.get("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let base = format!("{scheme}://{host}{}/", ctx.url("")?);
    Ok(Response::json(
        200,
        &json!({
            "name": NAME,
            "version": VERSION,
            "endpoints": {
                "GET /": "API information",
                "GET /health": "Health check",
                "POST /": "Create paste",
                "GET /<id>": "Retrieve paste metadata",
                "HEAD /<id>": "Retrieve paste metadata headers",
                "GET /<id>/raw": "Retrieve raw paste content",
                "HEAD /<id>/raw": "Retrieve raw paste headers (type, size)",
                "PUT /<id>": "Update paste (owner)",
                "DELETE /<id>": "Delete paste (owner or admin)",
                "GET /pastes": "List your pastes (authenticated)",
                "GET /challenge": "Proof-of-work challenge for creating",
                "GET /register/challenge": "Proof-of-work challenge for registering",
                "POST /s": "Shorten a URL",
                "GET /s": "List your short URLs (authenticated)",
                "GET /s/<id>": "Redirect to the target URL",
                "GET /s/<id>/info": "Short URL details",
                "DELETE /s/<id>": "Delete short URL (owner or admin)",
                "POST /register": "Register for a client certificate (PKCS#12)",
                "GET /pki": "PKI status",
                "GET /pki/status": "PKI status (the same)",
                "POST /pki/ca": "Generate the CA (once)",
                "GET /pki/ca.crt": "CA certificate (PEM)",
                "POST /pki/issue": "Issue a client certificate",
                "GET /pki/certs": "List your certificates",
                "POST /pki/revoke/<serial>": "Revoke a certificate",
                "GET /openapi.json": "OpenAPI 3.1 description of this API",
                "GET /client": "The fpaste command-line client (Linux x86_64; native host)",
            },
            "usage": {
                "raw": format!("curl --data-binary @file.txt {base}"),
                "pipe": format!("cat file.txt | curl --data-binary @- {base}"),
                "json": format!("curl -H 'Content-Type: application/json' -d '{{\"content\":\"...\"}}' {base}"),
                "shorten": format!("curl --data-binary 'https://example.com/long/path' {base}s"),
            },
            "note": "Use --data-binary (not -d) to preserve newlines",
        }),
    ))
}

/// docs/openapi.yaml as JSON, converted by build.rs.
pub const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// `GET /openapi.json`: the API contract this build implements.
pub fn openapi() -> Response {
    let mut resp = Response::new(200).with_header("content-type", "application/json");
    resp.body = OPENAPI.as_bytes().to_vec();
    resp
}

/// `GET /health`: whether the database can be prepared (opened, migrated)
/// and every variable parses. The native host refuses to start with a bad
/// variable; Spin has no start-up hook, so there the health check is where
/// an orchestrator sees it (each bad value logged as the host would print it).
pub fn health(ctx: &Ctx<'_>) -> Response {
    let problems = ctx.cfg.check_all();
    if !problems.is_empty() {
        for problem in &problems {
            ctx.log_event("ERROR", json!({ "message": problem }));
        }
        return Response::json(
            503,
            &json!({ "status": "unhealthy", "database": "ok", "configuration": "invalid" }),
        );
    }
    match ctx.db() {
        Ok(_) => Response::json(200, &json!({ "status": "healthy", "database": "ok" })),
        Err(e) => {
            ctx.log_event(
                "ERROR",
                json!({ "message": "health check failed", "detail": e.internal }),
            );
            Response::json(503, &json!({ "status": "unhealthy", "database": "error" }))
        }
    }
}
