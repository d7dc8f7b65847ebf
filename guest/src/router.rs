//! Routing: `(method, path)` to a handler, then the headers every response
//! carries (security headers, `X-Request-ID`). Also the only place that turns
//! an [`ApiError`] into a response, logging what the client must not see,
//! and the one place that reads whether a request is a HEAD for the framing
//! of its answer ([`Answer::head`]).

use serde_json::json;

use crate::api::{Ctx, Env, abuse, info, paste, pki, short_url};
use wasmpaste_contract::http::{SECURITY_HEADERS, is_acceptable_request_id};

use crate::domain::uuid_v4;
use crate::error::ApiError;
use crate::http::{Method, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'p> {
    Index,
    Health,
    Challenge,
    RegisterChallenge,
    Pastes,
    Paste(&'p str),
    Raw(&'p str),
    ShortUrls,
    ShortUrl(&'p str),
    ShortUrlInfo(&'p str),
    Register,
    Pki,
    PkiStatus,
    PkiCa,
    PkiCaCert,
    PkiIssue,
    PkiCerts,
    PkiRevoke(&'p str),
    OpenApi,
    Client,
}

impl<'p> Route<'p> {
    fn resolve(path: &'p str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let route = match (parts.next()?, parts.next(), parts.next(), parts.next()) {
            ("s", None, ..) => Self::ShortUrls,
            ("s", Some(id), None, _) => Self::ShortUrl(id),
            ("s", Some(id), Some("info"), None) => Self::ShortUrlInfo(id),
            ("s", ..) => return None,
            ("register", None, ..) => Self::Register,
            ("pki", None, ..) => Self::Pki,
            ("pki", Some("status"), None, _) => Self::PkiStatus,
            ("pki", Some("ca"), None, _) => Self::PkiCa,
            ("pki", Some("ca.crt"), None, _) => Self::PkiCaCert,
            ("pki", Some("issue"), None, _) => Self::PkiIssue,
            ("pki", Some("certs"), None, _) => Self::PkiCerts,
            ("pki", Some("revoke"), Some(serial), None) => Self::PkiRevoke(serial),
            ("pki", ..) => return None,
            ("openapi.json", None, ..) => Self::OpenApi,
            ("client", None, ..) => Self::Client,
            ("", None, ..) => Self::Index,
            ("health", None, ..) => Self::Health,
            ("challenge", None, ..) => Self::Challenge,
            ("register", Some("challenge"), None, _) => Self::RegisterChallenge,
            ("pastes", None, ..) => Self::Pastes,
            (id, None, ..) => Self::Paste(id),
            (id, Some("raw"), None, _) => Self::Raw(id),
            _ => return None,
        };
        Some(route)
    }

    /// The route's path as the OpenAPI document writes it.
    #[cfg(test)]
    fn template(self) -> &'static str {
        match self {
            Self::Index => "/",
            Self::Health => "/health",
            Self::Challenge => "/challenge",
            Self::RegisterChallenge => "/register/challenge",
            Self::Pastes => "/pastes",
            Self::Paste(_) => "/{id}",
            Self::Raw(_) => "/{id}/raw",
            Self::ShortUrls => "/s",
            Self::ShortUrl(_) => "/s/{id}",
            Self::ShortUrlInfo(_) => "/s/{id}/info",
            Self::Register => "/register",
            Self::Pki => "/pki",
            Self::PkiStatus => "/pki/status",
            Self::PkiCa => "/pki/ca",
            Self::PkiCaCert => "/pki/ca.crt",
            Self::PkiIssue => "/pki/issue",
            Self::PkiCerts => "/pki/certs",
            Self::PkiRevoke(_) => "/pki/revoke/{serial}",
            Self::OpenApi => "/openapi.json",
            Self::Client => "/client",
        }
    }

    fn allow(self) -> &'static str {
        match self {
            Self::Index => "GET, HEAD, POST, OPTIONS",
            Self::Health
            | Self::Challenge
            | Self::RegisterChallenge
            | Self::Pastes
            | Self::Raw(_)
            | Self::ShortUrlInfo(_)
            | Self::Pki
            | Self::PkiStatus
            | Self::PkiCaCert
            | Self::PkiCerts
            | Self::OpenApi
            | Self::Client => "GET, HEAD, OPTIONS",
            Self::Register | Self::PkiCa | Self::PkiIssue | Self::PkiRevoke(_) => "POST, OPTIONS",
            Self::Paste(_) => "GET, HEAD, PUT, DELETE, OPTIONS",
            Self::ShortUrls => "GET, HEAD, POST, OPTIONS",
            Self::ShortUrl(_) => "GET, HEAD, DELETE, OPTIONS",
        }
    }
}

/// The router's answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub response: Response,
    /// The request was a HEAD: the response carries the headers a GET would
    /// have, `Content-Length` included, and no body is to be sent.
    pub head: bool,
}

impl Answer {
    /// The response as it goes on the wire, and whether it answers a HEAD:
    /// `Content-Length` is the body's, except on a HEAD answer, which keeps
    /// the length a GET would have and sends no body.
    pub fn into_framed(self) -> (Response, bool) {
        let Self { mut response, head } = self;
        if !head {
            response
                .headers
                .set("content-length", response.body.len().to_string());
        }
        (response, head)
    }
}

/// Handles one request; never fails: every error becomes a JSON response.
pub fn answer(env: &Env<'_>, req: Request) -> Answer {
    let head = req.method == Method::Head;
    let rid = request_id(req.headers.get("x-request-id"), env);
    let ctx = Ctx::new(env, rid);
    let mut resp = dispatch(&ctx, req).unwrap_or_else(|e| error_response(&ctx, e));
    if head {
        // HEAD answers with the headers of the GET, Content-Length included.
        if !resp.headers.contains("content-length") {
            resp.headers
                .set("content-length", resp.body.len().to_string());
        }
        resp.body.clear();
    }
    for (name, value) in SECURITY_HEADERS {
        resp.headers.set(name, *value);
    }
    resp.headers.set("x-request-id", ctx.rid.as_str());
    Answer {
        response: resp,
        head,
    }
}

/// [`answer`]'s response alone: for tests and fuzzers.
pub fn handle(env: &Env<'_>, req: Request) -> Response {
    answer(env, req).response
}

fn dispatch(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let path = req.path.clone();
    let route = Route::resolve(&path).ok_or_else(ApiError::not_found)?;
    match (&req.method, route) {
        (Method::Options, route) => Ok(Response::new(204).with_header("allow", route.allow())),
        (Method::Get | Method::Head, Route::Index) => info::index(ctx, &req),
        (Method::Post, Route::Index) => paste::create(ctx, req),
        (Method::Get | Method::Head, Route::Health) => Ok(info::health(ctx)),
        (Method::Get | Method::Head, Route::Challenge) => abuse::challenge(ctx),
        (Method::Get | Method::Head, Route::RegisterChallenge) => abuse::register_challenge(ctx),
        (Method::Get | Method::Head, Route::Pastes) => paste::list(ctx, &req),
        (Method::Get | Method::Head, Route::Paste(id)) => paste::metadata(ctx, &req, id),
        (Method::Put, Route::Paste(id)) => paste::update(ctx, req, id),
        (Method::Delete, Route::Paste(id)) => paste::delete(ctx, &req, id),
        (Method::Get | Method::Head, Route::Raw(id)) => paste::raw(ctx, &req, id),
        (Method::Post, Route::ShortUrls) => short_url::create(ctx, req),
        (Method::Get | Method::Head, Route::ShortUrls) => short_url::list(ctx, &req),
        (Method::Get | Method::Head, Route::ShortUrl(id)) => short_url::redirect(ctx, id),
        (Method::Delete, Route::ShortUrl(id)) => short_url::delete(ctx, &req, id),
        (Method::Get | Method::Head, Route::ShortUrlInfo(id)) => short_url::info(ctx, id),
        (Method::Post, Route::Register) => pki::register(ctx, req),
        (Method::Get | Method::Head, Route::Pki | Route::PkiStatus) => pki::status(ctx),
        (Method::Post, Route::PkiCa) => pki::create_ca(ctx, req),
        (Method::Get | Method::Head, Route::PkiCaCert) => pki::ca_certificate(ctx),
        (Method::Post, Route::PkiIssue) => pki::issue(ctx, req),
        (Method::Get | Method::Head, Route::PkiCerts) => pki::list(ctx, &req),
        (Method::Post, Route::PkiRevoke(serial)) => pki::revoke(ctx, &req, serial),
        (Method::Get | Method::Head, Route::OpenApi) => Ok(info::openapi()),
        (Method::Get | Method::Head, Route::Client) => Err(ApiError::client_not_served()),
        (_, route) => Err(ApiError::method_not_allowed(route.allow())),
    }
}

fn error_response(ctx: &Ctx<'_>, err: ApiError) -> Response {
    if let Some(detail) = &err.internal {
        let level = if err.status >= 500 {
            "ERROR"
        } else {
            "WARNING"
        };
        ctx.log_event(level, json!({ "status": err.status, "message": detail }));
    }
    err.into_response()
}

/// The client's `X-Request-ID` if it is short and plain, else a new UUID:
/// the id ends up in logs, so it must not carry control characters.
fn request_id(sent: Option<&str>, env: &Env<'_>) -> String {
    match sent {
        Some(id) if is_acceptable_request_id(id) => id.to_owned(),
        _ => uuid_v4(env.rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each route. `every_route_is_listed` fails when a variant is
    /// missing here (the match below must name them all).
    const ALL_ROUTES: &[Route<'static>] = &[
        Route::Index,
        Route::Health,
        Route::Challenge,
        Route::RegisterChallenge,
        Route::Pastes,
        Route::Paste("x"),
        Route::Raw("x"),
        Route::ShortUrls,
        Route::ShortUrl("x"),
        Route::ShortUrlInfo("x"),
        Route::Register,
        Route::Pki,
        Route::PkiStatus,
        Route::PkiCa,
        Route::PkiCaCert,
        Route::PkiIssue,
        Route::PkiCerts,
        Route::PkiRevoke("x"),
        Route::OpenApi,
        Route::Client,
    ];

    #[test]
    fn every_route_is_listed() {
        for route in ALL_ROUTES {
            // Exhaustive: a new variant does not compile until it is handled here,
            // and then `ALL_ROUTES` gets it too.
            match route {
                Route::Index
                | Route::Health
                | Route::Challenge
                | Route::RegisterChallenge
                | Route::Pastes
                | Route::Paste(_)
                | Route::Raw(_)
                | Route::ShortUrls
                | Route::ShortUrl(_)
                | Route::ShortUrlInfo(_)
                | Route::Register
                | Route::Pki
                | Route::PkiStatus
                | Route::PkiCa
                | Route::PkiCaCert
                | Route::PkiIssue
                | Route::PkiCerts
                | Route::PkiRevoke(_)
                | Route::OpenApi
                | Route::Client => {}
            }
        }
        let templates: std::collections::BTreeSet<_> =
            ALL_ROUTES.iter().map(|r| r.template()).collect();
        assert_eq!(templates.len(), ALL_ROUTES.len());
    }

    /// The methods a route serves, lowercase, without OPTIONS (implicit).
    fn methods(route: Route<'_>) -> std::collections::BTreeSet<String> {
        route
            .allow()
            .split(", ")
            .filter(|m| *m != "OPTIONS")
            .map(str::to_ascii_lowercase)
            .collect()
    }

    /// The router and docs/openapi.yaml (served as /openapi.json) describe the
    /// same operations: every route and method is documented, and every
    /// documented operation is routed. HEAD is served wherever GET is; the
    /// document lists it where the reference does.
    #[test]
    fn the_openapi_document_matches_the_router() {
        let doc: serde_json::Value = serde_json::from_str(crate::api::info::OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for route in ALL_ROUTES {
            let documented = paths
                .get(route.template())
                .unwrap_or_else(|| panic!("{} is not in docs/openapi.yaml", route.template()));
            for method in methods(*route) {
                assert!(
                    method == "head" || documented.get(&method).is_some(),
                    "{} {} is not documented",
                    method.to_uppercase(),
                    route.template()
                );
            }
        }
        for (template, operations) in paths {
            let concrete = template
                .replace("{id}", "0123456789abcdef")
                .replace("{serial}", "0123456789abcdef0123456789abcdef");
            let route = Route::resolve(&concrete)
                .unwrap_or_else(|| panic!("documented path {template} is not routed"));
            assert_eq!(route.template(), template, "{concrete} routes elsewhere");
            let served = methods(route);
            for method in operations.as_object().unwrap().keys() {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    served.contains(method),
                    "documented {} {template} is not served",
                    method.to_uppercase()
                );
            }
        }
    }

    #[test]
    fn routes_resolve() {
        assert_eq!(Route::resolve("/"), Some(Route::Index));
        assert_eq!(Route::resolve("/health"), Some(Route::Health));
        assert_eq!(Route::resolve("/pastes"), Some(Route::Pastes));
        assert_eq!(Route::resolve("/challenge"), Some(Route::Challenge));
        assert_eq!(
            Route::resolve("/register/challenge"),
            Some(Route::RegisterChallenge)
        );
        assert_eq!(Route::resolve("/abc"), Some(Route::Paste("abc")));
        assert_eq!(Route::resolve("/abc/raw"), Some(Route::Raw("abc")));
        assert_eq!(Route::resolve("/abc/raw/x"), None);
        assert_eq!(Route::resolve("/abc/other"), None);
        assert_eq!(Route::resolve("/abc/"), None);
        assert_eq!(Route::resolve(""), None);
        assert_eq!(Route::resolve("abc"), None);
        assert_eq!(Route::resolve("/s"), Some(Route::ShortUrls));
        assert_eq!(
            Route::resolve("/s/AbCd1234"),
            Some(Route::ShortUrl("AbCd1234"))
        );
        assert_eq!(
            Route::resolve("/s/AbCd1234/info"),
            Some(Route::ShortUrlInfo("AbCd1234"))
        );
        assert_eq!(Route::resolve("/s/AbCd1234/raw"), None);
        assert_eq!(Route::resolve("/s/AbCd1234/info/x"), None);
        assert_eq!(Route::resolve("/s/"), Some(Route::ShortUrl("")));
        assert_eq!(Route::resolve("/register"), Some(Route::Register));
        assert_eq!(Route::resolve("/pki"), Some(Route::Pki));
        assert_eq!(Route::resolve("/pki/status"), Some(Route::PkiStatus));
        assert_eq!(Route::resolve("/pki/ca"), Some(Route::PkiCa));
        assert_eq!(Route::resolve("/pki/ca.crt"), Some(Route::PkiCaCert));
        assert_eq!(Route::resolve("/pki/issue"), Some(Route::PkiIssue));
        assert_eq!(Route::resolve("/pki/certs"), Some(Route::PkiCerts));
        assert_eq!(
            Route::resolve("/pki/revoke/ab"),
            Some(Route::PkiRevoke("ab"))
        );
        assert_eq!(Route::resolve("/pki/other"), None);
        assert_eq!(Route::resolve("/client"), Some(Route::Client));
        assert_eq!(Route::resolve("/pki/revoke/ab/c"), None);
    }
}
