//! Lifetimes by trust level, the one expiry rule pastes and short URLs share:
//! the default of the client's trust level, or the lifetime the client asked
//! for, never beyond the maximum.
//!
//! Pure arithmetic on configured numbers: no clock, no store, no HTTP.

use crate::domain::identity::Trust;

/// Seconds a new paste or short URL lives, read from configuration per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub anonymous: i64,
    pub untrusted: i64,
    pub trusted: i64,
    /// The cap on any requested or extended lifetime.
    pub max: i64,
}

impl ExpiryPolicy {
    /// Seconds until expiry: `requested` (`X-Expiry`) if it is a positive
    /// number (capped at `max`), otherwise the default of the client's trust
    /// level.
    pub fn lifetime(&self, trust: Trust, requested: Option<&str>) -> i64 {
        let default = match trust {
            Trust::Anonymous => self.anonymous,
            Trust::Untrusted => self.untrusted,
            Trust::Trusted => self.trusted,
        };
        match requested.and_then(|r| r.trim().parse::<i64>().ok()) {
            Some(secs) if secs > 0 => secs.min(self.max),
            _ => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ExpiryPolicy {
        ExpiryPolicy {
            anonymous: 86_400,
            untrusted: 604_800,
            trusted: 2_592_000,
            max: 7_776_000,
        }
    }

    #[test]
    fn lifetime_follows_trust_and_caps_requests() {
        let p = policy();
        assert_eq!(p.lifetime(Trust::Anonymous, None), 86_400);
        assert_eq!(p.lifetime(Trust::Untrusted, None), 604_800);
        assert_eq!(p.lifetime(Trust::Trusted, None), 2_592_000);
        assert_eq!(p.lifetime(Trust::Anonymous, Some("3600")), 3600);
        assert_eq!(p.lifetime(Trust::Anonymous, Some("999999999")), 7_776_000);
        for bad in ["-5", "0", "soon", "", "1e3", "3600.5"] {
            assert_eq!(p.lifetime(Trust::Untrusted, Some(bad)), 604_800, "{bad}");
        }
    }
}
