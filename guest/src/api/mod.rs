//! HTTP handlers: read headers and bodies, call the domain, build JSON.
//!
//! Handlers never write SQL and never decide rules; they translate between
//! HTTP and `domain`. Errors leave through [`ApiError`] only.

pub mod abuse;
pub mod info;
pub mod paste;
pub mod pki;
pub mod short_url;

use std::cell::OnceCell;

use serde_json::json;

use crate::config::{self, Config, Variables};
use crate::domain::identity::{self, Identity};
use crate::domain::pki::{self as pki_rules, Resolution};
use crate::domain::{Rng, hex};
use crate::error::ApiError;
use crate::http::Headers;
use crate::log::{self, Log};
use crate::maintenance::{self, MaintenanceError};
use crate::store::Sql;
use crate::store::migrations::{self, Meta};

/// Bytes of a generated proof-of-work key.
const POW_KEY_BYTES: usize = 32;

/// What the platform gives one request: database, configuration, randomness,
/// the log and the time. Built by the adapter (or by tests).
pub struct Env<'a> {
    pub db: &'a dyn Sql,
    pub vars: &'a dyn Variables,
    pub rng: &'a dyn Rng,
    pub log: &'a dyn Log,
    /// Unix time, read once per request so every rule sees the same instant.
    pub now: i64,
}

/// One request's context.
pub struct Ctx<'a> {
    pub env: &'a Env<'a>,
    pub cfg: Config<'a>,
    pub rid: String,
    /// The bookkeeping row, once `prepare_db` read it.
    meta: OnceCell<Meta>,
}

impl<'a> Ctx<'a> {
    pub fn new(env: &'a Env<'a>, rid: String) -> Self {
        Self {
            env,
            cfg: Config::new(env.vars),
            rid,
            meta: OnceCell::new(),
        }
    }

    pub fn db(&self) -> &'a dyn Sql {
        self.env.db
    }

    pub fn now(&self) -> i64 {
        self.env.now
    }

    /// Migrates the schema if needed and runs the throttled cleanup. Every
    /// handler that touches the database calls this first: on Spin there is
    /// no other moment to do either.
    pub fn prepare_db(&self) -> Result<&Meta, ApiError> {
        if let Some(meta) = self.meta.get() {
            return Ok(meta);
        }
        let (meta, report) =
            maintenance::on_request(self.db(), &self.cfg, self.now()).map_err(|e| match e {
                MaintenanceError::Store(e) => ApiError::from(e),
                MaintenanceError::Config(e) => ApiError::from(e),
            })?;
        if let Some(r) = report {
            self.log_event(
                "INFO",
                json!({
                    "message": "cleanup",
                    "expired_pastes": r.expired_pastes,
                    "expired_short_urls": r.expired_short_urls,
                    "used_nonces": r.used_nonces,
                    "rate_windows": r.rate_windows,
                    "content_hashes": r.content_hashes,
                }),
            );
        }
        Ok(self.meta.get_or_init(|| meta))
    }

    /// Whether the request came through the trusted proxy: `proxy_secret` is
    /// configured and the request's `X-Proxy-Secret` matches it.
    fn via_trusted_proxy(&self, headers: &Headers) -> Result<bool, ApiError> {
        let secret = self.cfg.get(&config::PROXY_SECRET)?;
        Ok(!secret.is_empty()
            && identity::secret_matches(secret.as_bytes(), headers.get_bytes("x-proxy-secret")))
    }

    /// The client's identity from `X-SSL-Client-SHA1` (and `X-Proxy-Secret`),
    /// with the trust the PKI gives it. A revoked or expired certificate of
    /// ours makes the client anonymous, and is audited as `auth_failure`.
    pub fn identity(&self, headers: &Headers) -> Result<Identity, ApiError> {
        let secret = self.cfg.get(&config::PROXY_SECRET)?;
        let Some(fingerprint) = identity::claimed_fingerprint(
            headers.get("x-ssl-client-sha1"),
            &secret,
            headers.get_bytes("x-proxy-secret"),
        ) else {
            return Ok(Identity::anonymous());
        };
        self.prepare_db()?;
        match pki_rules::resolve(self.db(), self.now(), fingerprint.clone())? {
            Resolution::Identified(who) => Ok(who),
            Resolution::Refused(reason) => {
                let anonymous = Identity::anonymous();
                self.audit_with(
                    headers,
                    Some(identity::truncated(&fingerprint)),
                    "auth_failure",
                    "failure",
                    json!({ "fingerprint": fingerprint, "reason": reason }),
                )?;
                Ok(anonymous)
            }
        }
    }

    /// An audit line (logger `app.audit`) of a successful `event` by `who`.
    pub fn audit(
        &self,
        headers: &Headers,
        who: &Identity,
        event: &str,
        details: serde_json::Value,
    ) -> Result<(), ApiError> {
        self.audit_with(headers, pki::client_id(who), event, "success", details)
    }

    fn audit_with(
        &self,
        headers: &Headers,
        client_id: Option<String>,
        event: &str,
        outcome: &str,
        details: serde_json::Value,
    ) -> Result<(), ApiError> {
        let level = if outcome == "success" {
            "INFO"
        } else {
            "WARNING"
        };
        log::event(
            self.env.log,
            self.now(),
            level,
            "app.audit",
            &self.rid,
            json!({
                "event": event,
                "outcome": outcome,
                "client_id": client_id,
                "client_ip": self.client_ip(headers)?,
                "details": details,
            }),
        );
        Ok(())
    }

    /// The client's IP: the host's `spin-client-addr`, or `X-Forwarded-For`
    /// from the trusted proxy.
    pub fn client_ip(&self, headers: &Headers) -> Result<String, ApiError> {
        Ok(identity::client_ip(
            headers.get("spin-client-addr"),
            headers.get("x-forwarded-for"),
            self.via_trusted_proxy(headers)?,
        ))
    }

    /// The key that signs proof-of-work challenges: `pow_secret`, or the one
    /// stored in the database (created by the first request that needs it).
    pub fn pow_key(&self) -> Result<Vec<u8>, ApiError> {
        let configured = self.cfg.get(&config::POW_SECRET)?;
        if !configured.is_empty() {
            return Ok(configured.into_bytes());
        }
        if let Some(stored) = &self.prepare_db()?.pow_secret {
            return Ok(stored.clone().into_bytes());
        }
        let mut key = [0u8; POW_KEY_BYTES];
        self.env.rng.fill(&mut key);
        Ok(migrations::pow_secret(self.db(), hex(&key))?.into_bytes())
    }

    /// A path as clients must request it: with the reverse proxy's prefix.
    pub fn url(&self, path: &str) -> Result<String, ApiError> {
        Ok(format!("{}{path}", self.cfg.get(&config::URL_PREFIX)?))
    }

    pub fn log_event(&self, level: &str, fields: serde_json::Value) {
        log::event(self.env.log, self.now(), level, "app", &self.rid, fields);
    }
}

/// Parses an optional integer header or query value; `Err` names it.
pub fn parse_int(name: &'static str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(&format!("Invalid {name}: must be an integer"))),
    }
}
