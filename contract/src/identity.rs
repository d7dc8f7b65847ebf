//! The client identity as it crosses from TLS to the application: the
//! SHA-1 fingerprint of the client certificate, carried in a header. The
//! guest reads it, the native host's TLS listener writes it, a proxy in
//! front of either writes it, and the CLI shows it: all in this one format.

/// The header carrying the client certificate's fingerprint (what nginx's
/// `$ssl_client_fingerprint` gives a reverse proxy to forward).
pub const CLIENT_FINGERPRINT_HEADER: &str = "x-ssl-client-sha1";

/// The header proving a request came through the trusted proxy (its value is
/// the `proxy_secret` variable).
pub const PROXY_SECRET_HEADER: &str = "x-proxy-secret";

/// The variable holding that secret: the native host's TLS listener sends it
/// along with the fingerprint it verified, so a tenant that also sits behind
/// a proxy keeps its check.
pub const PROXY_SECRET_VARIABLE: &str = "proxy_secret";

/// The tenant's own certificate authority, as the guest stores it
/// (guest/migrations/0004_pki.sql): the native host reads it to verify
/// client certificates with `--client-ca pki`. One row, or none before the
/// first `POST /pki/ca` or `POST /register`.
pub const PKI_CA_CERTIFICATE_SQL: &str = "SELECT certificate_pem FROM pki_ca WHERE id = 1";

/// SHA-1 of a DER certificate in lowercase hex: `openssl x509 -fingerprint
/// -sha1` without the colons.
pub fn fingerprint_sha1(der: &[u8]) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(der)
        .iter()
        .fold(String::with_capacity(40), |mut out, b| {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
            out
        })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_lowercase_sha1_hex() {
        // SHA-1 of the empty input and of "abc" (FIPS 180 test vectors).
        assert_eq!(
            fingerprint_sha1(b""),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            fingerprint_sha1(b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
