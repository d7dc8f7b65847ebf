//! Shortener routes: `POST /s`, `GET /s`, `GET|HEAD /s/{id}`,
//! `GET|HEAD /s/{id}/info`, `DELETE /s/{id}`.

use serde_json::{Map, Value as Json, json};

use super::body::{self, Expected};
use super::{Ctx, abuse, expiry_policy, parse_int};
use crate::config;
use crate::domain::abuse as abuse_rules;
use crate::domain::identity;
use crate::domain::short_url::{self as domain, ShortUrlError};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::short_url::ShortUrl;

/// A JSON string may escape each character as `\uXXXX`: six bytes per byte
/// of URL, plus room for the object around it.
const JSON_FACTOR: u64 = 6;
const JSON_OVERHEAD: u64 = 4096;

/// The target URL from a JSON `{"url": ...}` or a raw text body.
fn read_target(req: &mut Request, max: u64) -> Result<String, ApiError> {
    let expected = Expected::Url { max };
    let json = body::is_json(&req.headers);
    let cap = if json {
        max.saturating_mul(JSON_FACTOR)
            .saturating_add(JSON_OVERHEAD)
    } else {
        // Room for the surrounding whitespace that is trimmed later.
        max.saturating_add(JSON_OVERHEAD)
    };
    let bytes = body::read(req, cap, expected)?;
    if json {
        match body::json(&bytes, expected)?.get("url") {
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
    let db = ctx.db()?;
    let admission = abuse::admit(ctx, &req.headers, &who)?;
    abuse_rules::dedup_url(
        db,
        &target,
        ctx.now(),
        ctx.cfg.get(&config::DEDUP_MAX)?,
        ctx.cfg.get(&config::DEDUP_WINDOW)?,
    )?;
    let url = domain::create(
        db,
        ctx.rng(),
        ctx.now(),
        &who,
        &expiry_policy(ctx)?,
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

/// `GET|HEAD /s/{id}`: 302 to the target; every access counts, HEAD too.
pub fn redirect(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    if !domain::is_valid_id(id) {
        return Err(ShortUrlError::InvalidId.into());
    }
    let target = domain::redirect(ctx.db()?, ctx.now(), id)?;
    Ok(Response::new(302).with_header("location", target))
}

/// `GET|HEAD /s/{id}/info`: details without counting an access. The owner is
/// shown shortened: this route needs no authentication.
pub fn info(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    if !domain::is_valid_id(id) {
        return Err(ShortUrlError::InvalidId.into());
    }
    let url = domain::info(ctx.db()?, ctx.now(), id)?;
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
    domain::delete(ctx.db()?, ctx.now(), &who, id)?;
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
    let (urls, total, limit, offset) = domain::list(ctx.db()?, ctx.now(), &who, limit, offset)?;
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
