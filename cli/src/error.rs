//! What can go wrong, grouped by who can fix it; each group has its own exit
//! code (docs/cli.md) and every message ends with what to do next.

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line itself is wrong (clap reports its own with the same code).
    #[error("{0}")]
    Usage(String),
    /// Something on this machine: files, the config file, a refused write.
    #[error("{0}")]
    Local(String),
    /// The server answered with an error status.
    #[error("server refused ({status}): {message}")]
    Server {
        status: u16,
        message: String,
        hint: Option<String>,
    },
    /// No usable answer: connection, TLS, timeout, or a reply that is not the API's.
    #[error("{0}")]
    Network(String),
    /// Content that does not decrypt with the key given.
    #[error("{0}")]
    Decrypt(String),
}

pub const EXIT_LOCAL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_SERVER: u8 = 3;
pub const EXIT_NETWORK: u8 = 4;
pub const EXIT_DECRYPT: u8 = 5;

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Local(_) => EXIT_LOCAL,
            Self::Usage(_) => EXIT_USAGE,
            Self::Server { .. } => EXIT_SERVER,
            Self::Network(_) => EXIT_NETWORK,
            Self::Decrypt(_) => EXIT_DECRYPT,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Usage(_) => "usage",
            Self::Server { .. } => "server",
            Self::Network(_) => "network",
            Self::Decrypt(_) => "decrypt",
        }
    }

    /// The next step for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        match self {
            // Ours first: the server's hints speak HTTP ("GET /challenge"), ours the CLI.
            Self::Server {
                status,
                message,
                hint,
            } => server_hint(*status, message).or_else(|| hint.clone()),
            Self::Network(_) => Some(
                "check the server URL (--server, FPASTE_SERVER or `server` in the config file) \
                 and that the server is running"
                    .into(),
            ),
            Self::Decrypt(_) => Some(
                "copy the whole URL, including the part after `#`; \
                 the server never sees that key, so it cannot be recovered"
                    .into(),
            ),
            Self::Usage(_) => Some("see `fpaste --help`".into()),
            Self::Local(_) => None,
        }
    }

    pub fn local(context: &str, e: impl std::fmt::Display) -> Self {
        Self::Local(format!("{context}: {e}"))
    }
}

fn server_hint(status: u16, message: &str) -> Option<String> {
    let hint = match (status, message) {
        (401, "Password required") => "pass the paste's password with -p",
        (403, "Invalid password") => "check the password given with -p",
        (401, _) => {
            "this needs a client certificate: run `fpaste register --configure`, \
             or give your fingerprint with --fingerprint / FPASTE_FINGERPRINT"
        }
        (403, _) => "only the owner (or the admin) may do this; check which certificate you use",
        (404, _) => "check the ID; expired and burnt pastes are gone for good",
        (413, _) => {
            "the server's size limit is lower than this upload; authenticated clients get a larger one"
        }
        (429, _) => "wait a little and try again (the server limits requests per address)",
        (400, m) if m.starts_with("Proof-of-work") => {
            "the proof-of-work kept failing; check the clock and try again"
        }
        (500..=599, _) => "the server failed; try again later or tell its operator",
        _ => return None,
    };
    Some(hint.to_owned())
}

impl From<crate::encryption::OpenError> for Error {
    fn from(e: crate::encryption::OpenError) -> Self {
        Self::Decrypt(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, message: &str, hint: Option<&str>) -> Error {
        Error::Server {
            status,
            message: message.into(),
            hint: hint.map(Into::into),
        }
    }

    #[test]
    fn our_hints_come_first_then_the_servers() {
        let e = server(400, "Proof-of-work required", Some("GET /challenge first"));
        assert!(
            e.hint().is_some_and(|h| h.contains("proof-of-work")),
            "{:?}",
            e.hint()
        );
        let e = server(418, "I'm a teapot", Some("from the server"));
        assert_eq!(e.hint().as_deref(), Some("from the server"));
        assert_eq!(server(418, "I'm a teapot", None).hint(), None);
        assert!(
            server(401, "Password required", None)
                .hint()
                .is_some_and(|h| h.contains("-p"))
        );
    }

    #[test]
    fn every_kind_has_its_own_exit_code() {
        let codes = [
            Error::Local(String::new()).exit_code(),
            Error::Usage(String::new()).exit_code(),
            server(404, "x", None).exit_code(),
            Error::Network(String::new()).exit_code(),
            Error::Decrypt(String::new()).exit_code(),
        ];
        for (i, a) in codes.iter().enumerate() {
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
