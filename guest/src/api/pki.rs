//! PKI routes: `GET /pki`, `POST /pki/ca`, `GET /pki/ca.crt`,
//! `POST /pki/issue`, `GET /pki/certs`, `POST /pki/revoke/{serial}` (these
//! need `pki_enabled`), and `POST /register` (public, behind proof-of-work).

use serde_json::{Value as Json, json};

use super::Ctx;
use super::abuse::{self, Gate};
use super::body::{self, Expected};
use crate::config;
use crate::domain::identity::{self, Identity};
use crate::domain::pki::{self as domain, PkiError, Settings};
use crate::domain::x509::{IssuedCert, KEY_ALGORITHM};
use crate::error::ApiError;
use crate::http::{Request, Response};

/// Largest JSON body a PKI route reads (`{"common_name": ...}`).
const MAX_BODY: u64 = 8 * 1024;

/// The certificate work a PKI error interrupted: the reference calls a
/// cryptographic failure of `/register` one of generation, and any other
/// (the CA, `/pki/issue`) one of issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertWork {
    Issuance,
    Generation,
}

/// A PKI error with the work it interrupted, for `error.rs` to word.
#[derive(Debug, Clone, PartialEq)]
pub struct CertFailure {
    pub work: CertWork,
    pub error: PkiError,
}

fn settings(ctx: &Ctx<'_>) -> Result<Settings, ApiError> {
    let days = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(Settings {
        ca_password: ctx.cfg.get(&config::PKI_CA_PASSWORD)?,
        ca_days: days(ctx.cfg.get(&config::PKI_CA_DAYS)?),
        cert_days: days(ctx.cfg.get(&config::PKI_CERT_DAYS)?),
    })
}

fn require_enabled(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if ctx.cfg.get(&config::PKI_ENABLED)? {
        Ok(())
    } else {
        Err(PkiError::Disabled.into())
    }
}

/// `common_name` from an optional JSON body; an empty body has none.
fn requested_common_name(req: &mut Request) -> Result<Option<String>, ApiError> {
    let bytes = body::read(req, MAX_BODY, Expected::CommonName)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match body::json(&bytes, Expected::CommonName)?.get("common_name") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(name)) => Ok(domain::common_name(Some(name))?),
        Some(_) => Err(PkiError::CommonNameInvalid("must be a string").into()),
    }
}

/// `GET /pki`.
pub fn status(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    if !ctx.cfg.get(&config::PKI_ENABLED)? {
        return Ok(Response::json(200, &json!({ "enabled": false })));
    }
    let body = match crate::store::pki::ca(ctx.db()?)? {
        None => json!({
            "enabled": true,
            "ca_exists": false,
            "hint": "POST /pki/ca to generate CA",
        }),
        Some(ca) => json!({
            "enabled": true,
            "ca_exists": true,
            "common_name": ca.common_name,
            "fingerprint_sha1": ca.fingerprint,
            "created_at": ca.created_at,
            "expires_at": ca.expires_at,
            "key_algorithm": KEY_ALGORITHM,
        }),
    };
    Ok(Response::json(200, &body))
}

/// `POST /pki/ca`: the first-run bootstrap.
pub fn create_ca(ctx: &Ctx<'_>, mut req: Request) -> Result<Response, ApiError> {
    require_enabled(ctx)?;
    let name = requested_common_name(&mut req)?.unwrap_or_else(|| domain::DEFAULT_CA_NAME.into());
    let settings = settings(ctx)?;
    let ca = domain::create_ca(ctx.db()?, ctx.rng(), ctx.now(), &settings, &name)?;
    let who = ctx.identity(&req.headers)?;
    ctx.audit(
        &req.headers,
        &who,
        "ca_created",
        json!({ "common_name": ca.common_name, "fingerprint": ca.fingerprint }),
    )?;
    Ok(Response::json(
        201,
        &json!({
            "message": "CA generated",
            "common_name": ca.common_name,
            "fingerprint_sha1": ca.fingerprint,
            "created_at": ca.created_at,
            "expires_at": ca.expires_at,
            "download": ctx.url("/pki/ca.crt")?,
        }),
    ))
}

/// `GET /pki/ca.crt`: the CA certificate as PEM, for trust stores.
pub fn ca_certificate(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    require_enabled(ctx)?;
    let ca = crate::store::pki::ca(ctx.db()?)?.ok_or(PkiError::NoCa)?;
    let mut resp = Response::new(200).with_header("content-type", "application/x-pem-file");
    resp.body = ca.certificate_pem.into_bytes();
    Ok(resp)
}

/// `POST /pki/issue`: a certificate and its private key as PEM, in JSON.
/// Open to anyone when `pki_enabled`, so it counts against the rate limit.
pub fn issue(ctx: &Ctx<'_>, mut req: Request) -> Result<Response, ApiError> {
    require_enabled(ctx)?;
    let name = requested_common_name(&mut req)?.ok_or(PkiError::CommonNameRequired)?;
    let who = ctx.identity(&req.headers)?;
    let db = ctx.db()?;
    let ca = crate::store::pki::ca(db)?.ok_or(PkiError::NoCa)?;
    let settings = settings(ctx)?;
    let admission = abuse::rate_limit(ctx, &req.headers, &who)?;
    let (cert, key) = domain::issue(
        db,
        ctx.rng(),
        ctx.now(),
        &settings,
        &ca,
        &name,
        who.fingerprint.as_deref(),
    )?;
    audit_issued(ctx, &req, &who, "issue", &name, &cert)?;
    let mut resp = Response::json(
        201,
        &json!({
            "message": "Certificate issued",
            "serial": cert.serial,
            "common_name": name,
            "fingerprint_sha1": cert.fingerprint,
            "created_at": cert.not_before,
            "expires_at": cert.not_after,
            "certificate_pem": cert.pem,
            "private_key_pem": key.pkcs8_pem().map_err(PkiError::from)?,
        }),
    );
    admission.decorate(&mut resp);
    Ok(resp)
}

/// `GET /pki/certs`: certificates the client requested or holds.
pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    require_enabled(ctx)?;
    let who = ctx.identity(&req.headers)?;
    let Some(fingerprint) = who.fingerprint.as_deref() else {
        return Ok(Response::json(
            200,
            &json!({ "certificates": [], "count": 0 }),
        ));
    };
    let certs = crate::store::pki::certs_of(ctx.db()?, fingerprint)?;
    let items: Vec<Json> = certs
        .iter()
        .map(|c| {
            json!({
                "serial": c.serial,
                "common_name": c.common_name,
                "fingerprint_sha1": c.fingerprint,
                "created_at": c.created_at,
                "expires_at": c.expires_at,
                "status": domain::status(c, ctx.now()),
                "issued_to": c.issued_to,
            })
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({ "count": items.len(), "certificates": items }),
    ))
}

/// `POST /pki/revoke/{serial}`.
pub fn revoke(ctx: &Ctx<'_>, req: &Request, serial: &str) -> Result<Response, ApiError> {
    require_enabled(ctx)?;
    let who = ctx.identity(&req.headers)?;
    let cert = domain::revoke(ctx.db()?, ctx.now(), &who, serial)?;
    ctx.audit(
        &req.headers,
        &who,
        "cert_revoked",
        json!({ "serial": cert.serial, "fingerprint": cert.fingerprint }),
    )?;
    Ok(Response::json(
        200,
        &json!({ "message": "Certificate revoked", "serial": cert.serial }),
    ))
}

/// `POST /register`: a PKCS#12 bundle (empty password) with a new client
/// certificate, its key and the CA certificate; the CA is created on first use.
pub fn register(ctx: &Ctx<'_>, mut req: Request) -> Result<Response, ApiError> {
    let name = requested_common_name(&mut req)?;
    let who = ctx.identity(&req.headers)?;
    let settings = settings(ctx)?;
    if settings.ca_password.is_empty() {
        return Err(PkiError::PasswordNotConfigured.into());
    }
    let db = ctx.db()?;
    abuse::proof_of_work(ctx, &req.headers, Gate::Registration)?;
    let registration = domain::register(
        db,
        ctx.rng(),
        ctx.now(),
        &settings,
        name,
        who.fingerprint.as_deref(),
    )
    .map_err(|error| CertFailure {
        work: CertWork::Generation,
        error,
    })?;
    let cert = &registration.cert;
    audit_issued(
        ctx,
        &req,
        &who,
        "registration",
        &registration.common_name,
        cert,
    )?;
    let mut resp = Response::new(200)
        .with_header("content-type", "application/x-pkcs12")
        .with_header("content-disposition", "attachment; filename=\"client.p12\"")
        .with_header("x-fingerprint-sha1", cert.fingerprint.as_str())
        .with_header("x-certificate-expires", cert.not_after.to_string());
    resp.body = registration.pkcs12;
    Ok(resp)
}

fn audit_issued(
    ctx: &Ctx<'_>,
    req: &Request,
    who: &Identity,
    kind: &str,
    common_name: &str,
    cert: &IssuedCert,
) -> Result<(), ApiError> {
    ctx.audit(
        &req.headers,
        who,
        "cert_issued",
        json!({
            "type": kind,
            "common_name": common_name,
            "fingerprint": cert.fingerprint,
            "serial": cert.serial,
            "expires_at": cert.not_after,
        }),
    )
}

/// The shortened fingerprint audit lines identify a client by.
pub fn client_id(who: &Identity) -> Option<String> {
    who.fingerprint.as_deref().map(identity::truncated)
}
