//! One function per command. Each builds its requests from the settings,
//! prints through [`Out`], and returns typed errors; nothing here exits.

pub mod info;
pub mod listing;
pub mod paste;
pub mod pki;
pub mod shell;
pub mod short_url;

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use crate::client::Client;
use crate::config::Settings;
use crate::error::Error;
use crate::output::Out;

pub struct Ctx<'a> {
    pub settings: Settings,
    /// The config file in use (or the default location), for `register --configure`.
    pub config_path: Option<PathBuf>,
    pub out: &'a Out,
}

impl Ctx<'_> {
    pub fn client(&self) -> Result<Client, Error> {
        Client::new(&self.settings)
    }

    /// A client for the server a pasted URL names, when it names one.
    pub fn client_for(&self, server: Option<&str>) -> Result<Client, Error> {
        Client::new(&settings_for(&self.settings, server))
    }
}

/// The settings for talking to `server`. Another server than the configured
/// one gets no identity: where the fingerprint header is trusted it works like
/// a bearer token, and a URL someone sent must not be able to collect it (or
/// see the client certificate).
pub fn settings_for(settings: &Settings, server: Option<&str>) -> Settings {
    match server.map(|s| s.trim_end_matches('/')) {
        Some(s) if s != settings.server => Settings {
            server: s.to_owned(),
            fingerprint: None,
            client_cert: None,
            client_key: None,
            ca_cert: settings.ca_cert.clone(),
        },
        _ => settings.clone(),
    }
}

/// The content of FILE, or of stdin for none or `-` (refusing an interactive
/// terminal, which would just wait).
pub fn read_input(file: Option<&Path>) -> Result<Vec<u8>, Error> {
    match file {
        Some(p) if p != Path::new("-") => {
            std::fs::read(p).map_err(|e| Error::local(&format!("cannot read {}", p.display()), e))
        }
        _ => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Error::Usage(
                    "nothing to paste: give a FILE or pipe the content in (`cmd | fpaste`)".into(),
                ));
            }
            let mut buf = Vec::new();
            stdin
                .read_to_end(&mut buf)
                .map_err(|e| Error::local("cannot read stdin", e))?;
            Ok(buf)
        }
    }
}

/// `X-Paste-Password` when a password was given.
pub fn password_header(password: Option<&String>) -> Vec<(&'static str, String)> {
    password
        .map(|p| ("X-Paste-Password", p.clone()))
        .into_iter()
        .collect()
}

/// Minimal percent-encoding for query values (unreserved characters pass).
pub fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~*/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_goes_only_to_the_configured_server() {
        let mine = Settings {
            server: "https://paste.example".into(),
            fingerprint: Some("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2".into()),
            client_cert: Some("c.crt".into()),
            client_key: Some("c.key".into()),
            ca_cert: Some("ca.pem".into()),
        };
        assert_eq!(settings_for(&mine, None), mine);
        assert_eq!(settings_for(&mine, Some("https://paste.example/")), mine);
        let other = settings_for(&mine, Some("https://elsewhere.example"));
        assert_eq!(other.server, "https://elsewhere.example");
        assert_eq!(
            (other.fingerprint, other.client_cert, other.client_key),
            (None, None, None)
        );
        assert_eq!(other.ca_cert, mine.ca_cert);
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("image/*"), "image/*");
        assert_eq!(query_escape("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(query_escape("\u{e9}"), "%C3%A9");
    }
}
