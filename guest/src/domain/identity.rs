//! Who is asking: the client-certificate fingerprint a TLS proxy forwards in
//! `X-SSL-Client-SHA1`, and the trust that follows from it.
//!
//! A fingerprint is exactly 40 lowercase hex digits; anything else is anonymous.
//! When a proxy secret is configured, the fingerprint counts only on requests
//! that carry the same secret, so a client that bypasses the proxy cannot claim
//! someone else's identity. Comparisons of secrets are constant time.

use subtle::ConstantTimeEq;

pub const FINGERPRINT_LEN: usize = 40;

/// How much the service trusts a client; decides default expiry and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// No (usable) certificate fingerprint.
    Anonymous,
    /// A well-formed fingerprint of a certificate this server did not issue.
    Untrusted,
    /// A valid certificate issued by this server's CA.
    Trusted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub fingerprint: Option<String>,
    pub trust: Trust,
    /// The first registered certificate: may list and delete everything.
    pub admin: bool,
}

impl Identity {
    pub fn anonymous() -> Self {
        Self {
            fingerprint: None,
            trust: Trust::Anonymous,
            admin: false,
        }
    }

    /// The identity of a fingerprint, before any PKI lookup: untrusted.
    pub fn untrusted(fingerprint: String) -> Self {
        Self {
            fingerprint: Some(fingerprint),
            trust: Trust::Untrusted,
            admin: false,
        }
    }

    /// The holder of a valid certificate issued by this server's CA.
    pub fn trusted(fingerprint: String, admin: bool) -> Self {
        Self {
            fingerprint: Some(fingerprint),
            trust: Trust::Trusted,
            admin,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Whether this client may change or delete something owned by `owner`:
    /// its owner, or the admin.
    pub fn may_manage(&self, owner: Option<&str>) -> bool {
        self.admin || (self.fingerprint.is_some() && self.fingerprint.as_deref() == owner)
    }
}

/// A fingerprint if `raw` is exactly 40 lowercase hex digits.
pub fn parse_fingerprint(raw: &str) -> Option<String> {
    let ok = raw.len() == FINGERPRINT_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| raw.to_owned())
}

/// The claimed fingerprint of a request, honouring the proxy secret.
///
/// `proxy_secret` empty means no check. `sent_secret` is the request's
/// `X-Proxy-Secret` header.
pub fn claimed_fingerprint(
    header: Option<&str>,
    proxy_secret: &str,
    sent_secret: Option<&[u8]>,
) -> Option<String> {
    if !proxy_secret.is_empty() && !secret_matches(proxy_secret.as_bytes(), sent_secret) {
        return None;
    }
    header.and_then(parse_fingerprint)
}

/// Constant-time equality of a configured secret and a presented one.
pub fn secret_matches(expected: &[u8], presented: Option<&[u8]>) -> bool {
    presented.is_some_and(|p| bool::from(p.ct_eq(expected)))
}

/// Used when the host gave no client address (only in tests in practice).
pub const UNKNOWN_IP: &str = "unknown";

/// The client's IP address as text. `spin_client_addr` is what the host saw
/// on the socket (`ip:port`). Behind the trusted proxy, the proxy's view wins:
/// the last address of `X-Forwarded-For`, which that proxy appended.
pub fn client_ip(
    spin_client_addr: Option<&str>,
    forwarded_for: Option<&str>,
    via_trusted_proxy: bool,
) -> String {
    if via_trusted_proxy
        && let Some(ip) = forwarded_for
            .and_then(|f| f.rsplit(',').next())
            .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
    {
        return ip.to_string();
    }
    spin_client_addr
        .and_then(|a| {
            a.parse::<std::net::SocketAddr>()
                .map(|s| s.ip())
                .or_else(|_| a.parse::<std::net::IpAddr>())
                .ok()
        })
        .map_or_else(|| UNKNOWN_IP.to_owned(), |ip| ip.to_string())
}

/// The first characters of a fingerprint, for listings that show owners.
pub fn truncated(fingerprint: &str) -> String {
    const SHOWN: usize = 8;
    format!("{}...", &fingerprint[..SHOWN.min(fingerprint.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";

    #[test]
    fn owners_and_the_admin_manage() {
        let owner = Identity::untrusted(FP.into());
        assert!(owner.may_manage(Some(FP)));
        assert!(!owner.may_manage(Some("b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0")));
        assert!(!owner.may_manage(None));
        assert!(!Identity::anonymous().may_manage(None));
        let admin = Identity::trusted("c".repeat(40), true);
        assert!(admin.may_manage(Some(FP)) && admin.may_manage(None));
    }

    #[test]
    fn only_40_lowercase_hex_is_a_fingerprint() {
        assert_eq!(parse_fingerprint(FP).as_deref(), Some(FP));
        assert_eq!(parse_fingerprint(&FP.to_uppercase()), None);
        assert_eq!(parse_fingerprint(&FP[..39]), None);
        assert_eq!(parse_fingerprint(&format!("{FP}0")), None);
        assert_eq!(parse_fingerprint(&FP.replace('a', "g")), None);
        assert_eq!(
            parse_fingerprint("a1:b2:c3:d4:e5:f6:a1:b2:c3:d4:e5:f6:a1:b2"),
            None
        );
        assert_eq!(parse_fingerprint(""), None);
    }

    #[test]
    fn proxy_secret_gates_the_fingerprint() {
        assert_eq!(claimed_fingerprint(Some(FP), "", None).as_deref(), Some(FP));
        assert_eq!(claimed_fingerprint(Some(FP), "s3cret", None), None);
        assert_eq!(
            claimed_fingerprint(Some(FP), "s3cret", Some(b"wrong")),
            None
        );
        assert_eq!(
            claimed_fingerprint(Some(FP), "s3cret", Some(b"s3cre")),
            None
        );
        assert_eq!(
            claimed_fingerprint(Some(FP), "s3cret", Some(b"s3cret")).as_deref(),
            Some(FP)
        );
        assert_eq!(claimed_fingerprint(None, "", None), None);
    }

    #[test]
    fn client_ip_from_socket_or_trusted_proxy_only() {
        assert_eq!(client_ip(Some("10.0.0.1:5555"), None, false), "10.0.0.1");
        assert_eq!(client_ip(Some("[::1]:80"), None, false), "::1");
        assert_eq!(
            client_ip(Some("10.0.0.1:5555"), Some("6.6.6.6"), false),
            "10.0.0.1"
        );
        assert_eq!(
            client_ip(Some("10.0.0.1:5555"), Some("6.6.6.6, 203.0.113.7"), true),
            "203.0.113.7"
        );
        assert_eq!(
            client_ip(Some("10.0.0.1:5555"), Some("garbage"), true),
            "10.0.0.1"
        );
        assert_eq!(client_ip(None, None, false), UNKNOWN_IP);
        assert_eq!(client_ip(Some("nonsense"), None, false), UNKNOWN_IP);
    }

    #[test]
    fn truncation_keeps_eight_characters() {
        assert_eq!(truncated(FP), "a1b2c3d4...");
    }
}
