//! Paste routes: `POST /`, `GET|HEAD /{id}`, `GET|HEAD /{id}/raw`,
//! `PUT /{id}`, `DELETE /{id}`, `GET /pastes`.

use serde_json::{Map, Value as Json, json};

use super::body::{self, Expected};
use super::{Ctx, abuse, expiry_policy, parse_int};
use crate::config;
use crate::domain::identity;
use crate::domain::paste::{
    self as domain, Access, CreateRequest, ListRequest, PasteError, Policy, UpdateRequest,
    is_truthy,
};
use crate::domain::{mime, time::iso8601};
use crate::error::ApiError;
use crate::http::{Headers, Method, Request, Response};
use crate::store::paste::PasteMeta;

/// Headroom for JSON bodies (`{"content": ...}`): escapes make JSON longer
/// than the content it carries; the decoded content gets the exact limit.
const JSON_OVERHEAD: u64 = 64 * 1024;

fn policy(ctx: &Ctx<'_>) -> Result<Policy, ApiError> {
    Ok(Policy {
        max_anon: ctx.cfg.get(&config::MAX_ANON)?,
        max_auth: ctx.cfg.get(&config::MAX_AUTH)?,
        expiry: expiry_policy(ctx)?,
    })
}

/// A GET reads the paste; a HEAD only peeks (records nothing, never burns).
fn access(req: &Request) -> Access {
    if req.method == Method::Head {
        Access::Peek
    } else {
        Access::Read
    }
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

/// The content of a JSON body `{"content": "..."}`.
fn json_content(bytes: &[u8], expected: Expected) -> Result<Vec<u8>, ApiError> {
    match body::json(bytes, expected)?.get("content") {
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
    let db = ctx.db()?;
    let admission = abuse::admit(ctx, &req.headers, &who)?;

    let max = policy.max_size(&who);
    let expected = Expected::Paste {
        max,
        authenticated: who.is_authenticated(),
    };
    let json = body::is_json(&req.headers);
    let cap = if json {
        max.saturating_mul(2).saturating_add(JSON_OVERHEAD)
    } else {
        max
    };
    let bytes = body::read(&mut req, cap, expected)?;
    let content = if json {
        json_content(&bytes, expected)?
    } else {
        bytes
    };
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

    let meta = domain::create(db, ctx.rng(), ctx.now(), &who, &policy, create)?;
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

pub fn metadata(ctx: &Ctx<'_>, req: &Request, id: &str) -> Result<Response, ApiError> {
    if !domain::is_valid_id(id) {
        return Err(PasteError::InvalidId.into());
    }
    let now = ctx.now();
    let found = ctx.read(|db| domain::lookup(db, id, now, false))?;
    let meta = domain::metadata_of(
        ctx.db()?,
        now,
        found.map(|(meta, _)| meta),
        password(&req.headers).as_deref(),
        access(req),
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

pub fn raw(ctx: &Ctx<'_>, req: &Request, id: &str) -> Result<Response, ApiError> {
    let access = access(req);
    if !domain::is_valid_id(id) {
        return Err(PasteError::InvalidId.into());
    }
    let now = ctx.now();
    let with_content = access == Access::Read;
    let found = ctx.read(|db| domain::lookup(db, id, now, with_content))?;
    let raw = domain::raw_of(
        ctx.db()?,
        now,
        found,
        password(&req.headers).as_deref(),
        access,
    )?;
    let mut resp = Response::new(200).with_header("content-type", raw.meta.mime_type.as_str());
    if mime::is_inline(&raw.meta.mime_type) {
        resp.headers.set("content-disposition", "inline");
    }
    if raw.burned {
        resp.headers.set("x-burn-after-read", "true");
    }
    if access == Access::Peek {
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
    let expected = Expected::Paste {
        max,
        authenticated: who.is_authenticated(),
    };
    let body = body::read(&mut req, max, expected)?;
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
    let meta = domain::update(ctx.db()?, ctx.rng(), ctx.now(), &who, &policy, id, update)?;
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
    domain::delete(ctx.db()?, ctx.now(), &who, id)?;
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
    let (pastes, total, filter) = domain::list(ctx.db()?, ctx.now(), &who, query)?;
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
