//! HTTP rules both sides apply: the host answers some requests itself (a
//! full pool, a body over the limit, a trap) and those answers must look
//! like the guest's.

/// Sent on every response, by the guest and by the host (the reference's
/// list, verbatim).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (
        "permissions-policy",
        "geolocation=(), microphone=(), camera=()",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    (
        "cache-control",
        "no-store, no-cache, must-revalidate, private",
    ),
    ("pragma", "no-cache"),
];

/// Longest client-supplied request id kept; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client's `X-Request-ID` is kept as the request's id: short and
/// plain, because the id ends up in log lines.
pub fn is_acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// A UUID (version 4) from 16 random bytes: the form of every id either side
/// makes up for a request.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_version_and_variant_bits() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
        let groups: Vec<usize> = uuid_v4([7; 16]).split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
    }

    #[test]
    fn plain_short_ids_are_kept_others_are_not() {
        assert!(is_acceptable_request_id("trace-1.2:3"));
        assert!(is_acceptable_request_id(&"a".repeat(MAX_REQUEST_ID_LEN)));
        assert!(!is_acceptable_request_id(
            &"a".repeat(MAX_REQUEST_ID_LEN + 1)
        ));
        for bad in ["", "a b", "evil\" id", "line\nbreak", "é"] {
            assert!(!is_acceptable_request_id(bad), "{bad:?}");
        }
    }
}
