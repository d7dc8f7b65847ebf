//! HTTP handlers: read headers and bodies, call the domain, build JSON.
//!
//! Handlers never write SQL and never decide rules; they translate between
//! HTTP and `domain`. Errors leave through [`ApiError`] only, and the
//! database is reached through [`Ctx::db`] only.

pub mod abuse;
pub mod body;
mod context;
pub mod info;
pub mod paste;
pub mod pki;
pub mod short_url;

pub use context::{Ctx, Env};

use crate::config;
use crate::domain::expiry::ExpiryPolicy;
use crate::error::ApiError;

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

/// The lifetimes pastes and short URLs get, by the client's trust.
pub fn expiry_policy(ctx: &Ctx<'_>) -> Result<ExpiryPolicy, ApiError> {
    Ok(ExpiryPolicy {
        anonymous: ctx.cfg.get(&config::EXPIRY_ANON)?,
        untrusted: ctx.cfg.get(&config::EXPIRY_UNTRUSTED)?,
        trusted: ctx.cfg.get(&config::EXPIRY_TRUSTED)?,
        max: ctx.cfg.get(&config::MAX_EXPIRY)?,
    })
}
