//! HTTP handlers: read headers and bodies, call the domain, build JSON.
//!
//! Handlers never write SQL and never decide rules; they translate between
//! HTTP and `domain`. Errors leave through [`ApiError`] only.

pub mod info;
pub mod paste;

use serde_json::json;

use crate::config::{self, Config, Variables};
use crate::domain::Rng;
use crate::domain::identity::{self, Identity};
use crate::error::ApiError;
use crate::http::Headers;
use crate::log::{self, Log};
use crate::maintenance;
use crate::store::Sql;

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
}

impl<'a> Ctx<'a> {
    pub fn new(env: &'a Env<'a>, rid: String) -> Self {
        Self {
            env,
            cfg: Config::new(env.vars),
            rid,
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
    pub fn prepare_db(&self) -> Result<(), ApiError> {
        let interval = self.cfg.get(&config::CLEANUP_INTERVAL)?;
        if let Some(report) = maintenance::on_request(self.db(), self.now(), interval)? {
            self.log_event(
                "INFO",
                json!({ "message": "cleanup", "expired_pastes": report.expired_pastes }),
            );
        }
        Ok(())
    }

    /// The client's identity from `X-SSL-Client-SHA1` (and `X-Proxy-Secret`).
    pub fn identity(&self, headers: &Headers) -> Result<Identity, ApiError> {
        let secret = self.cfg.get(&config::PROXY_SECRET)?;
        Ok(identity::claimed_fingerprint(
            headers.get("x-ssl-client-sha1"),
            &secret,
            headers.get_bytes("x-proxy-secret"),
        )
        .map_or_else(Identity::anonymous, Identity::untrusted))
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
