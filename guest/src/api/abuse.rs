//! The abuse controls as creation endpoints use them (`POST /`, `POST /s`):
//! challenges, admission (rate limit, then proof-of-work), content checks
//! (policies, then dedup) and the anti-flood count. Also `GET /challenge` and
//! `GET /register/challenge`.

use serde_json::json;

use super::Ctx;
use crate::config;
use crate::domain::abuse::{self, ContentPolicy, FloodPolicy, RateStatus};
use crate::domain::identity::Identity;
use crate::domain::pow;
use crate::error::ApiError;
use crate::http::{Headers, Response};

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
    ctx.prepare_db()?;
    let difficulty = abuse::current_difficulty(ctx.db(), ctx.now(), &flood)?;
    let ttl = ctx.cfg.get(&config::POW_TTL)?;
    let c = pow::issue(&ctx.pow_key()?, ctx.env.rng, ctx.now(), ttl, difficulty);
    Ok(Response::json(
        200,
        &json!({
            "enabled": true,
            "nonce": c.nonce,
            "difficulty": c.difficulty,
            "base_difficulty": flood.base,
            "elevated": c.difficulty > flood.base,
            "expires": c.expires,
            "token": c.token,
        }),
    ))
}

/// `GET /register/challenge`: a challenge at the registration difficulty.
pub fn register_challenge(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let difficulty = ctx.cfg.get(&config::REGISTER_POW)?;
    if difficulty == 0 {
        return Ok(disabled());
    }
    ctx.prepare_db()?;
    let ttl = ctx.cfg.get(&config::POW_TTL)?;
    let c = pow::issue(&ctx.pow_key()?, ctx.env.rng, ctx.now(), ttl, difficulty);
    Ok(Response::json(
        200,
        &json!({
            "enabled": true,
            "nonce": c.nonce,
            "difficulty": c.difficulty,
            "expires": c.expires,
            "token": c.token,
        }),
    ))
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

/// The per-IP rate limit alone (one atomic count per attempt). Call after
/// `prepare_db`.
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
        admission.rate = Some(abuse::rate_limit(ctx.db(), &ip, ctx.now(), limit, window)?);
    }
    Ok(admission)
}

/// Proof-of-work at the registration difficulty (`register_pow`) for
/// `POST /register`; the hint points at the registration challenge.
pub fn registration_pow(ctx: &Ctx<'_>, headers: &Headers) -> Result<(), ApiError> {
    proof_of_work(ctx, headers, ctx.cfg.get(&config::REGISTER_POW)?).map_err(|mut err| {
        if let Some(hint) = err.body.get_mut("hint") {
            *hint = json!(REGISTER_CHALLENGE_HINT);
        }
        err
    })
}

/// Verifies the request's solution at `difficulty` (0: off) and consumes its nonce.
fn proof_of_work(ctx: &Ctx<'_>, headers: &Headers, difficulty: u32) -> Result<(), ApiError> {
    if difficulty == 0 {
        return Ok(());
    }
    abuse::proof_of_work(
        ctx.db(),
        &ctx.pow_key()?,
        headers.get("x-pow-token"),
        headers.get("x-pow-solution"),
        ctx.now(),
        difficulty,
    )?;
    Ok(())
}

/// Where a client gets a registration challenge.
pub const REGISTER_CHALLENGE_HINT: &str = "GET /register/challenge for a new challenge";

/// Rate limit (one atomic count per attempt), then proof-of-work (verified,
/// then its nonce consumed). Call after `prepare_db`.
pub fn admit(ctx: &Ctx<'_>, headers: &Headers, who: &Identity) -> Result<Admission, ApiError> {
    let admission = rate_limit(ctx, headers, who)?;
    proof_of_work(ctx, headers, ctx.cfg.get(&config::POW_DIFFICULTY)?)?;
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
        ctx.db(),
        content,
        ctx.now(),
        ctx.cfg.get(&config::DEDUP_MAX)?,
        ctx.cfg.get(&config::DEDUP_WINDOW)?,
    )?;
    Ok(())
}

/// Counts a successful creation towards anti-flood.
pub fn record_creation(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    abuse::record_creation(ctx.db(), ctx.now(), &flood_policy(ctx)?)?;
    Ok(())
}
