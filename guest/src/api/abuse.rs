//! The abuse controls as creation endpoints use them (`POST /`, `POST /s`):
//! challenges, admission (rate limit, then proof-of-work), content checks
//! (policies, then dedup) and the anti-flood count. Also `GET /challenge` and
//! `GET /register/challenge`.

use serde_json::{Map, Value as Json, json};

use super::Ctx;
use crate::config;
use crate::domain::abuse::{self, AbuseError, ContentPolicy, FloodPolicy, RateStatus};
use crate::domain::identity::Identity;
use crate::domain::pow;
use crate::error::ApiError;
use crate::http::{Headers, Response};

/// The two proof-of-work gates, each with its difficulty and its challenge
/// route (which a refusal points the client at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Creating pastes and short URLs: `pow_difficulty`, `GET /challenge`.
    Creation,
    /// `POST /register`: `register_pow`, `GET /register/challenge`.
    Registration,
}

/// An abuse error at a proof-of-work gate: `error.rs` words a missing
/// solution with the gate's challenge route.
#[derive(Debug, Clone, PartialEq)]
pub struct PowRefused {
    pub gate: Gate,
    pub error: AbuseError,
}

fn flood_policy(ctx: &Ctx<'_>) -> Result<FloodPolicy, ApiError> {
    Ok(FloodPolicy {
        base: ctx.cfg.get(&config::POW_DIFFICULTY)?,
        threshold: ctx.cfg.get(&config::ANTIFLOOD_THRESHOLD)?,
        window: ctx.cfg.get(&config::ANTIFLOOD_WINDOW)?,
        step: ctx.cfg.get(&config::ANTIFLOOD_STEP)?,
        max: ctx.cfg.get(&config::ANTIFLOOD_MAX)?,
        decay: ctx.cfg.get(&config::ANTIFLOOD_DECAY)?,
    })
}

fn disabled() -> Response {
    Response::json(200, &json!({ "enabled": false, "difficulty": 0 }))
}

/// `GET /challenge`: a challenge at the current (possibly elevated) difficulty.
pub fn challenge(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let flood = flood_policy(ctx)?;
    if flood.base == 0 {
        return Ok(disabled());
    }
    let difficulty = abuse::current_difficulty(ctx.db()?, ctx.now(), &flood)?;
    let ttl = ctx.cfg.get(&config::POW_TTL)?;
    let c = pow::issue(&ctx.pow_key()?, ctx.rng(), ctx.now(), ttl, difficulty);
    Ok(challenge_response(&c, Some(flood.base)))
}

/// `GET /register/challenge`: a challenge at the registration difficulty.
pub fn register_challenge(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let difficulty = ctx.cfg.get(&config::REGISTER_POW)?;
    if difficulty == 0 {
        return Ok(disabled());
    }
    // The key first: it prepares the database, as this route always did
    // before reading anything else.
    let key = ctx.pow_key()?;
    let ttl = ctx.cfg.get(&config::POW_TTL)?;
    let c = pow::issue(&key, ctx.rng(), ctx.now(), ttl, difficulty);
    Ok(challenge_response(&c, None))
}

/// A challenge as JSON; `base` (creation challenges only) adds the
/// anti-flood fields.
fn challenge_response(c: &pow::Challenge, base: Option<u32>) -> Response {
    let mut body = Map::new();
    body.insert("enabled".into(), json!(true));
    body.insert("nonce".into(), json!(c.nonce));
    body.insert("difficulty".into(), json!(c.difficulty));
    if let Some(base) = base {
        body.insert("base_difficulty".into(), json!(base));
        body.insert("elevated".into(), json!(c.difficulty > base));
    }
    body.insert("expires".into(), json!(c.expires));
    body.insert("token".into(), json!(c.token));
    Response::json(200, &Json::Object(body))
}

/// A creation request that passed admission; its rate status goes on the 201.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission {
    rate: Option<RateStatus>,
}

impl Admission {
    /// Adds the `X-RateLimit-*` headers when rate limiting is on.
    pub fn decorate(&self, resp: &mut Response) {
        if let Some(status) = &self.rate {
            set_rate_headers(resp, status);
        }
    }
}

pub fn set_rate_headers(resp: &mut Response, s: &RateStatus) {
    resp.headers.set("x-ratelimit-limit", s.limit.to_string());
    resp.headers
        .set("x-ratelimit-remaining", s.remaining.to_string());
    resp.headers.set("x-ratelimit-reset", s.reset.to_string());
}

/// The per-IP rate limit alone (one atomic count per attempt).
pub fn rate_limit(ctx: &Ctx<'_>, headers: &Headers, who: &Identity) -> Result<Admission, ApiError> {
    let mut admission = Admission::default();
    let base = ctx.cfg.get(&config::RATE_MAX)?;
    if base > 0 {
        let limit = if who.is_authenticated() {
            base.saturating_mul(ctx.cfg.get(&config::RATE_AUTH_MULT)?)
        } else {
            base
        };
        let window = ctx.cfg.get(&config::RATE_WINDOW)?;
        let ip = ctx.client_ip(headers)?;
        admission.rate = Some(abuse::rate_limit(ctx.db()?, &ip, ctx.now(), limit, window)?);
    }
    Ok(admission)
}

/// Verifies the request's solution at `gate`'s difficulty (0: off) and
/// consumes its nonce.
pub fn proof_of_work(ctx: &Ctx<'_>, headers: &Headers, gate: Gate) -> Result<(), ApiError> {
    let setting = match gate {
        Gate::Creation => &config::POW_DIFFICULTY,
        Gate::Registration => &config::REGISTER_POW,
    };
    let difficulty = ctx.cfg.get(setting)?;
    if difficulty == 0 {
        return Ok(());
    }
    abuse::proof_of_work(
        ctx.db()?,
        &ctx.pow_key()?,
        headers.get("x-pow-token"),
        headers.get("x-pow-solution"),
        ctx.now(),
        difficulty,
    )
    .map_err(|error| PowRefused { gate, error }.into())
}

/// Rate limit (one atomic count per attempt), then proof-of-work (verified,
/// then its nonce consumed).
pub fn admit(ctx: &Ctx<'_>, headers: &Headers, who: &Identity) -> Result<Admission, ApiError> {
    let admission = rate_limit(ctx, headers, who)?;
    proof_of_work(ctx, headers, Gate::Creation)?;
    Ok(admission)
}

/// Minimum size, binary-only and entropy policies, then the dedup count.
pub fn check_content(ctx: &Ctx<'_>, content: &[u8], mime: &str) -> Result<(), ApiError> {
    let policy = ContentPolicy {
        min_size: ctx.cfg.get(&config::MIN_SIZE)?,
        min_entropy: ctx.cfg.get(&config::MIN_ENTROPY)?,
        min_entropy_size: ctx.cfg.get(&config::MIN_ENTROPY_SIZE)?,
        require_binary: ctx.cfg.get(&config::REQUIRE_BINARY)?,
    };
    abuse::content_policy(content, mime, &policy)?;
    abuse::dedup(
        ctx.db()?,
        content,
        ctx.now(),
        ctx.cfg.get(&config::DEDUP_MAX)?,
        ctx.cfg.get(&config::DEDUP_WINDOW)?,
    )?;
    Ok(())
}

/// Counts a successful creation towards anti-flood.
pub fn record_creation(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    abuse::record_creation(ctx.db()?, ctx.now(), &flood_policy(ctx)?)?;
    Ok(())
}
