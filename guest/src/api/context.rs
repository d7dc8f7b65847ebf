//! One request's context: the platform's services ([`Env`]) behind [`Ctx`],
//! which is how handlers reach them.
//!
//! Handlers reach the database only through [`Ctx::db`], which migrates the
//! schema and runs the throttled cleanup on first use, or [`Ctx::read`],
//! whose statement checks the schema itself; so no route can touch SQL
//! unprepared and a route that never calls them never opens a connection.
//! Nothing here may hand out `Env::db` any other way.

use std::cell::OnceCell;

use serde_json::{Map, Value as Json, json};
use wasmpaste_contract::identity::{CLIENT_FINGERPRINT_HEADER, PROXY_SECRET_HEADER};

use super::pki::client_id;
use crate::config::{self, Config, Variables};
use crate::domain::identity::{self, Identity};
use crate::domain::pki::{self as pki_rules, Resolution};
use crate::domain::{Rng, hex};
use crate::error::ApiError;
use crate::http::Headers;
use crate::log::{self, Log};
use crate::maintenance;
use crate::store::migrations::{self, Meta};
use crate::store::{Sql, StoreError};

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
    /// Private to this module: [`Ctx::db`] is the only way to the database.
    env: &'a Env<'a>,
    pub cfg: Config<'a>,
    pub rid: String,
    /// The bookkeeping row, once the first [`Ctx::db`] prepared the database.
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

    /// The database, prepared: the first call of a request migrates the
    /// schema if needed and runs the cleanup when this request claims it
    /// (on Spin there is no other moment to do either); later calls cost
    /// nothing. A failed preparation is not remembered: the next call retries.
    pub fn db(&self) -> Result<&'a dyn Sql, ApiError> {
        self.meta()?;
        Ok(self.env.db)
    }

    /// Runs a read whose one statement also returns the bookkeeping row
    /// (`store::paste::read`). On a current schema that statement is all the
    /// preparation the request needs: the schema check is folded into it, and
    /// a due cleanup runs as after [`Ctx::db`]. On a schema that migrations
    /// would complete (a fresh database, an older schema) the database is
    /// prepared as usual and the read runs again; any other failure (the
    /// database away) is the answer, not tried twice.
    pub fn read<T>(
        &self,
        read: impl Fn(&dyn Sql) -> Result<(Meta, T), StoreError>,
    ) -> Result<T, ApiError> {
        if self.meta.get().is_none() {
            match read(self.env.db) {
                Ok((meta, value)) if meta.is_current() => {
                    self.adopt(meta)?;
                    return Ok(value);
                }
                Ok(_) => {}
                Err(e) if migrations::is_schema_missing(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let db = self.db()?;
        Ok(read(db)?.1)
    }

    /// Prepares the database once per request; the bookkeeping row it read.
    fn meta(&self) -> Result<&Meta, ApiError> {
        if let Some(meta) = self.meta.get() {
            return Ok(meta);
        }
        let (meta, report) = maintenance::on_request(self.env.db, &self.cfg, self.now())?;
        self.log_cleanup(report);
        Ok(self.meta.get_or_init(|| meta))
    }

    /// Takes `meta`, read by a statement of the request's own, as the
    /// bookkeeping row, running the request-driven cleanup when it is due.
    fn adopt(&self, meta: Meta) -> Result<&Meta, ApiError> {
        let report = maintenance::cleanup_if_due(self.env.db, &self.cfg, self.now(), &meta)?;
        self.log_cleanup(report);
        Ok(self.meta.get_or_init(|| meta))
    }

    fn log_cleanup(&self, report: Option<maintenance::CleanupReport>) {
        if let Some(report) = report {
            let mut fields = Map::new();
            fields.insert("message".into(), json!("cleanup"));
            for (name, count) in report.counts() {
                fields.insert(name.into(), json!(count));
            }
            self.log_event("INFO", Json::Object(fields));
        }
    }

    pub fn now(&self) -> i64 {
        self.env.now
    }

    pub fn rng(&self) -> &'a dyn Rng {
        self.env.rng
    }

    /// Whether the request came through the trusted proxy: `proxy_secret` is
    /// configured and the request's `X-Proxy-Secret` matches it.
    fn via_trusted_proxy(&self, headers: &Headers) -> Result<bool, ApiError> {
        let secret = self.cfg.get(&config::PROXY_SECRET)?;
        Ok(!secret.is_empty()
            && identity::secret_matches(secret.as_bytes(), headers.get_bytes(PROXY_SECRET_HEADER)))
    }

    /// The client's identity from `X-SSL-Client-SHA1` (and `X-Proxy-Secret`),
    /// with the trust the PKI gives it. A revoked or expired certificate of
    /// ours makes the client anonymous, and is audited as `auth_failure`.
    pub fn identity(&self, headers: &Headers) -> Result<Identity, ApiError> {
        let secret = self.cfg.get(&config::PROXY_SECRET)?;
        let Some(fingerprint) = identity::claimed_fingerprint(
            headers.get(CLIENT_FINGERPRINT_HEADER),
            &secret,
            headers.get_bytes(PROXY_SECRET_HEADER),
        ) else {
            return Ok(Identity::anonymous());
        };
        match pki_rules::resolve(self.db()?, self.now(), fingerprint.clone())? {
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
        details: Json,
    ) -> Result<(), ApiError> {
        self.audit_with(headers, client_id(who), event, "success", details)
    }

    fn audit_with(
        &self,
        headers: &Headers,
        client_id: Option<String>,
        event: &str,
        outcome: &str,
        details: Json,
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
    /// from the trusted proxy. The last `spin-client-addr`: the native host
    /// drops a client's, but Spin keeps it and appends its own after it.
    pub fn client_ip(&self, headers: &Headers) -> Result<String, ApiError> {
        Ok(identity::client_ip(
            headers.get_last("spin-client-addr"),
            headers.get("x-forwarded-for"),
            self.via_trusted_proxy(headers)?,
        ))
    }

    /// The key that signs proof-of-work challenges: `pow_secret`, or the one
    /// stored in the database (created by the first request that needs it).
    ///
    /// The database is prepared first even when the key is configured, as
    /// the challenge routes always did: a broken database fails them the
    /// same way whichever key is in use.
    pub fn pow_key(&self) -> Result<Vec<u8>, ApiError> {
        let meta = self.meta()?;
        let configured = self.cfg.get(&config::POW_SECRET)?;
        if !configured.is_empty() {
            return Ok(configured.into_bytes());
        }
        if let Some(stored) = &meta.pow_secret {
            return Ok(stored.clone().into_bytes());
        }
        let mut key = [0u8; POW_KEY_BYTES];
        self.env.rng.fill(&mut key);
        Ok(migrations::pow_secret(self.db()?, hex(&key))?.into_bytes())
    }

    /// A path as clients must request it: with the reverse proxy's prefix.
    pub fn url(&self, path: &str) -> Result<String, ApiError> {
        Ok(format!("{}{path}", self.cfg.get(&config::URL_PREFIX)?))
    }

    pub fn log_event(&self, level: &str, fields: Json) {
        log::event(self.env.log, self.now(), level, "app", &self.rid, fields);
    }
}
