//! Shortener routes: `POST /s`, `GET /s`, `GET|HEAD /s/{id}`,
//! `GET|HEAD /s/{id}/info`, `DELETE /s/{id}`.

use serde_json::{Map, Value as Json, json};

use super::{Ctx, abuse, parse_int, paste::is_json};
use crate::config;
use crate::domain::abuse::{self as abuse_rules, AbuseError};
use crate::domain::identity;
use crate::domain::short_url::{self as domain, ShortUrlError};
use crate::error::ApiError;
use crate::http::{BodyError, Request, Response};
use crate::store::short_url::ShortUrl;

/// A JSON string may escape each character as `\uXXXX`: six bytes per byte
/// of URL, plus room for the object around it.
const JSON_FACTOR: u64 = 6;
const JSON_OVERHEAD: u64 = 4096;

/// Separates URL hashes from paste-content hashes in the dedup table, so a
/// paste that happens to hold a URL does not count against shortening it.
const DEDUP_DOMAIN: &[u8] = b"short-url\0";

/// The target URL from a JSON `{"url": ...}` or a raw text body.
fn read_target(req: &mut Request, max: u64) -> Result<String, ApiError> {
    let json = is_json(&req.headers);
    let cap = if json {
        max.saturating_mul(JSON_FACTOR)
            .saturating_add(JSON_OVERHEAD)
    } else {
        // Room for the surrounding whitespace that is trimmed later.
        max.saturating_add(JSON_OVERHEAD)
    };
    let too_long = || ApiError::from(ShortUrlError::TooLong { max });
    if req
        .headers
        .get("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|declared| declared > cap)
    {
        return Err(too_long());
    }
    let body = std::mem::replace(&mut req.body, crate::http::Body::empty());
    let bytes = body.read(cap).map_err(|e| match e {
        BodyError::TooLarge { .. } => too_long(),
        BodyError::Broken(detail) => {
            let mut err = ApiError::bad_request("Request body could not be read");
            err.internal = Some(detail);
            err
        }
    })?;
    if json {
        let value: Json = serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::with_body(
                400,
                json!({
                    "error": "Invalid JSON body",
                    "hint": "Send {\"url\": \"https://...\"} or the URL as a raw body",
                }),
            )
        })?;
        match value.get("url") {
            Some(Json::String(url)) => Ok(url.clone()),
            _ => Err(ShortUrlError::NoUrl.into()),
        }
    } else {
        String::from_utf8(bytes)
            .map_err(|_| ShortUrlError::Malformed("not valid UTF-8".into()).into())
    }
}

/// `POST /s`. The URL is checked before admission, so a typo costs neither a
/// proof-of-work solution nor a slot of the rate limit.
pub fn create(ctx: &Ctx<'_>, mut req: Request) -> Result<Response, ApiError> {
    let who = ctx.identity(&req.headers)?;
    let max = ctx.cfg.get(&config::SHORT_URL_MAX)?;
    let raw = read_target(&mut req, max)?;
    let target = domain::validate_target(&raw, max)?;
    ctx.prepare_db()?;
    let admission = abuse::admit(ctx, &req.headers, &who)?;
    dedup(ctx, &target)?;
    let policy = super::paste::policy(ctx)?;
    let url = domain::create(
        ctx.db(),
        ctx.env.rng,
        ctx.now(),
        &who,
        &policy,
        target,
        req.headers.get("x-expiry"),
    )?;
    abuse::record_creation(ctx)?;

    let mut body = Map::new();
    body.insert("id".into(), json!(url.id));
    body.insert("url".into(), json!(ctx.url(&format!("/s/{}", url.id))?));
    body.insert("target_url".into(), json!(url.target_url));
    body.insert("created_at".into(), json!(url.created_at));
    if let Some(owner) = &url.owner {
        body.insert("owner".into(), json!(owner));
    }
    body.insert("expires_at".into(), json!(url.expires_at));
    let mut resp = Response::json(201, &Json::Object(body));
    admission.decorate(&mut resp);
    Ok(resp)
}

/// The duplicate-URL limit: `dedup_max` shortenings of one URL per window.
fn dedup(ctx: &Ctx<'_>, target: &str) -> Result<(), ApiError> {
    let key = [DEDUP_DOMAIN, target.as_bytes()].concat();
    abuse_rules::dedup(
        ctx.db(),
        &key,
        ctx.now(),
        ctx.cfg.get(&config::DEDUP_MAX)?,
        ctx.cfg.get(&config::DEDUP_WINDOW)?,
    )
    .map_err(|e| match e {
        AbuseError::Duplicate { count, window } => ApiError::with_body(
            429,
            json!({
                "error": "Duplicate URL rate limit exceeded",
                "count": count,
                "window_seconds": window,
            }),
        ),
        other => other.into(),
    })
}

/// `GET|HEAD /s/{id}`: 302 to the target; every access counts, HEAD too.
pub fn redirect(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    if !domain::is_valid_id(id) {
        return Err(ShortUrlError::InvalidId.into());
    }
    ctx.prepare_db()?;
    let target = domain::redirect(ctx.db(), ctx.now(), id)?;
    Ok(Response::new(302).with_header("location", target))
}

/// `GET|HEAD /s/{id}/info`: details without counting an access. The owner is
/// shown shortened: this route needs no authentication.
pub fn info(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    if !domain::is_valid_id(id) {
        return Err(ShortUrlError::InvalidId.into());
    }
    ctx.prepare_db()?;
    let url = domain::info(ctx.db(), ctx.now(), id)?;
    Ok(Response::json(
        200,
        &json!({
            "id": url.id,
            "target_url": url.target_url,
            "created_at": url.created_at,
            "last_accessed": url.last_accessed,
            "access_count": url.access_count,
            "url": ctx.url(&format!("/s/{}", url.id))?,
            "owner": url.owner.as_deref().map(identity::truncated),
            "expires_at": url.expires_at,
        }),
    ))
}

/// `DELETE /s/{id}`: the owner's, or any for the admin.
pub fn delete(ctx: &Ctx<'_>, req: &Request, id: &str) -> Result<Response, ApiError> {
    if !domain::is_valid_id(id) {
        return Err(ShortUrlError::InvalidId.into());
    }
    let who = ctx.identity(&req.headers)?;
    ctx.prepare_db()?;
    domain::delete(ctx.db(), ctx.now(), &who, id)?;
    Ok(Response::json(
        200,
        &json!({ "message": "Short URL deleted" }),
    ))
}

/// `GET /s`: the client's short URLs, newest first.
pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    let who = ctx.identity(&req.headers)?;
    let limit = parse_int("limit", req.query_param("limit").as_deref())?;
    let offset = parse_int("offset", req.query_param("offset").as_deref())?;
    if !who.is_authenticated() {
        return Err(ShortUrlError::AuthenticationRequired.into());
    }
    ctx.prepare_db()?;
    let (urls, total, limit, offset) = domain::list(ctx.db(), ctx.now(), &who, limit, offset)?;
    let items = urls
        .iter()
        .map(|u| list_item(ctx, u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Response::json(
        200,
        &json!({
            "urls": items,
            "count": items.len(),
            "total": total,
            "limit": limit,
            "offset": offset,
        }),
    ))
}

fn list_item(ctx: &Ctx<'_>, u: &ShortUrl) -> Result<Json, ApiError> {
    Ok(json!({
        "id": u.id,
        "target_url": u.target_url,
        "created_at": u.created_at,
        "access_count": u.access_count,
        "url": ctx.url(&format!("/s/{}", u.id))?,
    }))
}
