//! Paste routes: `POST /`, `GET|HEAD /{id}`, `GET|HEAD /{id}/raw`,
//! `PUT /{id}`, `DELETE /{id}`, `GET /pastes`.

use serde_json::{Map, Value as Json, json};

use super::{Ctx, abuse, parse_int};
use crate::config;
use crate::domain::identity::{self, Identity};
use crate::domain::paste::{
    self as domain, CreateRequest, ListRequest, PasteError, Policy, UpdateRequest, is_truthy,
};
use crate::domain::{mime, time::iso8601};
use crate::error::ApiError;
use crate::http::{BodyError, Headers, Request, Response};
use crate::store::paste::PasteMeta;

/// Headroom for JSON bodies (`{"content": ...}`): escapes make JSON longer
/// than the content it carries; the decoded content gets the exact limit.
const JSON_OVERHEAD: u64 = 64 * 1024;

pub fn policy(ctx: &Ctx<'_>) -> Result<Policy, ApiError> {
    Ok(Policy {
        max_anon: ctx.cfg.get(&config::MAX_ANON)?,
        max_auth: ctx.cfg.get(&config::MAX_AUTH)?,
        expiry_anon: ctx.cfg.get(&config::EXPIRY_ANON)?,
        expiry_untrusted: ctx.cfg.get(&config::EXPIRY_UNTRUSTED)?,
        expiry_trusted: ctx.cfg.get(&config::EXPIRY_TRUSTED)?,
        max_expiry: ctx.cfg.get(&config::MAX_EXPIRY)?,
    })
}

fn password(headers: &Headers) -> Option<Vec<u8>> {
    headers
        .get_bytes("x-paste-password")
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
}

/// `X-Display-Name` as text; a value that is not UTF-8 is an invalid name.
fn display_name(headers: &Headers) -> Result<Option<String>, PasteError> {
    match headers.get_bytes("x-display-name") {
        None => Ok(None),
        Some(raw) => std::str::from_utf8(raw)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| PasteError::DisplayNameInvalid),
    }
}

pub fn is_json(headers: &Headers) -> bool {
    headers.get("content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Reads the body, refusing early (from `Content-Length`) or as soon as it
/// passes `cap` bytes, with the reference's 413 details.
fn read_body(req: &mut Request, who: &Identity, max: u64, cap: u64) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: u64| PasteError::TooLarge {
        size,
        max,
        authenticated: who.is_authenticated(),
    };
    if let Some(declared) = req
        .headers
        .get("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        && declared > cap
    {
        return Err(too_large(declared).into());
    }
    let body = std::mem::replace(&mut req.body, crate::http::Body::empty());
    body.read(cap).map_err(|e| match e {
        BodyError::TooLarge { received } => too_large(received).into(),
        BodyError::Broken(detail) => {
            let mut err = ApiError::bad_request("Request body could not be read");
            err.internal = Some(detail);
            err
        }
    })
}

/// The content of a JSON body `{"content": "..."}`.
fn json_content(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value: Json = serde_json::from_slice(body).map_err(|_| {
        ApiError::with_body(
            400,
            json!({
                "error": "Invalid JSON body",
                "hint": "Send {\"content\": \"...\"} or a raw body with --data-binary",
            }),
        )
    })?;
    match value.get("content") {
        Some(Json::String(s)) => Ok(s.as_bytes().to_vec()),
        _ => Err(PasteError::NoContent.into()),
    }
}

pub fn create(ctx: &Ctx<'_>, mut req: Request) -> Result<Response, ApiError> {
    let who = ctx.identity(&req.headers)?;
    let policy = policy(ctx)?;
    let password = password(&req.headers);
    let display_name = if who.is_authenticated() {
        display_name(&req.headers)?
    } else {
        None
    };
    domain::check_create_headers(&who, password.as_deref(), display_name.as_deref())?;
    ctx.prepare_db()?;
    let admission = abuse::admit(ctx, &req.headers, &who)?;

    let max = policy.max_size(&who);
    let json = is_json(&req.headers);
    let cap = if json {
        max.saturating_mul(2).saturating_add(JSON_OVERHEAD)
    } else {
        max
    };
    let body = read_body(&mut req, &who, max, cap)?;
    let content = if json { json_content(&body)? } else { body };
    if content.is_empty() {
        return Err(PasteError::NoContent.into());
    }
    let declared = if json {
        None
    } else {
        req.headers.get("content-type")
    };
    let mime_type = mime::detect(&content, declared);
    abuse::check_content(ctx, &content, &mime_type)?;
    let create = CreateRequest {
        content,
        mime_type,
        burn_after_read: req.headers.get("x-burn-after-read").is_some_and(is_truthy),
        expiry: req.headers.get("x-expiry").map(str::to_owned),
        password,
        display_name,
    };

    let meta = domain::create(ctx.db(), ctx.env.rng, ctx.now(), &who, &policy, create)?;
    abuse::record_creation(ctx)?;

    let mut body = Map::new();
    body.insert("id".into(), json!(meta.id));
    body.insert("url".into(), json!(ctx.url(&format!("/{}", meta.id))?));
    body.insert("raw".into(), json!(ctx.url(&format!("/{}/raw", meta.id))?));
    body.insert("mime_type".into(), json!(meta.mime_type));
    body.insert("created_at".into(), json!(meta.created_at));
    body.insert("expires_at".into(), json!(meta.expires_at));
    if let Some(owner) = &meta.owner {
        body.insert("owner".into(), json!(owner));
    }
    insert_flags(&mut body, &meta);
    let mut resp = Response::json(201, &Json::Object(body));
    admission.decorate(&mut resp);
    Ok(resp)
}

/// The optional fields every paste view shows only when they apply.
fn insert_flags(body: &mut Map<String, Json>, meta: &PasteMeta) {
    if meta.burn_after_read {
        body.insert("burn_after_read".into(), json!(true));
    }
    if meta.password_hash.is_some() {
        body.insert("password_protected".into(), json!(true));
    }
    if let Some(name) = &meta.display_name {
        body.insert("display_name".into(), json!(name));
    }
}

pub fn metadata(ctx: &Ctx<'_>, req: &Request, id: &str, head: bool) -> Result<Response, ApiError> {
    ctx.prepare_db()?;
    let meta = domain::metadata(
        ctx.db(),
        ctx.now(),
        id,
        password(&req.headers).as_deref(),
        !head,
    )?;
    let mut body = Map::new();
    body.insert("id".into(), json!(meta.id));
    body.insert("mime_type".into(), json!(meta.mime_type));
    body.insert("size".into(), json!(meta.size));
    body.insert("created_at".into(), json!(meta.created_at));
    body.insert("expires_at".into(), json!(meta.expires_at));
    body.insert("raw".into(), json!(ctx.url(&format!("/{}/raw", meta.id))?));
    insert_flags(&mut body, &meta);
    Ok(Response::json(200, &Json::Object(body)))
}

pub fn raw(ctx: &Ctx<'_>, req: &Request, id: &str, head: bool) -> Result<Response, ApiError> {
    ctx.prepare_db()?;
    let raw = domain::raw(
        ctx.db(),
        ctx.now(),
        id,
        password(&req.headers).as_deref(),
        head,
    )?;
    let mut resp = Response::new(200).with_header("content-type", raw.meta.mime_type.as_str());
    if mime::is_inline(&raw.meta.mime_type) {
        resp.headers.set("content-disposition", "inline");
    }
    if raw.burned {
        resp.headers.set("x-burn-after-read", "true");
    }
    if head {
        // What a GET would send, so clients learn the size without downloading.
        resp.headers
            .set("content-length", raw.meta.size.to_string());
    }
    resp.body = raw.content;
    Ok(resp)
}

pub fn update(ctx: &Ctx<'_>, mut req: Request, id: &str) -> Result<Response, ApiError> {
    // Cheap refusals first, before a possibly large body is read.
    if !domain::is_valid_id(id) {
        return Err(PasteError::InvalidId.into());
    }
    let who = ctx.identity(&req.headers)?;
    if !who.is_authenticated() {
        return Err(PasteError::AuthenticationRequired.into());
    }
    let policy = policy(ctx)?;
    let max = policy.max_size(&who);
    let body = read_body(&mut req, &who, max, max)?;
    let flag = |name: &str| req.headers.get(name).is_some_and(is_truthy);
    let update = UpdateRequest {
        content: (!body.is_empty())
            .then(|| (body, req.headers.get("content-type").map(str::to_owned))),
        password: password(&req.headers),
        remove_password: flag("x-remove-password"),
        display_name: display_name(&req.headers)?,
        remove_display_name: flag("x-remove-display-name"),
        extend_expiry: req.headers.get("x-extend-expiry").map(str::to_owned),
    };
    ctx.prepare_db()?;
    let meta = domain::update(ctx.db(), ctx.env.rng, ctx.now(), &who, &policy, id, update)?;
    let mut body = Map::new();
    body.insert("id".into(), json!(meta.id));
    body.insert("size".into(), json!(meta.size));
    body.insert("mime_type".into(), json!(meta.mime_type));
    body.insert("expires_at".into(), json!(meta.expires_at));
    insert_flags(&mut body, &meta);
    Ok(Response::json(200, &Json::Object(body)))
}

pub fn delete(ctx: &Ctx<'_>, req: &Request, id: &str) -> Result<Response, ApiError> {
    let who = ctx.identity(&req.headers)?;
    ctx.prepare_db()?;
    domain::delete(ctx.db(), ctx.now(), &who, id)?;
    Ok(Response::json(200, &json!({ "message": "Paste deleted" })))
}

pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    let who = ctx.identity(&req.headers)?;
    let query = ListRequest {
        limit: parse_int("limit", req.query_param("limit").as_deref())?,
        offset: parse_int("offset", req.query_param("offset").as_deref())?,
        mime_glob: req.query_param("type"),
        after: parse_int("after", req.query_param("after").as_deref())?,
        before: parse_int("before", req.query_param("before").as_deref())?,
        all: req.query_param("all").is_some_and(|v| is_truthy(&v)),
    };
    if query.mime_glob.as_ref().is_some_and(|g| g.len() > 255) {
        return Err(ApiError::bad_request("Invalid type: pattern too long"));
    }
    ctx.prepare_db()?;
    let (pastes, total, filter) = domain::list(ctx.db(), ctx.now(), &who, query)?;
    let items: Vec<Json> = pastes
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "size": p.size,
                "mime_type": p.mime_type,
                "created_at": iso8601(p.created_at),
                "expires_at": iso8601(p.expires_at),
                "burn_after_read": p.burn_after_read,
                "password_protected": p.password_hash.is_some(),
                "display_name": p.display_name,
                "owner": p.owner.as_deref().map(identity::truncated),
            })
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({
            "pastes": items,
            "total": total,
            "limit": filter.limit,
            "offset": filter.offset,
        }),
    ))
}
